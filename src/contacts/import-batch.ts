/**
 * One import batch in ONE ledger transaction: load what is stored for the
 * batch's match keys, decide each person with the merge rule, write contacts,
 * events (one `append` for the whole batch: the chain head is taken once per
 * batch, DESIGN.md), suppressions, report rows and the progress marker. The
 * batch commits whole with its marker, or not at all, so a killed import
 * re-run from the marker neither loses nor repeats a row.
 */
import type { Transaction } from 'kysely';
import {
  ALL_SCOPE,
  insertSuppressions,
  lookupHashes,
  withLedger,
  writeHashes,
  type EventDraft,
  type LedgerWriter,
  type SuppressionKey,
} from '../consent/index.js';
import type { Clock } from '../shared/clock.js';
import { seal } from '../shared/crypto.js';
import { AppError } from '../shared/errors.js';
import type { IdGenerator } from '../shared/ids.js';
import type { Contact, Db, Tables } from '../storage/index.js';
import { createContactKey, sealPersonal, unwrapContactKey, type MasterKey, type PersonalData } from './contact-keys.js';
import { importedEvidence, mergedEvidence, suppressionEvidence, suppressionOf, type EvidenceContext } from './import-evidence.js';
import { decideMerge, type Held, type MergeDecision, type RestrictiveStatus } from './import-merge.js';
import type { ImportRow, RowNote } from './import-row.js';
import {
  findContactsByMatchKeys,
  findSuppressionHits,
  findTopicStates,
  findWrappedKeys,
  insertContactKeys,
  insertContactNames,
  insertContacts,
  insertImportRows,
  readRowsDone,
  updateImportProgress,
} from './import.repository.js';

/** Bound into the sealed names, so they cannot be passed off as evidence or the reverse. */
export const NAMES_AAD = 'contact_names';

export interface ImportCounters {
  rows: number;
  contacts_created: number;
  imported: number;
  suppressed: number;
  merged: number;
  unchanged: number;
  skipped: number;
  suppressed_skipped: number;
  errors: number;
}

export const zeroCounters = (): ImportCounters => ({
  rows: 0, contacts_created: 0, imported: 0, suppressed: 0, merged: 0, unchanged: 0, skipped: 0, suppressed_skipped: 0, errors: 0,
});

export interface BatchDeps {
  clock: Clock;
  newId: IdGenerator;
  keys: { masterKeys: MasterKey[]; suppressionKeys: SuppressionKey[] };
}

export interface RunContext {
  importId: string;
  topicId: string;
  fileName: string;
  actor: string;
  declaredBasis: string;
}

/** Rows `from`..`to` (every row, applied or not, so the marker moves over all of them). */
export interface Batch {
  from: number;
  to: number;
  rows: ImportRow[];
  notes: RowNote[];
}

interface Plan {
  matchKey: string;
  rows: ImportRow[];
  contact: Contact | undefined;
  decision: MergeDecision;
}

export async function commitBatch(db: Db, deps: BatchDeps, run: RunContext, batch: Batch, before: ImportCounters): Promise<ImportCounters> {
  return withLedger(db, async (trx, ledger) => {
    const done = await readRowsDone(trx, run.importId);
    if (done !== batch.from - 1) {
      throw new AppError('conflict', `import ${run.importId} was moved on by another process (row ${done}; this batch starts at ${batch.from})`);
    }
    const plans = await planBatch(trx, deps.keys.suppressionKeys, run.topicId, batch.rows);
    const counters = await writePlans(trx, ledger, { deps, run, plans });
    const skippedNotes = plans.flatMap((p) =>
      p.rows.filter((_, i) => p.decision.outcomes[i] === 'suppressed_skipped').map((r): RowNote => ({ row: r.row, line: r.line, reason: 'suppressed', detail: '' })),
    );
    const notes = [...batch.notes, ...skippedNotes].sort((a, b) => a.row - b.row);
    await insertImportRows(trx, notes.map((n) => ({ import_id: run.importId, row: n.row, line: n.line, reason: n.reason, detail: n.detail })));
    const after = add(before, {
      ...counters,
      rows: batch.to - batch.from + 1,
      skipped: batch.notes.filter((n) => n.reason === 'not_subscribed').length,
      errors: batch.notes.filter((n) => n.reason !== 'not_subscribed').length,
      suppressed_skipped: skippedNotes.length,
    });
    await updateImportProgress(trx, { id: run.importId, rowsDone: batch.to, summary: JSON.stringify(after) });
    return after;
  });
}

/**
 * Loads, in the batch's transaction, every contact, topic state and
 * suppression of the batch's addresses, and decides each person. A
 * subscribed-only address that shares a provider alias with one this batch
 * suppresses counts as suppressed too (ADR-07: suppression errs towards not
 * sending), as it would had the rows been in different batches.
 */
async function planBatch(trx: Transaction<Tables>, suppressionKeys: SuppressionKey[], topicId: string, rows: ImportRow[]): Promise<Plan[]> {
  const groups = new Map<string, ImportRow[]>();
  for (const row of rows) groups.set(row.matchKey, [...(groups.get(row.matchKey) ?? []), row]);
  const keys = [...groups.keys()];
  const contacts = new Map((await findContactsByMatchKeys(trx, keys)).map((c) => [c.match_key ?? '', c]));
  const hashes = new Map(keys.map((k) => [k, lookupHashes(suppressionKeys, k)]));
  const hits = new Set(
    (await findSuppressionHits(trx, { hashes: [...hashes.values()].flat(), scopes: [ALL_SCOPE, topicId] })).map((h) => `${h.key_hash}|${h.scope}`),
  );
  const contactIds = [...contacts.values()].map((c) => c.id);
  const states = new Map((await findTopicStates(trx, { contactIds, topicId })).map((s) => [s.contact_id, s.state]));
  const heldOf = (key: string): Held => {
    const contact = contacts.get(key);
    const mine = hashes.get(key) ?? [];
    const suppression = mine.some((h) => hits.has(`${h}|${ALL_SCOPE}`)) ? 'all' : mine.some((h) => hits.has(`${h}|${topicId}`)) ? 'topic' : null;
    return { contact: contact !== undefined, topicState: contact ? (states.get(contact.id) ?? null) : null, suppression };
  };
  const plans = keys.map((key): Plan => {
    const group = groups.get(key) ?? [];
    return { matchKey: key, rows: group, contact: contacts.get(key), decision: decideMerge(heldOf(key), group.map((r) => r.status)) };
  });
  const suppressedHere = new Set(plans.filter((p) => p.decision.suppressionRow !== null).flatMap((p) => writeHashes(suppressionKeys, p.matchKey).map((h) => h.key_hash)));
  return plans.map((plan) => {
    const aliasHit = plan.decision.suppressionRow === null && (hashes.get(plan.matchKey) ?? []).some((h) => suppressedHere.has(h));
    if (!aliasHit) return plan;
    const held = { ...heldOf(plan.matchKey), suppression: 'all' as const };
    return { ...plan, decision: decideMerge(held, plan.rows.map((r) => r.status)) };
  });
}

const writesEvents = (plan: Plan): boolean => plan.decision.outcomes.some((o) => o === 'imported' || o === 'suppressed');

/** Everything one batch writes, gathered before the writes so each table gets a few multi-row statements. */
interface Writes {
  created: Contact[];
  newKeys: { contact_id: string; wrapped_key: string; created_at: string }[];
  names: { contact_id: string; sealed: string; updated_at: string }[];
  drafts: EventDraft[];
  suppressions: { eventId: string; matchKey: string; status: RestrictiveStatus }[];
}

async function writePlans(
  trx: Transaction<Tables>,
  ledger: LedgerWriter,
  input: { deps: BatchDeps; run: RunContext; plans: Plan[] },
): Promise<Partial<ImportCounters>> {
  const { deps } = input;
  const now = deps.clock.now();
  const at = now.toISOString();
  const active = input.plans.filter(writesEvents);
  const keys = await existingKeys(trx, deps, active.flatMap((p) => (p.contact ? [p.contact.id] : [])));
  const writes: Writes = { created: [], newKeys: [], names: [], drafts: [], suppressions: [] };
  for (const plan of active) draftPlan(writes, { ...input, plan, key: plan.contact && keys.get(plan.contact.id), now });
  await insertContacts(trx, writes.created);
  await insertContactKeys(trx, writes.newKeys);
  await insertContactNames(trx, writes.names);
  // One append for the whole batch: the chain head is taken once (DESIGN.md, consent ledger).
  const seqOf = new Map((writes.drafts.length > 0 ? await ledger.append(writes.drafts) : []).map((r) => [r.id, Number(r.seq)]));
  const entries = writes.suppressions.flatMap((s) =>
    writeHashes(deps.keys.suppressionKeys, s.matchKey).map((h) => ({
      ...h, scope: ALL_SCOPE, reason: suppressionOf[s.status].reason, created_at: at, event_seq: seqOf.get(s.eventId) ?? null,
    })),
  );
  for (let i = 0; i < entries.length; i += 400) await insertSuppressions(trx, entries.slice(i, i + 400));
  const outcomes = input.plans.flatMap((p) => p.decision.outcomes);
  return {
    contacts_created: writes.created.length,
    imported: outcomes.filter((o) => o === 'imported').length,
    suppressed: outcomes.filter((o) => o === 'suppressed').length,
    unchanged: outcomes.filter((o) => o === 'merged' || o === 'unchanged').length,
    merged: input.plans.filter((p) => p.decision.merged !== null).length,
  };
}

/**
 * The rows of one person's plan: a contact when none exists, then one event
 * per row that records its own state, and the `merged` event. A person who
 * is suppressed by this import gets a contact too (not a bare hash entry),
 * so the ledger holds the objection, bounce or complaint with its evidence
 * (Art. 5(2), 21(3)) and the person can exercise their rights over it.
 */
function draftPlan(writes: Writes, input: { deps: BatchDeps; run: RunContext; plan: Plan; key: Buffer | undefined; now: Date }): void {
  const { deps, run, plan, now } = input;
  const at = now.toISOString();
  const contact = plan.contact ?? newContact(deps, plan, at);
  if (!plan.contact) writes.created.push(contact);
  let key = input.key;
  if (!key) {
    const fresh = createContactKey(deps.keys.masterKeys, contact.id);
    writes.newKeys.push({ contact_id: contact.id, wrapped_key: fresh.wrapped, created_at: at });
    key = fresh.key;
  }
  const contactKey = key;
  const ctx: EvidenceContext = { ...run, seal: (data: PersonalData) => sealPersonal(contactKey, data) };
  const event = (type: EventDraft['type'], topicId: string | null, evidence: EventDraft['evidence']): EventDraft => {
    const draft = { id: deps.newId(), contactId: contact.id, topicId, type, occurredAt: now, evidence };
    writes.drafts.push(draft);
    return draft;
  };
  plan.rows.forEach((row, i) => {
    const outcome = plan.decision.outcomes[i];
    if (outcome === 'imported') event('imported', run.topicId, importedEvidence(ctx, row));
    if (outcome !== 'suppressed' || row.status === 'subscribed') return;
    const draft = event(suppressionOf[row.status].event, null, suppressionEvidence(ctx, row));
    if (i === plan.decision.suppressionRow) writes.suppressions.push({ eventId: draft.id, matchKey: plan.matchKey, status: row.status });
  });
  if (plan.decision.merged) event('merged', run.topicId, mergedEvidence(ctx, { rows: plan.rows, decision: plan.decision, contactExisted: plan.contact !== undefined }));
  // Names only for new people kept for re-permission; of a person who opted out no more is stored than needed (Art. 5(1)(c)).
  const named = plan.rows.find((r) => r.firstName !== null || r.lastName !== null);
  if (!plan.contact && named && plan.decision.suppressionRow === null) {
    writes.names.push({ contact_id: contact.id, sealed: sealNames(contactKey, named), updated_at: at });
  }
}

/** Evidence keys of existing contacts, unwrapped. */
async function existingKeys(trx: Transaction<Tables>, deps: BatchDeps, contactIds: string[]): Promise<Map<string, Buffer>> {
  const rows = await findWrappedKeys(trx, contactIds);
  return new Map(rows.map((r) => [r.contact_id, unwrapContactKey(deps.keys.masterKeys, r.contact_id, r.wrapped_key)]));
}

function newContact(deps: BatchDeps, plan: Plan, at: string): Contact {
  const first = plan.rows[0]!;
  return {
    id: deps.newId(),
    address: first.address,
    match_key: plan.matchKey,
    provider_key: first.providerKey,
    locale: plan.rows.find((r) => r.locale !== null)?.locale ?? null,
    created_at: at,
    erased_at: null,
  };
}

/** Names sealed like evidence, so erasing the contact's key erases them (Art. 17). */
function sealNames(key: Buffer, row: ImportRow): string {
  return seal(key, JSON.stringify({ first_name: row.firstName, last_name: row.lastName }), NAMES_AAD);
}

function add(a: ImportCounters, b: Partial<ImportCounters>): ImportCounters {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof ImportCounters)[]) out[k] += b[k] ?? 0;
  return out;
}
