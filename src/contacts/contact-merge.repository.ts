/**
 * Which contact answers for a merged-away one. When an operator merges a
 * probable duplicate B into A (campaigns/dedupe.service.ts), B's states move
 * to A and B keeps only its history; anything the person does through B's
 * address or B's old links must then act on A, never bring B back to life
 * beside A (one person, one record: DESIGN.md, data model).
 */
import type { Kysely, Transaction } from 'kysely';
import { AppError } from '../shared/errors.js';
import type { Contact, Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** More hops than any real chain (B into A, A later into C, ...): a guard, never a limit met. */
export const MAX_MERGE_HOPS = 32;

/**
 * A merge record that does not lead to a stored contact within the guard.
 * Contacts are never deleted, so this means the database was changed by
 * hand; acting on the merged-away record instead would bring it back to life
 * beside the kept one, so whatever asked stops here (its transaction rolls back).
 */
export function brokenMergeChain(contactId: string, detail: string): AppError {
  return new AppError('conflict', `contact ${contactId}: ${detail}; the contact_merges table needs repair`);
}

/** The contact this one was merged into, one hop, if it was. */
export async function findMergedInto(db: Executor, contactId: string): Promise<Contact | undefined> {
  const row = await db
    .selectFrom('contact_merges as m')
    .leftJoin('contacts as c', 'c.id', 'm.merged_into')
    .select('m.merged_into')
    .selectAll('c')
    .where('m.contact_id', '=', contactId)
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.id === null) throw brokenMergeChain(contactId, `merged into ${row.merged_into}, which is not stored`);
  const { merged_into: _into, ...contact } = row;
  return contact as Contact;
}

/** The contact that answers for `contact`: itself, or the end of its chain of merges. */
export async function keptContactOf(db: Executor, contact: Contact): Promise<Contact> {
  let current = contact;
  for (let hop = 0; hop < MAX_MERGE_HOPS; hop += 1) {
    const next = await findMergedInto(db, current.id);
    if (!next) return current;
    current = next;
  }
  throw brokenMergeChain(contact.id, `merge chain longer than ${MAX_MERGE_HOPS} hops`);
}

/** Every contact merged, directly or along a chain, into this one (for erasure: one person, all records). */
export async function findMergedAwayInto(db: Executor, contactId: string): Promise<string[]> {
  const out: string[] = [];
  let frontier = [contactId];
  for (let hop = 0; frontier.length > 0; hop += 1) {
    if (hop >= MAX_MERGE_HOPS) throw brokenMergeChain(contactId, `merge chain longer than ${MAX_MERGE_HOPS} hops`);
    const rows = await db.selectFrom('contact_merges').select('contact_id').where('merged_into', 'in', frontier).orderBy('contact_id').execute();
    frontier = rows.map((r) => r.contact_id);
    out.push(...frontier);
  }
  return out;
}
