/**
 * What one import batch will do to each person, decided from what is stored:
 * one read per table for the whole batch (contacts by match key, operator
 * merges, suppressions, topic states), then the merge rule per person.
 */
import type { Transaction } from 'kysely';
import { ALL_SCOPE, lookupHashes, selfLiftableReasons, writeHashes, type SuppressionKey } from '../consent/index.js';
import type { Contact, Tables } from '../storage/index.js';
import { decideMerge, type Held, type MergeDecision } from './import-merge.js';
import type { ImportRow } from './import-row.js';
import { brokenMergeChain, finalMergeTargets } from './contact-merge.repository.js';
import { findContactsByIds, findContactsByMatchKeys, findSuppressionHits, findTopicStates } from './import.repository.js';

export interface Plan {
  /** The rows' match keys, the first row's first. */
  matchKeys: string[];
  /** In file order. */
  rows: ImportRow[];
  /** The contact the rows act on: the stored one, or the one an operator merged it into. */
  contact: Contact | undefined;
  decision: MergeDecision;
}

/**
 * Loads, in the batch's transaction, every contact, topic state and
 * suppression of the batch's addresses, and decides each person. An address
 * whose contact an operator merged into another acts on the kept contact
 * (contact_merges.merged_into): its rows join that person's rows, and every
 * address of the person is checked for suppressions. A subscribed-only
 * address that shares a provider alias with one this batch suppresses counts
 * as suppressed too (ADR-07: suppression errs towards not sending), as it
 * would had the rows been in different batches.
 */
export async function planBatch(trx: Transaction<Tables>, suppressionKeys: SuppressionKey[], topicId: string, rows: readonly ImportRow[]): Promise<Plan[]> {
  const people = await gatherPeople(trx, rows);
  const stored = await loadStored(trx, { suppressionKeys, topicId, people });
  const plans = people.map((person): Plan => ({ ...person, decision: decideMerge(stored.heldOf(person), statusesOf(person)) }));
  const suppressedHere = new Set<string>();
  for (const plan of plans) {
    if (plan.decision.suppressionRow === null) continue;
    for (const key of addressesOf(plan)) for (const h of writeHashes(suppressionKeys, key)) suppressedHere.add(h.key_hash);
  }
  if (suppressedHere.size === 0) return plans;
  return plans.map((plan) => {
    const aliasHit = plan.decision.suppressionRow === null && stored.hashesOf(plan).some((h) => suppressedHere.has(h));
    if (!aliasHit) return plan;
    return { ...plan, decision: decideMerge({ ...stored.heldOf(plan), suppression: 'all' }, statusesOf(plan)) };
  });
}

type Person = Omit<Plan, 'decision'>;

const statusesOf = (person: Person) => person.rows.map((r) => r.status);

/** The batch's rows grouped by person: by match key, and the addresses of contacts merged into one kept contact together. */
async function gatherPeople(trx: Transaction<Tables>, rows: readonly ImportRow[]): Promise<Person[]> {
  const groups = new Map<string, ImportRow[]>();
  for (const row of rows) {
    const group = groups.get(row.matchKey);
    if (group) group.push(row);
    else groups.set(row.matchKey, [row]);
  }
  const keys = [...groups.keys()];
  const stored = await findContactsByMatchKeys(trx, keys);
  const byKey = new Map(stored.map((c) => [c.match_key ?? '', c]));
  const keptOf = await resolveMerges(trx, stored);
  const people = new Map<string, Person>();
  for (const key of keys) {
    const found = byKey.get(key);
    const contact = found && (keptOf.get(found.id) ?? found);
    const id = contact ? `c:${contact.id}` : `k:${key}`;
    const person = people.get(id);
    if (!person) people.set(id, { matchKeys: [key], rows: groups.get(key)!, contact });
    else {
      person.matchKeys.push(key);
      person.rows = [...person.rows, ...groups.get(key)!].sort((a, b) => a.row - b.row);
    }
  }
  return [...people.values()];
}

/** What is stored about the people: their suppression hashes and hits, and their contacts' states for the topic. */
async function loadStored(trx: Transaction<Tables>, input: { suppressionKeys: SuppressionKey[]; topicId: string; people: readonly Person[] }) {
  const { topicId, people } = input;
  const hashes = new Map<string, string[]>();
  for (const person of people) for (const key of addressesOf(person)) if (!hashes.has(key)) hashes.set(key, lookupHashes(input.suppressionKeys, key));
  const allHashes: string[] = [];
  for (const list of hashes.values()) for (const h of list) allHashes.push(h);
  const hitsAll = new Map<string, string>();
  const hitsTopic = new Set<string>();
  for (const hit of await findSuppressionHits(trx, { hashes: allHashes, scopes: [ALL_SCOPE, topicId] })) {
    if (hit.scope === ALL_SCOPE) hitsAll.set(hit.key_hash, hit.reason);
    else hitsTopic.add(hit.key_hash);
  }
  const contactIds = people.flatMap((p) => (p.contact ? [p.contact.id] : []));
  const states = new Map((await findTopicStates(trx, { contactIds, topicId })).map((s) => [s.contact_id, s.state]));
  const hashesOf = (person: Person): string[] => {
    const addresses = addressesOf(person);
    return addresses.length === 1 ? (hashes.get(addresses[0]!) ?? []) : addresses.flatMap((k) => hashes.get(k) ?? []);
  };
  const heldOf = (person: Person): Held => {
    const mine = hashesOf(person);
    const erased = person.contact !== undefined && person.contact.erased_at !== null;
    const allReasons = mine.flatMap((h) => (hitsAll.has(h) ? [hitsAll.get(h)!] : []));
    const suppression = erased || allReasons.length > 0 ? 'all' : mine.some((h) => hitsTopic.has(h)) ? 'topic' : null;
    return {
      contact: person.contact !== undefined,
      topicState: person.contact ? (states.get(person.contact.id) ?? null) : null,
      suppression,
      selfLiftable: !erased && allReasons.length > 0 && allReasons.every((r) => selfLiftableReasons.includes(r)),
    };
  };
  return { hashesOf, heldOf };
}

/** Every address of a person in this batch: the rows' match keys and, when merged into another, the kept contact's. */
export function addressesOf(unit: Pick<Plan, 'matchKeys' | 'contact'>): string[] {
  const kept = unit.contact?.match_key;
  return kept && !unit.matchKeys.includes(kept) ? [...unit.matchKeys, kept] : unit.matchKeys;
}

/** For each contact an operator merged away, the contact it ended in (merges of merges followed). */
async function resolveMerges(trx: Transaction<Tables>, contacts: readonly Contact[]): Promise<Map<string, Contact>> {
  const targets = await finalMergeTargets(trx, contacts.map((c) => c.id));
  if (targets.size === 0) return new Map();
  const kept = new Map((await findContactsByIds(trx, [...new Set(targets.values())])).map((c) => [c.id, c]));
  const out = new Map<string, Contact>();
  for (const [id, target] of targets) {
    const contact = kept.get(target);
    // Acting on the merged-away record would bring it back beside the kept one.
    if (!contact) throw brokenMergeChain(id, `merged into ${target}, which is not stored`);
    out.set(id, contact);
  }
  return out;
}
