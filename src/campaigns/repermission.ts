/**
 * Re-permission campaigns, the pure part (issue 5 point 4; DESIGN.md flow 3).
 * Imported contacts hold no proof of consent: they may receive exactly one
 * kind of mail, a request to confirm, with a deadline after which they lapse.
 * The request is itself direct marketing (ICO: Honda, Flybe; COMPLIANCE.md
 * EPR-04), so it goes through the same gate as any campaign, and it carries
 * nothing but the question, one confirm link and the mandatory links.
 */
import { AppError } from '../shared/errors.js';
import type { RepermissionCampaignsTable } from '../storage/index.js';
import type { Selectable } from 'kysely';

export type RepermissionRow = Selectable<RepermissionCampaignsTable>;

/** The template name stored on a re-permission campaign row: there is no operator template (Assent writes the mail). */
export const REPERMISSION_TEMPLATE = 'assent:repermission';
/** The subject stored on the row, for listings; each mail's subject comes from the catalogue in the person's language. */
export const REPERMISSION_SUBJECT = 'Do you still want to hear from us?';
/** Evidence method of a `confirmed` event recorded from a re-permission link. */
export { REPERMISSION_METHOD } from '../consent/index.js';
/** Evidence method of a `lapsed` event appended when the deadline passed. */
export const LAPSE_METHOD = 're_permission_deadline';
/** Contacts lapsed per ledger transaction: bounded memory and lock time whatever the audience size. */
export const LAPSE_BATCH = 1000;
/** Skip reason of deliveries still queued when the deadline passed: their confirm link would be dead on arrival. */
export const DEADLINE_SKIP_REASON = 'deadline_passed';

/** Checks the dates of a new re-permission campaign: the deadline in the future, a reminder strictly between now and it. */
export function checkRepermissionDates(input: { deadline: Date; reminderAt: Date | null; now: Date }): void {
  const { deadline, reminderAt, now } = input;
  if (Number.isNaN(deadline.getTime())) throw new AppError('validation_failed', 'the deadline is not a valid date');
  if (deadline.getTime() <= now.getTime()) throw new AppError('validation_failed', 'the deadline must be in the future');
  if (reminderAt === null) return;
  if (Number.isNaN(reminderAt.getTime())) throw new AppError('validation_failed', 'the reminder time is not a valid date');
  if (reminderAt.getTime() <= now.getTime() || reminderAt.getTime() >= deadline.getTime()) {
    throw new AppError('validation_failed', 'the reminder must come after now and before the deadline');
  }
}

export type ConfirmDecision = { ok: true } | { ok: false; reason: 'deadline_passed' | 'already_confirmed' | 'not_imported' | 'suppressed' | 'wrong_campaign' };

/**
 * May a click on a re-permission link record `confirmed`? Only while the
 * deadline has not passed and the person's state for the topic is still
 * `imported` (GDPR Art. 7(1): the click is the affirmative act; ABU-01:
 * nobody is on the list until they confirm). A suppression refuses: a later
 * objection or complaint is not undone by an old link.
 */
export function decideConfirm(input: {
  campaign: { kind: string; topic_id: string } | undefined;
  deadlineAt: string | undefined;
  tokenTopicId: string | undefined;
  state: string | null;
  suppressed: boolean;
  now: Date;
}): ConfirmDecision {
  const { campaign, deadlineAt } = input;
  if (!campaign || campaign.kind !== 'repermission' || deadlineAt === undefined || campaign.topic_id !== input.tokenTopicId) {
    return { ok: false, reason: 'wrong_campaign' };
  }
  if (deadlineAt <= input.now.toISOString()) return { ok: false, reason: 'deadline_passed' };
  if (input.state === 'confirmed') return { ok: false, reason: 'already_confirmed' };
  if (input.suppressed) return { ok: false, reason: 'suppressed' };
  if (input.state !== 'imported') return { ok: false, reason: 'not_imported' };
  return { ok: true };
}

/** What the deadline job does to a campaign whose deadline passed, by its status. */
export function deadlineAction(status: string): 'cancel' | 'drain' | 'none' {
  // Not yet sending (or paused): nothing more may go out, so it ends here.
  if (status === 'draft' || status === 'scheduled' || status === 'paused') return 'cancel';
  // Sending: what is still queued is skipped; the campaign finishes as sent.
  if (status === 'sending') return 'drain';
  return 'none';
}

/** Whether a root campaign's reminder is due now: set, not sent, before the deadline, and the first wave has gone out. */
export function reminderDue(row: RepermissionRow, campaign: { status: string }, now: Date): boolean {
  const at = now.toISOString();
  return (
    row.parent_id === null &&
    row.reminder_at !== null &&
    row.reminder_sent_at === null &&
    row.reminder_at <= at &&
    row.deadline_at > at &&
    (campaign.status === 'sending' || campaign.status === 'sent')
  );
}
