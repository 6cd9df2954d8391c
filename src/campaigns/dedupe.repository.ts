import type { Kysely, Transaction } from 'kysely';
import type { Contact, ConsentEventRow, Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** A page of `merged` events in ledger order, after a sequence number (the report streams them). */
export async function readMergedEventsAfter(db: Executor, input: { afterSeq: number; limit: number }): Promise<ConsentEventRow[]> {
  return db
    .selectFrom('consent_events')
    .selectAll()
    .where('type', '=', 'merged')
    .where('seq', '>', input.afterSeq)
    .orderBy('seq')
    .limit(input.limit)
    .execute();
}

/**
 * A page of provider keys held by live contacts with more than one match
 * key: probable duplicates (ADR-07). Erased and merged-away contacts are left
 * out, so a pair drops off the list once the operator merged it.
 */
export async function findDuplicateProviderKeys(db: Executor, input: { afterKey: string; limit: number }): Promise<string[]> {
  const rows = await db
    .selectFrom('contacts as c')
    .leftJoin('contact_merges as m', 'm.contact_id', 'c.id')
    .select('c.provider_key')
    .where('c.provider_key', 'is not', null)
    .where('c.provider_key', '>', input.afterKey)
    .where('c.erased_at', 'is', null)
    .where('m.contact_id', 'is', null)
    .groupBy('c.provider_key')
    .having((eb) => eb.fn.count('c.match_key').distinct(), '>', 1)
    .orderBy('c.provider_key')
    .limit(input.limit)
    .execute();
  return rows.map((r) => r.provider_key!);
}

/** The live (not erased, not merged-away) contacts holding any of the provider keys. */
export async function findLiveContactsByProviderKeys(db: Executor, providerKeys: string[]): Promise<Contact[]> {
  if (providerKeys.length === 0) return [];
  return db
    .selectFrom('contacts as c')
    .leftJoin('contact_merges as m', 'm.contact_id', 'c.id')
    .selectAll('c')
    .where('c.provider_key', 'in', providerKeys)
    .where('c.erased_at', 'is', null)
    .where('m.contact_id', 'is', null)
    .orderBy('c.provider_key')
    .orderBy('c.created_at')
    .orderBy('c.id')
    .execute();
}

/** Current consent states of several contacts. */
export async function findStatesOf(db: Executor, contactIds: string[]): Promise<{ contact_id: string; topic_id: string; state: string; event_seq: number }[]> {
  if (contactIds.length === 0) return [];
  return db.selectFrom('consent_states').select(['contact_id', 'topic_id', 'state', 'event_seq']).where('contact_id', 'in', contactIds).execute();
}

/** Whether a contact was merged into another. */
export async function findMergeOf(db: Executor, contactId: string): Promise<{ merged_into: string } | undefined> {
  return db.selectFrom('contact_merges').select('merged_into').where('contact_id', '=', contactId).executeTakeFirst();
}

/** Records that a contact was merged into another; written in the merge's ledger transaction. */
export async function insertMerge(trx: Transaction<Tables>, row: { contact_id: string; merged_into: string; merged_at: string; event_seq: number }): Promise<void> {
  await trx.insertInto('contact_merges').values(row).execute();
}

/**
 * Closes the merged-away contact's projected states, in the same transaction
 * as its `merged` event, which lists them: they now live on the kept contact
 * (appended there as events), so no audience or claim finds the old id.
 */
export async function deleteStatesOf(trx: Transaction<Tables>, contactId: string): Promise<void> {
  await trx.deleteFrom('consent_states').where('contact_id', '=', contactId).execute();
}

/** Topic slugs by id, for readable reports. */
export async function findTopicSlugs(db: Executor): Promise<Map<string, string>> {
  const rows = await db.selectFrom('topics').select(['id', 'slug']).execute();
  return new Map(rows.map((r) => [r.id, r.slug]));
}

/** Id and hash of ledger events by sequence number: merge evidence points at the events it carries over. */
export async function findEventRefs(db: Executor, seqs: number[]): Promise<Map<number, { id: string; hash: string }>> {
  if (seqs.length === 0) return new Map();
  const rows = await db.selectFrom('consent_events').select(['seq', 'id', 'hash']).where('seq', 'in', seqs).execute();
  return new Map(rows.map((r) => [Number(r.seq), { id: r.id, hash: r.hash }]));
}
