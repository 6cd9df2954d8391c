/**
 * De-duplication, the pure part (issue 5 point 3; DESIGN.md flow 2). Two
 * records with the same match key are one person and are merged by the
 * import; provider aliases (Gmail dots, +tags, googlemail.com: the same
 * provider key, different match keys) are only *probable* duplicates
 * (ADR-07): listed for review, merged when an operator says so, by the same
 * rule — the most restrictive state wins on every topic, so no merge can
 * drop an opt-out (the ICO's Morrisons, Honda and Flybe fines).
 */

/**
 * Topic states from the most to the least restrictive, by what each still
 * lets us send: withdrawn (an opt-out, never undone by a merge), lapsed
 * (nothing, until a new sign-up), requested (only the confirmation the
 * person asked for, already sent), imported (one re-permission request),
 * confirmed (campaigns). A state not listed here ranks above them all:
 * unknown errs towards not sending.
 */
export const restrictiveness: readonly string[] = ['withdrawn', 'lapsed', 'requested', 'imported', 'confirmed'];

function rank(state: string): number {
  const i = restrictiveness.indexOf(state);
  return i === -1 ? -1 : i;
}

/** The more restrictive of two states (the first when equal). */
export function moreRestrictive(a: string, b: string): string {
  return rank(b) < rank(a) ? b : a;
}

export interface TopicMerge {
  topicId: string;
  /** The kept contact's state before the merge, or null when it had none. */
  before: string | null;
  /** The merged contact's state. */
  other: string | null;
  after: string;
}

/**
 * The state of the kept contact for every topic either record holds. A
 * topic only one record has keeps that record's state: no record is not an
 * opt-out, so a merge withdraws nothing the person did not withdraw.
 */
export function mergeTopicStates(kept: ReadonlyMap<string, string>, other: ReadonlyMap<string, string>): TopicMerge[] {
  const topicIds = [...new Set([...kept.keys(), ...other.keys()])].sort();
  return topicIds.map((topicId) => {
    const before = kept.get(topicId) ?? null;
    const theirs = other.get(topicId) ?? null;
    const after = before === null ? theirs! : theirs === null ? before : moreRestrictive(before, theirs);
    return { topicId, before, other: theirs, after };
  });
}

/** Why a pair may not be merged by the operator command, or null when it may. */
export function mergeRefusal(
  keep: { id: string; match_key: string | null; provider_key: string | null; erased_at: string | null; merged: boolean } | undefined,
  other: { id: string; match_key: string | null; provider_key: string | null; erased_at: string | null; merged: boolean } | undefined,
): string | null {
  if (!keep || !other) return 'no such contact';
  if (keep.id === other.id) return 'a contact cannot be merged with itself';
  if (keep.erased_at || other.erased_at || keep.match_key === null || other.match_key === null) return 'an erased contact cannot be merged';
  if (keep.merged || other.merged) return 'one of the contacts was already merged';
  if (keep.provider_key === null || keep.provider_key !== other.provider_key) return 'the contacts are not probable duplicates (no shared provider key)';
  return null;
}

/** One line of the merge report: a merge that changed a person's state for a topic. */
export interface MergeChange {
  contact_id: string;
  /** The record merged into it, when the event names one. */
  other_contact_id: string | null;
  topic_id: string;
  before: string | null;
  after: string;
  at: string;
  source: string;
  event_seq: number;
}

/**
 * Reads the state changes out of a `merged` event's evidence. Two shapes
 * are understood: the operator merge's `topics: [{topic_id, before, after}]`
 * and a per-event `topic_id` with `before`/`after` (an import merging rows
 * that share a match key). Only changes are returned: the report lists
 * every merge that changed someone's state.
 */
export function changesOf(event: { seq: number; contact_id: string; topic_id: string | null; occurred_at: string; evidence: string }): MergeChange[] {
  let evidence: Record<string, unknown>;
  try {
    evidence = JSON.parse(event.evidence) as Record<string, unknown>;
  } catch {
    return [];
  }
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  const source = str(evidence.source) ?? str(evidence.method) ?? 'unknown';
  const other = str(evidence.other_contact_id) ?? str(evidence.merged_from);
  const items: unknown[] = Array.isArray(evidence.topics) ? evidence.topics : [{ topic_id: event.topic_id ?? evidence.topic_id, before: evidence.before, after: evidence.after }];
  const out: MergeChange[] = [];
  for (const item of items) {
    if (item === null || typeof item !== 'object') continue;
    const t = item as Record<string, unknown>;
    const topicId = str(t.topic_id);
    const after = str(t.after);
    const before = str(t.before);
    if (topicId === null || after === null || before === after) continue;
    out.push({ contact_id: event.contact_id, other_contact_id: other, topic_id: topicId, before, after, at: event.occurred_at, source, event_seq: Number(event.seq) });
  }
  return out;
}

/** RFC 4180 CSV, with cells that a spreadsheet would run as a formula defused (OWASP CSV injection). */
export function csvLine(cells: readonly (string | number | null)[]): string {
  return cells
    .map((cell) => {
      let s = cell === null ? '' : String(cell);
      if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
      return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
    })
    .join(',');
}
