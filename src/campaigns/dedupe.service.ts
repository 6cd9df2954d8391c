/**
 * `assent dedupe`: the report of merges that changed someone's state and of
 * probable duplicates, and the merge an operator approves (issue 5 point 3).
 * Reports stream in pages, so their memory does not grow with the ledger.
 */
import type { Clock } from '../shared/clock.js';
import type { IdGenerator } from '../shared/ids.js';
import { AppError } from '../shared/errors.js';
import type { Db } from '../storage/index.js';
import { findContactById } from '../contacts/index.js';
import { withLedger } from '../consent/index.js';
import { changesOf, mergeEvents, mergeRefusal, mergeTopicStates, type TopicMerge } from './dedupe.js';
import {
  deleteStatesOf,
  findDuplicateProviderKeys,
  findEventRefs,
  findLiveContactsByProviderKeys,
  findMergeOf,
  findStatesOf,
  findTopicSlugs,
  insertMerge,
  readMergedEventsAfter,
} from './dedupe.repository.js';

export interface DedupeDeps {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
}

const PAGE = 1000;

export interface MergeReportRow {
  contact_id: string;
  other_contact_id: string | null;
  topic: string;
  before: string | null;
  after: string;
  at: string;
  source: string;
  event_seq: number;
}

/** Every merge in the ledger that changed a person's state for a topic, oldest first. */
export async function* stateChangingMerges(deps: Pick<DedupeDeps, 'db'>): AsyncGenerator<MergeReportRow> {
  const slugs = await findTopicSlugs(deps.db);
  for (let after = 0; ; ) {
    const page = await readMergedEventsAfter(deps.db, { afterSeq: after, limit: PAGE });
    for (const event of page) {
      for (const change of changesOf(event)) {
        const { topic_id, ...rest } = change;
        yield { ...rest, topic: slugs.get(topic_id) ?? topic_id };
      }
      after = Number(event.seq);
    }
    if (page.length < PAGE) return;
  }
}

export interface ProbableDuplicate {
  provider_key: string;
  contacts: { id: string; address: string; match_key: string; created_at: string; states: Record<string, string> }[];
}

/** Live contacts sharing a provider key under different match keys (ADR-07), for an operator to review. */
export async function* probableDuplicates(deps: Pick<DedupeDeps, 'db'>): AsyncGenerator<ProbableDuplicate> {
  const slugs = await findTopicSlugs(deps.db);
  for (let afterKey = ''; ; ) {
    const keys = await findDuplicateProviderKeys(deps.db, { afterKey, limit: PAGE });
    const contacts = await findLiveContactsByProviderKeys(deps.db, keys);
    const states = await findStatesOf(deps.db, contacts.map((c) => c.id));
    for (const key of keys) {
      const group = contacts.filter((c) => c.provider_key === key);
      yield {
        provider_key: key,
        contacts: group.map((c) => ({
          id: c.id,
          address: c.address!,
          match_key: c.match_key!,
          created_at: c.created_at,
          states: Object.fromEntries(states.filter((s) => s.contact_id === c.id).map((s) => [slugs.get(s.topic_id) ?? s.topic_id, s.state])),
        })),
      };
    }
    if (keys.length < PAGE) return;
    afterKey = keys[keys.length - 1]!;
  }
}

export interface MergeOutcome {
  kept: string;
  merged: string;
  topics: (Omit<TopicMerge, 'topicId'> & { topic: string })[];
  /** Topics whose state on the kept contact changed. */
  changed: number;
  event_seq: number;
}

/**
 * Merges a probable duplicate into the contact to keep, as an operator
 * decided. One ledger transaction: for every topic whose most restrictive
 * state differs from the kept contact's, an event of that state on the kept
 * contact (pointing at the event it carries over); a `merged` event on the
 * kept contact naming the other and every topic's before/after; a `merged`
 * event on the other naming the kept one and the states it gave up. The
 * other's events all stay (evidence is never deleted); its projected states
 * are closed, without any withdrawal it did not make, so no audience or
 * claim reaches it; its row and address stay for the record.
 */
export async function mergeProbableDuplicates(deps: DedupeDeps, input: { keepId: string; otherId: string }): Promise<MergeOutcome> {
  const now = deps.clock.now();
  const slugs = await findTopicSlugs(deps.db);
  return withLedger(deps.db, async (trx, ledger) => {
    const [keep, other] = await Promise.all([findContactById(trx, input.keepId), findContactById(trx, input.otherId)]);
    const [keepMerge, otherMerge] = await Promise.all([findMergeOf(trx, input.keepId), findMergeOf(trx, input.otherId)]);
    const refusal = mergeRefusal(keep && { ...keep, merged: keepMerge !== undefined }, other && { ...other, merged: otherMerge !== undefined });
    if (refusal) throw new AppError(keep && other ? 'conflict' : 'not_found', `cannot merge ${input.otherId} into ${input.keepId}: ${refusal}`);
    const states = await findStatesOf(trx, [keep!.id, other!.id]);
    const mine = states.filter((s) => s.contact_id === keep!.id);
    const theirs = states.filter((s) => s.contact_id === other!.id);
    const plan = mergeTopicStates(new Map(mine.map((s) => [s.topic_id, s.state])), new Map(theirs.map((s) => [s.topic_id, s.state])));
    const refs = await findEventRefs(trx, theirs.map((s) => Number(s.event_seq)));
    const drafts = mergeEvents({
      keepId: keep!.id,
      otherId: other!.id,
      plan,
      theirs: theirs.map((s) => ({ topicId: s.topic_id, state: s.state, event: refs.get(Number(s.event_seq)) ?? null })),
      now,
      newId: deps.newId,
    });
    const rows = await ledger.append(drafts);
    const keptEvent = rows[rows.length - 2]!;
    await deleteStatesOf(trx, other!.id);
    await insertMerge(trx, { contact_id: other!.id, merged_into: keep!.id, merged_at: now.toISOString(), event_seq: Number(keptEvent.seq) });
    return {
      kept: keep!.id,
      merged: other!.id,
      topics: plan.map(({ topicId, ...rest }) => ({ topic: slugs.get(topicId) ?? topicId, ...rest })).sort((a, b) => a.topic.localeCompare(b.topic)),
      changed: drafts.length - 2,
      event_seq: Number(keptEvent.seq),
    };
  });
}
