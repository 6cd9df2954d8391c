/**
 * The re-permission housekeeping a worker runs on every loop (issue 5 point
 * 4): makes the one reminder when its time comes, and when a deadline
 * passes stops the sending and lapses every contact of the audience who is
 * still `imported`. Safe to run from many workers at once: the reminder is
 * taken with a compare-and-set, and lapses re-read the state inside the
 * ledger transaction.
 */
import { withLedger } from '../consent/index.js';
import { transition, type Campaign } from './campaign.js';
import { insertCampaign, setMaterialised, updateCampaignStatus } from './campaign.repository.js';
import type { CampaignDeps } from './campaign.service.js';
import { deadlineAction, LAPSE_BATCH, LAPSE_METHOD, reminderDue } from './repermission.js';
import {
  findPastDeadline,
  findReminderCandidates,
  insertRepermission,
  markClosed,
  materialiseReminder,
  nextUnansweredBatch,
  skipQueuedAtDeadline,
  takeReminder,
} from './repermission.repository.js';

export interface RepermissionJobReport {
  /** Reminder campaigns made (their ids). */
  reminders: string[];
  /** Campaigns (roots and reminders) closed at their deadline. */
  closed: string[];
  /** `lapsed` events appended. */
  lapsed: number;
  /** Deliveries still queued at a deadline, skipped. */
  skipped: number;
}

export async function runRepermissionJobs(deps: CampaignDeps, now: Date, options: { lapseBatch?: number } = {}): Promise<RepermissionJobReport> {
  const reminders = await makeDueReminders(deps, now);
  const report: RepermissionJobReport = { reminders, closed: [], lapsed: 0, skipped: 0 };
  const at = now.toISOString();
  for (const { row, status, topicId } of await findPastDeadline(deps.db, at)) {
    if (deadlineAction(status) === 'cancel') {
      await updateCampaignStatus(deps.db, { id: row.campaign_id, from: status, patch: { status: transition(status, 'cancel'), finished_at: at } });
    }
    report.skipped += await skipQueuedAtDeadline(deps.db, { campaignId: row.campaign_id, now: at });
    // A reminder's audience is a subset of its root's: lapsing runs once, on the root.
    if (row.parent_id === null) {
      report.lapsed += await lapseUnanswered(deps, { campaignId: row.campaign_id, topicId, deadlineAt: row.deadline_at, now, batch: options.lapseBatch ?? LAPSE_BATCH });
    }
    await markClosed(deps.db, { campaignId: row.campaign_id, now: at });
    report.closed.push(row.campaign_id);
  }
  return report;
}

/**
 * The reminder is a child campaign of kind 'repermission' (deliveries are
 * keyed (campaign_id, contact_id), so a second wave needs its own id). It
 * is made, started and materialised in one transaction, for those whose
 * first request was sent and who are still `imported` (have not answered).
 */
async function makeDueReminders(deps: CampaignDeps, now: Date): Promise<string[]> {
  const at = now.toISOString();
  const made: string[] = [];
  for (const { row, campaign } of await findReminderCandidates(deps.db, at)) {
    if (!reminderDue(row, campaign, now)) continue;
    const childId = await deps.db.transaction().execute(async (trx) => {
      if (!(await takeReminder(trx, { campaignId: campaign.id, now: at }))) return null;
      const child: Campaign = { ...campaign, id: deps.newId(), status: 'sending', scheduled_at: null, created_at: at, started_at: at, finished_at: null, materialised_at: null };
      await insertCampaign(trx, child);
      await insertRepermission(trx, { campaign_id: child.id, parent_id: campaign.id, deadline_at: row.deadline_at, reminder_at: null, reminder_sent_at: null, closed_at: null });
      await materialiseReminder(trx, { parentId: campaign.id, childId: child.id, topicId: campaign.topic_id, now: at });
      await setMaterialised(trx, { id: child.id, now: at });
      return child.id;
    });
    if (childId) made.push(childId);
  }
  return made;
}

/**
 * Appends `lapsed` for the audience still `imported`, one ledger transaction
 * per batch: memory and lock time stay bounded whatever the audience size,
 * and a crash half-way is finished by the next run (the state moved, so
 * nobody lapses twice). Lapsed contacts come back only through a new sign-up.
 */
async function lapseUnanswered(
  deps: CampaignDeps,
  input: { campaignId: string; topicId: string; deadlineAt: string; now: Date; batch: number },
): Promise<number> {
  let total = 0;
  for (;;) {
    const count = await withLedger(deps.db, async (trx, ledger) => {
      const batch = await nextUnansweredBatch(trx, { campaignId: input.campaignId, topicId: input.topicId, limit: input.batch });
      await ledger.append(
        batch.map((b) => ({
          id: deps.newId(),
          contactId: b.contact_id,
          topicId: input.topicId,
          type: 'lapsed' as const,
          occurredAt: input.now,
          evidence: { method: LAPSE_METHOD, actor: 'system', campaign_id: input.campaignId, deadline_at: input.deadlineAt, imported_event_seq: Number(b.event_seq) },
        })),
      );
      return batch.length;
    });
    total += count;
    // Until a batch finds no one: a short batch is not the end, since one
    // person reached through two records is taken once and the batch shrinks.
    // Every batch moves its people out of `imported`, so this ends.
    if (count === 0) return total;
  }
}
