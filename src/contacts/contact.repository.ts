import type { Kysely, Transaction } from 'kysely';
import type { Contact, Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** The contact a match key names, if any (one person, one record). */
export async function findContactByMatchKey(db: Executor, matchKey: string): Promise<Contact | undefined> {
  return db.selectFrom('contacts').selectAll().where('match_key', '=', matchKey).executeTakeFirst();
}

/** A contact by id. */
export async function findContactById(db: Executor, id: string): Promise<Contact | undefined> {
  return db.selectFrom('contacts').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The stored language of each of many contacts (absent: none stored, or no such contact). */
export async function findContactLocales(db: Executor, ids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 5000) {
    const rows = await db.selectFrom('contacts').select(['id', 'locale']).where('id', 'in', ids.slice(i, i + 5000)).where('locale', 'is not', null).execute();
    for (const row of rows) out.set(row.id, row.locale!);
  }
  return out;
}

/** Contacts sharing a provider key: probable duplicates, never merged automatically. */
export async function findContactsByProviderKey(db: Executor, providerKey: string): Promise<Contact[]> {
  return db.selectFrom('contacts').selectAll().where('provider_key', '=', providerKey).execute();
}

/** Stores a new contact. */
export async function insertContact(db: Executor, contact: Contact): Promise<void> {
  await db.insertInto('contacts').values(contact).execute();
}

/** Stores a contact's wrapped evidence key. */
export async function insertContactKey(
  db: Executor,
  row: { contact_id: string; wrapped_key: string; created_at: string },
): Promise<void> {
  await db.insertInto('contact_keys').values(row).execute();
}

/** A contact's wrapped evidence key; absent once erased. */
export async function findContactKey(db: Executor, contactId: string): Promise<string | undefined> {
  const row = await db.selectFrom('contact_keys').select('wrapped_key').where('contact_id', '=', contactId).executeTakeFirst();
  return row?.wrapped_key;
}
