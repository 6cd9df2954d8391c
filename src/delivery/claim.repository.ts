import { sql, type Kysely, type Transaction } from 'kysely';
import type { Capabilities, Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

export interface DeliveryKey {
  campaignId: string;
  contactId: string;
}

/** Campaigns whose deliveries may be claimed, oldest start first (one campaign's mail is not starved by another's). */
export async function findClaimableCampaignIds(db: Executor, campaignId: string | undefined): Promise<string[]> {
  const rows = await db
    .selectFrom('campaigns')
    .select('id')
    .where('status', '=', 'sending')
    .$if(campaignId !== undefined, (q) => q.where('id', '=', campaignId!))
    .orderBy('started_at')
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Claims up to `batchSize` deliveries of one sending campaign that are
 * `which`: 'expired' (claimed under a lease that ran out: a dead worker's) or
 * 'due' (queued and due, oldest due first). One UPDATE … WHERE key IN
 * (SELECT … LIMIT n), so the row lock is taken by the statement that changes
 * it; with `skipLocked` (PostgreSQL) the inner select is `FOR UPDATE SKIP
 * LOCKED` and concurrent claimers pass over each other's rows; SQLite
 * serialises writers, so the same statement is already exclusive. Each
 * select is a range of the index (campaign_id, status, next_attempt_at), so a
 * claim costs the same at the first and the millionth delivery: no sort.
 */
export async function claimRows(
  db: Executor,
  input: { capabilities: Capabilities; campaignId: string; which: 'expired' | 'due'; workerId: string; batchSize: number; leaseUntil: string; now: string },
): Promise<{ campaign_id: string; contact_id: string; attempts: number }[]> {
  return db
    .updateTable('deliveries')
    .set({ status: 'claimed', lease_owner: input.workerId, lease_until: input.leaseUntil, updated_at: input.now })
    .where(({ eb, refTuple, selectFrom }) =>
      eb(
        refTuple('campaign_id', 'contact_id'),
        'in',
        selectFrom('deliveries as d')
          .select(['d.campaign_id', 'd.contact_id'])
          .where('d.campaign_id', '=', input.campaignId)
          // Still sending in this statement's own read: a pause that committed after the campaign list was read holds.
          .where(({ exists, selectFrom: from }) => exists(from('campaigns as c').select('c.id').where('c.id', '=', input.campaignId).where('c.status', '=', 'sending')))
          .$if(input.which === 'expired', (q) => q.where('d.status', '=', 'claimed').where('d.lease_until', '<=', input.now))
          .$if(input.which === 'due', (q) => q.where('d.status', '=', 'queued').where('d.next_attempt_at', '<=', input.now).orderBy('d.next_attempt_at'))
          .limit(input.batchSize)
          .$if(input.capabilities.skipLocked, (q) => q.forUpdate().skipLocked())
          .$asTuple('campaign_id', 'contact_id'),
      ),
    )
    .returning(['campaign_id', 'contact_id', 'attempts'])
    .execute();
}

/** The contacts of a claimed batch: address to send to, match key for suppression, erasure. */
export async function findClaimContacts(
  db: Executor,
  contactIds: string[],
): Promise<{ id: string; address: string | null; match_key: string | null; erased_at: string | null }[]> {
  if (contactIds.length === 0) return [];
  return db.selectFrom('contacts').select(['id', 'address', 'match_key', 'erased_at']).where('id', 'in', contactIds).execute();
}

/** Topic and kind of the campaigns in a claimed batch. */
export async function findClaimCampaigns(db: Executor, campaignIds: string[]): Promise<{ id: string; topic_id: string; kind: string }[]> {
  if (campaignIds.length === 0) return [];
  return db.selectFrom('campaigns').select(['id', 'topic_id', 'kind']).where('id', 'in', campaignIds).execute();
}

/** Current consent states of the batch's contacts for the batch's topics (read in the claim's transaction). */
export async function findBatchStates(
  db: Executor,
  input: { contactIds: string[]; topicIds: string[] },
): Promise<{ contact_id: string; topic_id: string; state: string; event_seq: number }[]> {
  if (input.contactIds.length === 0 || input.topicIds.length === 0) return [];
  return db
    .selectFrom('consent_states')
    .select(['contact_id', 'topic_id', 'state', 'event_seq'])
    .where('contact_id', 'in', input.contactIds)
    .where('topic_id', 'in', input.topicIds)
    .execute();
}

/** Suppression entries matching any of the hashes, for everything or one of the topics. */
export async function findBatchSuppressions(
  db: Executor,
  input: { hashes: string[]; scopes: string[] },
): Promise<{ key_hash: string; scope: string }[]> {
  if (input.hashes.length === 0) return [];
  return db
    .selectFrom('suppressions')
    .select(['key_hash', 'scope'])
    .where('key_hash', 'in', input.hashes)
    .where('scope', 'in', input.scopes)
    .execute();
}

/** Records deliveries the gate refused, with its reason; they are never sent. */
export async function skipDeliveries(
  db: Executor,
  input: { campaignId: string; contactIds: string[]; reason: string; now: string },
): Promise<void> {
  await db
    .updateTable('deliveries')
    .set({ status: 'skipped', skip_reason: input.reason, lease_owner: null, lease_until: null, updated_at: input.now })
    .where('campaign_id', '=', input.campaignId)
    .where('contact_id', 'in', input.contactIds)
    .execute();
}

export interface SentMark {
  key: DeliveryKey;
  messageId: string;
  consentEventSeq: number;
  sentAt: string;
}

/** Rows per statement: 5 parameters each stays far below SQLite's 32,766 and PostgreSQL's 65,535. */
const MARKS_PER_STATEMENT = 500;

/**
 * Records messages the transport accepted, each under the consent event that
 * allowed it; a row still 'claimed' even if its lease lapsed, since it was
 * sent. One statement per 500 (UPDATE … FROM a
 * VALUES list, SQLite 3.33+ and PostgreSQL alike). Returns the keys that were
 * still 'claimed' and are now 'sent', as "campaignId|contactId".
 */
export async function markDeliveriesSent(db: Executor, marks: SentMark[], now: string): Promise<Set<string>> {
  const done = new Set<string>();
  for (let i = 0; i < marks.length; i += MARKS_PER_STATEMENT) {
    const chunk = marks.slice(i, i + MARKS_PER_STATEMENT);
    const values = sql.join(
      chunk.map((m) => sql`(${m.key.campaignId}, ${m.key.contactId}, ${m.messageId}, ${m.consentEventSeq}, ${m.sentAt})`),
    );
    const result = await sql<{ campaign_id: string; contact_id: string }>`
      with v(campaign_id, contact_id, message_id, consent_event_seq, sent_at) as (values ${values})
      update deliveries set
        status = 'sent', message_id = v.message_id, consent_event_seq = cast(v.consent_event_seq as bigint),
        sent_at = v.sent_at, attempts = attempts + 1, error = null, lease_owner = null, lease_until = null, updated_at = ${now}
      from v
      where deliveries.campaign_id = v.campaign_id and deliveries.contact_id = v.contact_id and deliveries.status = 'claimed'
      returning deliveries.campaign_id, deliveries.contact_id`.execute(db);
    for (const row of result.rows) done.add(`${row.campaign_id}|${row.contact_id}`);
  }
  return done;
}

/** Ends this worker's claim with a new status (queued again later, or failed); only the lease holder may. */
export async function releaseDelivery(
  db: Executor,
  input: { key: DeliveryKey; workerId: string; status: 'queued' | 'failed'; error: string; nextAttemptAt: string; now: string },
): Promise<boolean> {
  const result = await db
    .updateTable('deliveries')
    .set((eb) => ({
      status: input.status,
      error: input.error,
      next_attempt_at: input.nextAttemptAt,
      attempts: eb('attempts', '+', 1),
      lease_owner: null,
      lease_until: null,
      updated_at: input.now,
    }))
    .where('campaign_id', '=', input.key.campaignId)
    .where('contact_id', '=', input.key.contactId)
    .where('status', '=', 'claimed')
    .where('lease_owner', '=', input.workerId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Hands a claimed row back, due at `until`, without counting an attempt (the throttle said "not now"); only the lease holder may. */
export async function deferClaimedDelivery(
  db: Executor,
  input: { key: DeliveryKey; workerId: string; until: string; now: string },
): Promise<boolean> {
  const result = await db
    .updateTable('deliveries')
    .set({ status: 'queued', next_attempt_at: input.until, lease_owner: null, lease_until: null, updated_at: input.now })
    .where('campaign_id', '=', input.key.campaignId)
    .where('contact_id', '=', input.key.contactId)
    .where('status', '=', 'claimed')
    .where('lease_owner', '=', input.workerId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
