/**
 * De-duplication, the pure part (issue 5 point 3; DESIGN.md flow 2). Two
 * records with the same match key are one person and are merged by the
 * import; provider aliases (Gmail dots, +tags, googlemail.com: the same
 * provider key, different match keys) are only *probable* duplicates
 * (ADR-07): listed for review, merged when an operator says so, by the same
 * rule — the most restrictive state wins on every topic, so no merge can
 * drop an opt-out (the ICO's Morrisons, Honda and Flybe fines); see
 * `precedence` for what "most restrictive" means between the states.
 */
import { AppError } from '../shared/errors.js';
import { topicEventTypes, type EventDraft, type TopicEventType } from '../consent/index.js';

/**
 * Which state the kept record takes when the two differ: the most
 * restrictive (DESIGN.md flow 2, issue 5 point 3), ordered by what each
 * state still lets Assent send. `withdrawn`, the person's own opt-out,
 * allows nothing and wins over everything: no merge can drop an unsubscribe
 * (GDPR Art. 7(3), 21(3)). Then `lapsed` (asked, no answer: only a new
 * sign-up brings them back), `imported` (only a re-permission request),
 * `requested` (only the confirmation mail), and last `confirmed`. So a merge
 * never raises a record's state: a confirmation the other record holds is
 * kept as that record's evidence, not carried over a weaker state. A topic
 * only the other record holds keeps that record's state: both records are
 * one mailbox (probable duplicates are provider aliases), and no record is
 * not an opt-out. Objections, bounces and complaints are suppressions, keyed
 * under every provider alias, so they already cover both records of a pair.
 * A state not listed here comes first: unknown errs towards not sending.
 */
export const precedence: readonly string[] = ['withdrawn', 'lapsed', 'imported', 'requested', 'confirmed'];

function rank(state: string): number {
  return precedence.indexOf(state);
}

/** The state that wins when two records of one person differ (the first when equal). */
export function winningState(a: string, b: string): string {
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
    const after = before === null ? theirs! : theirs === null ? before : winningState(before, theirs);
    return { topicId, before, other: theirs, after };
  });
}

/** Evidence method and report source of an operator-approved merge. */
export const OPERATOR_MERGE = 'operator_merge';

/**
 * The events of an operator merge, in order: for every topic whose winning
 * state differs from the kept contact's, an event of that state on the kept
 * contact pointing at the event it carries over; a `merged` event on the
 * kept contact naming the other and every topic's before/after (what the
 * report reads); a `merged` event on the other naming the kept one and the
 * states it gave up. Refuses a state that is not a topic event type.
 */
export function mergeEvents(input: {
  keepId: string;
  otherId: string;
  plan: TopicMerge[];
  theirs: { topicId: string; state: string; event: { id: string; hash: string } | null }[];
  now: Date;
  newId: () => string;
}): EventDraft[] {
  const draft = (contactId: string, topicId: string | null, type: EventDraft['type'], evidence: Record<string, unknown>): EventDraft => ({
    id: input.newId(),
    contactId,
    topicId,
    type,
    occurredAt: input.now,
    evidence: { method: OPERATOR_MERGE, actor: 'operator', source: OPERATOR_MERGE, ...evidence },
  });
  const carried = input.plan
    .filter((p) => p.after !== p.before)
    .map((p) => {
      if (!(topicEventTypes as readonly string[]).includes(p.after)) {
        throw new AppError('conflict', `state "${p.after}" of topic ${p.topicId} cannot be carried over`);
      }
      const source = input.theirs.find((s) => s.topicId === p.topicId)?.event ?? null;
      return draft(input.keepId, p.topicId, p.after as TopicEventType, { other_contact_id: input.otherId, source_event: source?.id ?? null, source_event_hash: source?.hash ?? null });
    });
  const topics = input.plan.map((p) => ({ topic_id: p.topicId, before: p.before, other: p.other, after: p.after }));
  return [
    ...carried,
    draft(input.keepId, null, 'merged', { other_contact_id: input.otherId, topics }),
    draft(input.otherId, null, 'merged', { merged_into: input.keepId, moved_states: input.theirs.map((s) => ({ topic_id: s.topicId, state: s.state, event: s.event?.id ?? null })) }),
  ];
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
 * Reads the state changes out of a `merged` event's evidence. Two shapes:
 * the operator merge's `topics: [{topic_id, before, after}]`, and the
 * import's `from`/`to` on an event that names the topic (rows sharing a
 * match key; `to` may be 'suppressed'). Only changes are returned: the
 * report lists every merge that changed someone's state.
 */
export function changesOf(event: { seq: number; contact_id: string; topic_id: string | null; occurred_at: string; evidence: string }): MergeChange[] {
  let evidence: Record<string, unknown>;
  try {
    evidence = JSON.parse(event.evidence) as Record<string, unknown>;
  } catch {
    return [];
  }
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  const method = str(evidence.method) ?? 'unknown';
  const file = str(evidence.source_file);
  // An import's method already names its file (`import:<file>`, EDPB-02); older evidence named it apart.
  const source = file === null || method.endsWith(`:${file}`) ? method : `${method}:${file}`;
  const other = str(evidence.other_contact_id);
  const items: unknown[] = Array.isArray(evidence.topics) ? evidence.topics : [{ topic_id: event.topic_id, before: evidence.from, after: evidence.to }];
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
