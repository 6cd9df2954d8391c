import { sql, type Kysely, type Transaction } from 'kysely';
import { finalMergeTargets } from '../contacts/index.js';
import type { Tables } from '../storage/index.js';
import type { Campaign } from './campaign.js';
import { DEADLINE_SKIP_REASON, type RepermissionRow } from './repermission.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** Stores what only a re-permission campaign has. */
export async function insertRepermission(db: Executor, row: RepermissionRow): Promise<void> {
  await db.insertInto('repermission_campaigns').values(row).execute();
}

/** A re-permission campaign's own row, by campaign id. */
export async function findRepermission(db: Executor, campaignId: string): Promise<RepermissionRow | undefined> {
  return db.selectFrom('repermission_campaigns').selectAll().where('campaign_id', '=', campaignId).executeTakeFirst();
}

/** The reminder (child campaign) of a root re-permission campaign, if one was made. */
export async function findReminderOf(db: Executor, parentId: string): Promise<RepermissionRow | undefined> {
  return db.selectFrom('repermission_campaigns').selectAll().where('parent_id', '=', parentId).executeTakeFirst();
}

/** Root campaigns whose reminder time has come and whose reminder was not made yet. */
export async function findReminderCandidates(db: Executor, now: string): Promise<{ row: RepermissionRow; campaign: Campaign }[]> {
  const rows = await db
    .selectFrom('repermission_campaigns as r')
    .innerJoin('campaigns as c', 'c.id', 'r.campaign_id')
    .selectAll('c')
    .select(['r.parent_id', 'r.deadline_at', 'r.reminder_at', 'r.reminder_sent_at', 'r.closed_at'])
    .where('r.parent_id', 'is', null)
    .where('r.reminder_sent_at', 'is', null)
    .where('r.reminder_at', '<=', now)
    .where('r.deadline_at', '>', now)
    .execute();
  return rows.map(({ parent_id, deadline_at, reminder_at, reminder_sent_at, closed_at, ...campaign }) => ({
    row: { campaign_id: campaign.id, parent_id, deadline_at, reminder_at, reminder_sent_at, closed_at },
    campaign,
  }));
}

/** Takes the reminder of a root campaign (compare-and-set): only one worker makes it; false when another did. */
export async function takeReminder(db: Executor, input: { campaignId: string; now: string }): Promise<boolean> {
  const result = await db
    .updateTable('repermission_campaigns')
    .set({ reminder_sent_at: input.now })
    .where('campaign_id', '=', input.campaignId)
    .where('reminder_sent_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * Queues the reminder: one delivery per contact whose first request was
 * sent and who is still `imported` for the topic (has not answered), in one
 * INSERT … SELECT, so the audience never passes through this process.
 */
export async function materialiseReminder(
  db: Executor,
  input: { parentId: string; childId: string; topicId: string; now: string },
): Promise<number> {
  const audience = db
    .selectFrom('deliveries as d')
    .innerJoin('consent_states as s', (j) => j.onRef('s.contact_id', '=', 'd.contact_id').on('s.topic_id', '=', input.topicId))
    .select([
      sql<string>`cast(${input.childId} as text)`.as('campaign_id'),
      'd.contact_id',
      sql<string>`'queued'`.as('status'),
      sql<number>`0`.as('attempts'),
      sql<string>`cast(${input.now} as text)`.as('next_attempt_at'),
      sql<string>`cast(${input.now} as text)`.as('updated_at'),
    ])
    .where('d.campaign_id', '=', input.parentId)
    .where('d.status', '=', 'sent')
    .where('s.state', '=', 'imported');
  const result = await db
    .insertInto('deliveries')
    .columns(['campaign_id', 'contact_id', 'status', 'attempts', 'next_attempt_at', 'updated_at'])
    .expression(audience)
    .onConflict((oc) => oc.columns(['campaign_id', 'contact_id']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0);
}

/** Re-permission campaigns (roots and reminders) whose deadline passed and that the deadline job has not closed. */
export async function findPastDeadline(db: Executor, now: string): Promise<{ row: RepermissionRow; status: string; topicId: string }[]> {
  const rows = await db
    .selectFrom('repermission_campaigns as r')
    .innerJoin('campaigns as c', 'c.id', 'r.campaign_id')
    .selectAll('r')
    .select(['c.status', 'c.topic_id'])
    .where('r.closed_at', 'is', null)
    .where('r.deadline_at', '<=', now)
    .execute();
  return rows.map(({ status, topic_id, ...row }) => ({ row, status, topicId: topic_id }));
}

/** Deliveries still queued at the deadline: skipped, never sent (their link would be dead). */
export async function skipQueuedAtDeadline(db: Executor, input: { campaignId: string; now: string }): Promise<number> {
  const result = await db
    .updateTable('deliveries')
    .set({ status: 'skipped', skip_reason: DEADLINE_SKIP_REASON, lease_owner: null, lease_until: null, updated_at: input.now })
    .where('campaign_id', '=', input.campaignId)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * The next batch of the campaign's audience still `imported` for the topic,
 * with the event that put them there. Read inside the ledger transaction,
 * so a confirmation committing meanwhile is seen; no cursor is needed, since
 * each batch leaves the state it selects on.
 */
export async function nextUnansweredBatch(
  trx: Transaction<Tables>,
  input: { campaignId: string; topicId: string; limit: number },
): Promise<{ contact_id: string; event_seq: number }[]> {
  const direct = await trx
    .selectFrom('deliveries as d')
    .innerJoin('consent_states as s', (j) => j.onRef('s.contact_id', '=', 'd.contact_id').on('s.topic_id', '=', input.topicId))
    .select(['d.contact_id', 's.event_seq'])
    .where('d.campaign_id', '=', input.campaignId)
    .where('s.state', '=', 'imported')
    .orderBy('d.contact_id')
    .limit(input.limit)
    .execute();
  if (direct.length === input.limit) return direct;
  // A request went to a record an operator merged into another afterwards
  // (perhaps along a chain): the contact at the end holds the state now, and
  // it lapses too. Merges are few.
  const away = await trx
    .selectFrom('deliveries as d')
    .innerJoin('contact_merges as m', 'm.contact_id', 'd.contact_id')
    .select('d.contact_id')
    .where('d.campaign_id', '=', input.campaignId)
    .execute();
  if (away.length === 0) return direct;
  const seen = new Set(direct.map((r) => r.contact_id));
  const kept = [...new Set((await finalMergeTargets(trx, away.map((r) => r.contact_id))).values())].filter((id) => !seen.has(id)).sort();
  const out = [...direct];
  for (let i = 0; i < kept.length && out.length < input.limit; i += 500) {
    const rows = await trx
      .selectFrom('consent_states')
      .select(['contact_id', 'event_seq'])
      .where('topic_id', '=', input.topicId)
      .where('state', '=', 'imported')
      .where('contact_id', 'in', kept.slice(i, i + 500))
      .orderBy('contact_id')
      .limit(input.limit - out.length)
      .execute();
    out.push(...rows);
  }
  return out;
}

/** Records that the deadline job finished with a campaign. */
export async function markClosed(db: Executor, input: { campaignId: string; now: string }): Promise<void> {
  await db.updateTable('repermission_campaigns').set({ closed_at: input.now }).where('campaign_id', '=', input.campaignId).execute();
}

/** How the audience of a root campaign stands now, by consent state for its topic. */
export async function countAudienceStates(db: Executor, input: { campaignId: string; topicId: string }): Promise<{ state: string; count: number }[]> {
  const rows = await db
    .selectFrom('deliveries as d')
    .leftJoin('consent_states as s', (j) => j.onRef('s.contact_id', '=', 'd.contact_id').on('s.topic_id', '=', input.topicId))
    .select(({ fn }) => ['s.state', fn.countAll<number>().as('count')])
    .where('d.campaign_id', '=', input.campaignId)
    .groupBy('s.state')
    .execute();
  return rows.map((r) => ({ state: r.state ?? 'none', count: Number(r.count) }));
}

/** The Message-ID of the request a contact was sent by a campaign, for the evidence of their answer. */
export async function findSentMessageId(db: Executor, input: { campaignId: string; contactId: string }): Promise<string | null> {
  const row = await db
    .selectFrom('deliveries')
    .select('message_id')
    .where('campaign_id', '=', input.campaignId)
    .where('contact_id', '=', input.contactId)
    .executeTakeFirst();
  return row?.message_id ?? null;
}
