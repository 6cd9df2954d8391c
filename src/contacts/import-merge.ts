/**
 * The merge rule for import rows that share a match key, with each other and
 * with the contact already stored (DESIGN.md flow 2; issue 5 point 3). Pure.
 *
 * Same match key, same person (ADR-03). The most restrictive state wins on
 * the topic: suppressed > withdrawn/lapsed > imported > nothing. An import
 * never raises consent: a "subscribed" row yields at most `imported`, which
 * only allows a re-permission request (GDPR Art. 7(1): the controller must
 * be able to prove consent; a legacy list cannot). It never re-subscribes a
 * person who withdrew, lapsed or objected (Art. 7(3), 21(3)), and never
 * touches a confirmed or pending double opt-in. An unsubscribe, bounce or
 * complaint anywhere suppresses, whatever other rows say.
 */

export type RestrictiveStatus = 'unsubscribed' | 'bounced' | 'complained';
export type RowStatus = 'subscribed' | RestrictiveStatus;

/** What is stored for the person before these rows. */
export interface Held {
  /** A contact with this match key exists. */
  contact: boolean;
  /** Its consent state for the import's topic, if any. */
  topicState: string | null;
  /** A suppression of the address (any alias, any key version) for everything or for this topic. */
  suppression: 'all' | 'topic' | null;
  /**
   * The suppression for everything stands only on reasons the person could
   * lift with a fresh opt-in of their own (an unsubscribe or objection), and
   * the address was not erased.
   */
  selfLiftable?: boolean;
}

/**
 * What happens to each row: `imported` / `suppressed` record their own event;
 * `merged` rows lost to a more restrictive state and their evidence goes into
 * the `merged` event; `unchanged` rows lost to a state the import may not
 * change; `suppressed_skipped` rows belong to a suppressed or erased address
 * and are not stored at all.
 */
export type RowOutcome = 'imported' | 'suppressed' | 'merged' | 'unchanged' | 'suppressed_skipped';

export interface MergeDecision {
  /** One per input row, in input order. */
  outcomes: RowOutcome[];
  createContact: boolean;
  /** The row whose event keys the suppression entry (the least liftable reason), if the rows suppress. */
  suppressionRow: number | null;
  /** Set when merging changed the person's state against what some record said (for the dedupe report). */
  merged: { from: string | null; to: string } | null;
}

/** Order of suppression reasons: a complaint or bounce cannot be lifted by a self-service opt-in, an unsubscribe can. */
export const severity: Readonly<Record<RestrictiveStatus, number>> = { unsubscribed: 1, bounced: 2, complained: 3 };

/** States an import may set or keep adding evidence to; every other state stands (Art. 7(3), 21(3)). */
const importable = new Set<string | null>([null, 'imported']);

export function decideMerge(held: Held, rows: readonly RowStatus[]): MergeDecision {
  const none = { createContact: false, suppressionRow: null, merged: null };
  if (held.suppression === 'all') return alreadySuppressed(held, rows);
  const restrictive = rows.flatMap((status, i) => (status === 'subscribed' ? [] : [i]));
  if (restrictive.length > 0) return suppress(held, rows, restrictive);
  if (held.suppression === 'topic') return { outcomes: rows.map(() => 'suppressed_skipped'), ...none };
  if (!importable.has(held.topicState)) return { outcomes: rows.map(() => 'unchanged'), ...none };
  return { outcomes: rows.map(() => 'imported'), createContact: !held.contact, suppressionRow: null, merged: null };
}

/**
 * Rows of an address suppressed for everything are skipped (SUP-04 b), with
 * one exception: a bounce or complaint for a stored person whose suppression
 * they could still lift themselves (an unsubscribe) is recorded, so the
 * stronger reason holds the address for good. Nobody is added, nothing else
 * changes, and an erased address is never touched.
 */
function alreadySuppressed(held: Held, rows: readonly RowStatus[]): MergeDecision {
  const skipped: MergeDecision = { outcomes: rows.map(() => 'suppressed_skipped'), createContact: false, suppressionRow: null, merged: null };
  if (!held.contact || !held.selfLiftable) return skipped;
  const stronger = rows.flatMap((status, i) => (status === 'bounced' || status === 'complained' ? [i] : []));
  if (stronger.length === 0) return skipped;
  const suppressionRow = stronger.reduce((best, i) => (severity[rows[i] as RestrictiveStatus] > severity[rows[best] as RestrictiveStatus] ? i : best));
  return { ...skipped, outcomes: rows.map((_, i): RowOutcome => (i === suppressionRow ? 'suppressed' : 'suppressed_skipped')), suppressionRow };
}

function suppress(held: Held, rows: readonly RowStatus[], restrictive: number[]): MergeDecision {
  const suppressionRow = restrictive.reduce((best, i) =>
    severity[rows[i] as RestrictiveStatus] > severity[rows[best] as RestrictiveStatus] ? i : best,
  );
  // Subscribed rows of an address already suppressed for this topic stay out, as any suppressed row does.
  const subscribedOutcome: RowOutcome = held.suppression === 'topic' ? 'suppressed_skipped' : 'merged';
  const outcomes = rows.map((status): RowOutcome => (status === 'subscribed' ? subscribedOutcome : 'suppressed'));
  const from = held.topicState;
  // A merge changed someone's state when a record said otherwise: a row said
  // subscribed, or the stored contact held a state that suppression overrides.
  const conflict = outcomes.includes('merged') || from !== null;
  return {
    outcomes,
    createContact: !held.contact,
    suppressionRow,
    merged: conflict ? { from, to: 'suppressed' } : null,
  };
}
