/**
 * Subscribing from the preference centre, pure. It is the one path that may
 * lift a person's own objection (DESIGN.md: "only a fresh, confirmed double
 * opt-in by that person lifts a suppression"), so its rules are narrow.
 */
import { CENTRE_METHOD, selfLiftableReasons, type SuppressionRow } from '../consent/index.js';

export type { SuppressionRow };

/** The method recorded on `requested` events made in the preference centre. */
export { CENTRE_METHOD } from '../consent/index.js';
/** confirmation_tokens.form_id for requests that came from no form. */
export const CENTRE_FORM_ID = 'preference-centre';

export type ResubscriptionSkip = 'blocked' | 'nothing_new' | 'throttled';
export type ResubscriptionPlan = { send: true; topicIds: string[] } | { send: false; reason: ResubscriptionSkip };

export function planResubscription(input: {
  requestedTopicIds: string[];
  states: Map<string, string>;
  pending: Set<string>;
  /** Reasons of every suppression matching the address (all scope or these topics). */
  suppressionReasons: string[];
  confirmationsToday: number;
  confirmationsPerDay: number;
}): ResubscriptionPlan {
  // A complaint, bounce, erasure or restriction is never undone from here.
  if (input.suppressionReasons.some((r) => !selfLiftableReasons.includes(r))) return { send: false, reason: 'blocked' };
  const topicIds = input.requestedTopicIds.filter((id) => input.states.get(id) !== 'confirmed' && !input.pending.has(id));
  if (topicIds.length === 0) return { send: false, reason: 'nothing_new' };
  if (input.confirmationsToday >= input.confirmationsPerDay) return { send: false, reason: 'throttled' };
  return { send: true, topicIds };
}

export type LiftPlan = { ok: true; lift: SuppressionRow[] } | { ok: false };

/**
 * Which suppressions a confirmation may delete, or none at all. Every row
 * must be the person's own (their exact address, or written by one of their
 * own events: an alias entry may belong to someone else sharing the
 * mailbox), of a reason they may undo, and older than the request: an
 * objection made after asking still wins. Requests that came from a form,
 * not the preference centre, never lift anything (ABU-04).
 */
export function planSuppressionLift(input: {
  rows: SuppressionRow[];
  requested: { method: unknown; occurredAt: string }[];
  ownHashes: ReadonlySet<string>;
  ownEventSeqs: ReadonlySet<number>;
}): LiftPlan {
  if (input.rows.length === 0) return { ok: true, lift: [] };
  if (input.requested.length === 0 || input.requested.some((r) => r.method !== CENTRE_METHOD)) return { ok: false };
  const requestedAt = input.requested.map((r) => r.occurredAt).sort()[0]!;
  const liftable = (row: SuppressionRow) =>
    selfLiftableReasons.includes(row.reason) &&
    row.created_at <= requestedAt &&
    (input.ownHashes.has(row.key_hash) || (row.event_seq !== null && input.ownEventSeqs.has(Number(row.event_seq))));
  return input.rows.every(liftable) ? { ok: true, lift: input.rows } : { ok: false };
}
