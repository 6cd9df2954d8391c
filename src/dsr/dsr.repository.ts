/**
 * SQL for data-subject requests (GDPR Art. 15, 17, 20). Every read is
 * filtered by one contact id (or by hashes of that contact's own address),
 * so an export can never carry another person's rows.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** System mails (confirmation, receipt, …) logged against one contact, oldest first. */
export async function findMailLog(
  db: Executor,
  contactId: string,
): Promise<{ kind: string; message_id: string; created_at: string }[]> {
  return db
    .selectFrom('mail_log')
    .select(['kind', 'message_id', 'created_at'])
    .where('contact_id', '=', contactId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

/** One contact's campaign deliveries with the campaign's subject, oldest first. */
export async function findDeliveries(
  db: Executor,
  contactId: string,
): Promise<
  { campaign_id: string; subject: string; status: string; sent_at: string | null; message_id: string | null; skip_reason: string | null }[]
> {
  return db
    .selectFrom('deliveries')
    .innerJoin('campaigns', 'campaigns.id', 'deliveries.campaign_id')
    .select([
      'deliveries.campaign_id',
      'campaigns.subject',
      'deliveries.status',
      'deliveries.sent_at',
      'deliveries.message_id',
      'deliveries.skip_reason',
    ])
    .where('deliveries.contact_id', '=', contactId)
    .orderBy('campaigns.created_at')
    .orderBy('deliveries.campaign_id')
    .execute();
}

/**
 * Suppression entries stored under any of the hashes of the person's
 * address, or written by one of the person's own ledger events (the only
 * link left once the address is erased). The hash itself is never returned.
 */
export async function findSuppressionEntries(
  db: Executor,
  input: { hashes: string[]; eventSeqs: number[] },
): Promise<{ scope: string; reason: string; created_at: string }[]> {
  if (input.hashes.length === 0 && input.eventSeqs.length === 0) return [];
  return db
    .selectFrom('suppressions')
    .select(['scope', 'reason', 'created_at'])
    .where((eb) =>
      eb.or([
        ...(input.hashes.length > 0 ? [eb('key_hash', 'in', input.hashes)] : []),
        ...(input.eventSeqs.length > 0 ? [eb('event_seq', 'in', input.eventSeqs)] : []),
      ]),
    )
    .orderBy('created_at')
    .execute();
}

/** Strips a contact row of personal data, keeping the id and creation date (Art. 17). */
export async function blankContact(db: Executor, contactId: string, erasedAt: string): Promise<void> {
  await db
    .updateTable('contacts')
    .set({ address: null, match_key: null, provider_key: null, locale: null, erased_at: erasedAt })
    .where('id', '=', contactId)
    .execute();
}

/** Deletes a contact's wrapped evidence key: every sealed value in the ledger becomes unreadable. */
export async function deleteContactKey(db: Executor, contactId: string): Promise<void> {
  await db.deleteFrom('contact_keys').where('contact_id', '=', contactId).execute();
}

/** Deletes a contact's sealed names; already unreadable once the key is gone, but a personal row all the same. */
export async function deleteContactNames(db: Executor, contactId: string): Promise<void> {
  await db.deleteFrom('contact_names').where('contact_id', '=', contactId).execute();
}

/** Deletes a contact's confirmation tokens, used or not. */
export async function deleteContactTokens(db: Executor, contactId: string): Promise<void> {
  await db.deleteFrom('confirmation_tokens').where('contact_id', '=', contactId).execute();
}

/** The merge records of contacts an operator merged away (into whom, when). */
export async function findMergeRows(db: Executor, contactIds: string[]): Promise<{ contact_id: string; merged_into: string; merged_at: string }[]> {
  if (contactIds.length === 0) return [];
  return db.selectFrom('contact_merges').select(['contact_id', 'merged_into', 'merged_at']).where('contact_id', 'in', contactIds).execute();
}
