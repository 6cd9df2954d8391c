/**
 * One import batch in ONE ledger transaction: load what is stored for the
 * batch's match keys, decide each person with the merge rule, write contacts,
 * events (the chain head is taken once per batch, DESIGN.md), suppressions,
 * report rows and the progress marker. The
 * batch commits whole with its marker, or not at all, so a killed import
 * re-run from the marker neither loses nor repeats a row.
 *
 * Most rows of a large file each create a contact, a key, sealed names and an
 * event, so the per-row work is kept to the sealing and one flat array push
 * per table; each table then gets a few multi-row statements.
 */
import type { Transaction } from 'kysely';
import { ALL_SCOPE, insertSuppressions, writeHashes, type EncodedEventDraft, type LedgerWriter, type SuppressionKey, withLedger } from '../consent/index.js';
import type { Clock } from '../shared/clock.js';
import { canonicalJson } from '../shared/crypto.js';
import { AppError } from '../shared/errors.js';
import type { IdGenerator } from '../shared/ids.js';
import type { Db, Tables } from '../storage/index.js';
import { createContactKey, sealPersonal, unwrapContactKey, type MasterKey, type PersonalData } from './contact-keys.js';
import {
  encodeContext,
  importedEvidenceJson,
  mergedEvidence,
  suppressionEvidenceJson,
  suppressionOf,
  type EncodedContext,
  type EvidenceContext,
} from './import-evidence.js';
import type { RestrictiveStatus } from './import-merge.js';
import { sealContactNames } from './contact-names.js';
import { addressesOf, planBatch, type Plan } from './import-plan.js';
import type { ImportRow, RowNote } from './import-row.js';
import { contactColumns, findWrappedKeys, insertContactKeyValues, insertContactNameValues, insertContactValues, insertImportRows, readRowsDone, updateImportProgress } from './import.repository.js';


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
  /** Rows imported whose declared opt-in times or IPs cannot be read (kept as written; listed in the report). */
  warnings: number;
}

export const zeroCounters = (): ImportCounters => ({
  rows: 0, contacts_created: 0, imported: 0, suppressed: 0, merged: 0, unchanged: 0, skipped: 0, suppressed_skipped: 0, errors: 0, warnings: 0,
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
  /** Warnings about rows in `rows` (declaredEvidenceNote), at most one per row. */
  warnings: RowNote[];
}

export async function commitBatch(db: Db, deps: BatchDeps, run: RunContext, batch: Batch, before: ImportCounters): Promise<ImportCounters> {
  return withLedger(db, async (trx, ledger) => {
    const done = await readRowsDone(trx, run.importId);
    if (done !== batch.from - 1) {
      throw new AppError('conflict', `import ${run.importId} was moved on by another process (row ${done}; this batch starts at ${batch.from})`);
    }
    const plans = await planBatch(trx, deps.keys.suppressionKeys, run.topicId, batch.rows);
    const { counters, skipped } = await writePlans(trx, ledger, { deps, run, plans });
    // A skipped row's warning goes with it: nothing of that row was stored.
    const skippedRows = new Set(skipped.map((n) => n.row));
    const warnings = batch.warnings.filter((w) => !skippedRows.has(w.row));
    const extra = [...skipped, ...warnings];
    const notes = extra.length === 0 ? batch.notes : [...batch.notes, ...extra].sort((a, b) => a.row - b.row);
    await insertImportRows(trx, notes.map((n) => ({ import_id: run.importId, row: n.row, line: n.line, reason: n.reason, detail: n.detail })));
    let notSubscribed = 0;
    for (const note of batch.notes) if (note.reason === 'not_subscribed') notSubscribed += 1;
    const after = add(before, {
      ...counters,
      rows: batch.to - batch.from + 1,
      skipped: notSubscribed,
      errors: batch.notes.length - notSubscribed,
      warnings: warnings.length,
      suppressed_skipped: skipped.length,
    });
    await updateImportProgress(trx, { id: run.importId, rowsDone: batch.to, summary: JSON.stringify(after) });
    return after;
  });
}

/** Plans drafted and written together: each table gets one multi-row statement per slice. */
const WRITE_SLICE = 250;

/** Everything one slice of a batch writes, gathered before the writes so each table gets a few multi-row statements. */
interface Writes {
  /** Flat values in the repository's column orders. */
  contacts: unknown[];
  keys: unknown[];
  names: unknown[];
  drafts: EncodedEventDraft[];
  suppressions: { draft: number; addresses: string[]; status: RestrictiveStatus }[];
}

interface WriteContext {
  deps: BatchDeps;
  run: RunContext;
  encoded: EncodedContext;
  at: string;
  newId: IdGenerator;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Ids for what one batch creates: each a fresh id whose first 48 bits are
 * those of one fresh id per batch. The rest (74 random bits, with the UUID's
 * version and variant) keeps every id unique and unguessable and reveals no
 * order or count within the batch; the shared part only groups ids that the
 * batch's single created_at already groups. It makes a batch's rows
 * neighbours in every index keyed by contact or event id, so a batch writes
 * a few index pages instead of one per row per index (on SQLite, the pages
 * each commit copies to the WAL). Ids that are not UUIDs are used as they are.
 */
function clusteredIds(newId: IdGenerator): IdGenerator {
  const first = newId();
  if (!UUID.test(first)) return newId;
  const prefix = first.slice(0, 14);
  return () => {
    const id = newId();
    return UUID.test(id) ? prefix + id.slice(14) : id;
  };
}

async function writePlans(
  trx: Transaction<Tables>,
  ledger: LedgerWriter,
  input: { deps: BatchDeps; run: RunContext; plans: Plan[] },
): Promise<{ counters: Partial<ImportCounters>; skipped: RowNote[] }> {
  const { deps, run } = input;
  const { counters, skipped, active } = tally(input.plans);
  const keys = await existingKeys(trx, deps, active.flatMap((p) => (p.contact ? [p.contact.id] : [])));
  const ctx: WriteContext = { deps, run, encoded: encodeContext(run), at: deps.clock.now().toISOString(), newId: clusteredIds(deps.newId) };
  // Drafted and written a slice at a time, so a batch's sealed values and
  // events do not all stay in memory until its end (the transaction is still
  // the whole batch, and the chain head is still taken once, by withLedger).
  let created = 0;
  for (let first = 0; first < active.length; first += WRITE_SLICE) {
    created += await writeSlice(trx, ledger, { ctx, plans: active.slice(first, first + WRITE_SLICE), keys });
  }
  return { counters: { ...counters, contacts_created: created }, skipped };
}

/** Counts the outcomes, lists the rows skipped as suppressed, and keeps the plans that record events. */
function tally(plans: readonly Plan[]) {
  const counters = { imported: 0, suppressed: 0, unchanged: 0, merged: 0 };
  const skipped: RowNote[] = [];
  const active: Plan[] = [];
  for (const plan of plans) {
    let events = false;
    plan.decision.outcomes.forEach((outcome, i) => {
      if (outcome === 'imported' || outcome === 'suppressed') {
        counters[outcome] += 1;
        events = true;
      } else if (outcome === 'suppressed_skipped') {
        const row = plan.rows[i]!;
        skipped.push({ row: row.row, line: row.line, reason: 'suppressed', detail: '' });
      } else counters.unchanged += 1;
    });
    if (plan.decision.merged !== null) counters.merged += 1;
    if (events) active.push(plan);
  }
  return { counters, skipped, active };
}

/** Drafts and writes some plans: contacts, keys and names, then their events, then the suppressions keyed by those events. Returns the contacts created. */
async function writeSlice(
  trx: Transaction<Tables>,
  ledger: LedgerWriter,
  input: { ctx: WriteContext; plans: readonly Plan[]; keys: Map<string, Buffer> },
): Promise<number> {
  const { ctx } = input;
  const writes: Writes = { contacts: [], keys: [], names: [], drafts: [], suppressions: [] };
  for (const plan of input.plans) draftPlan(writes, ctx, plan, plan.contact && input.keys.get(plan.contact.id));
  await insertContactValues(trx, writes.contacts);
  await insertContactKeyValues(trx, writes.keys);
  await insertContactNameValues(trx, writes.names);
  const rows = writes.drafts.length > 0 ? await ledger.appendEncoded(writes.drafts) : [];
  const entries = writes.suppressions.flatMap((s) =>
    s.addresses.flatMap((address) =>
      writeHashes(ctx.deps.keys.suppressionKeys, address).map((h) => ({
        ...h, scope: ALL_SCOPE, reason: suppressionOf[s.status].reason, created_at: ctx.at, event_seq: rows[s.draft]?.seq ?? null,
      })),
    ),
  );
  for (let i = 0; i < entries.length; i += 400) await insertSuppressions(trx, entries.slice(i, i + 400));
  return writes.contacts.length / contactColumns.length;
}

/**
 * The rows of one person's plan: a contact when none exists, then one event
 * per row that records its own state, and the `merged` event. A person who
 * is suppressed by this import gets a contact too (not a bare hash entry),
 * so the ledger holds the objection, bounce or complaint with its evidence
 * (Art. 5(2), 21(3)) and the person can exercise their rights over it.
 */
function draftPlan(writes: Writes, ctx: WriteContext, plan: Plan, storedKey: Buffer | undefined): void {
  const { deps, run, at, newId } = ctx;
  const first = plan.rows[0]!;
  let contactId: string;
  if (plan.contact) contactId = plan.contact.id;
  else {
    contactId = newId();
    const locale = plan.rows.find((r) => r.locale !== null)?.locale ?? null;
    writes.contacts.push(contactId, first.address, plan.matchKeys[0], first.providerKey, locale, at, null);
  }
  let key = storedKey;
  if (!key) {
    const fresh = createContactKey(deps.keys.masterKeys, contactId);
    writes.keys.push(contactId, fresh.wrapped, at);
    key = fresh.key;
  }
  const event = (type: EncodedEventDraft['type'], topicId: string | null, evidence: string): number =>
    writes.drafts.push({ id: newId(), contactId, topicId, type, occurredAt: at, evidence }) - 1;
  const { decision } = plan;
  for (let i = 0; i < plan.rows.length; i++) {
    const row = plan.rows[i]!;
    const outcome = decision.outcomes[i];
    if (outcome === 'imported') {
      const personal = sealPersonal(key, row.optinIp === null ? { address: row.address } : { address: row.address, ip: row.optinIp });
      const confirmPersonal = row.confirmIp === null ? null : sealPersonal(key, { ip: row.confirmIp });
      event('imported', run.topicId, importedEvidenceJson(ctx.encoded, row, { personal, confirmPersonal }));
    } else if (outcome === 'suppressed' && row.status !== 'subscribed') {
      const draft = event(suppressionOf[row.status].event, null, suppressionEvidenceJson(ctx.encoded, row, sealPersonal(key, { address: row.address })));
      if (i === decision.suppressionRow) writes.suppressions.push({ draft, addresses: addressesOf(plan), status: row.status });
    }
  }
  if (decision.merged) {
    const contactKey = key;
    const evidence: EvidenceContext = { ...run, seal: (data: PersonalData) => sealPersonal(contactKey, data) };
    event('merged', run.topicId, canonicalJson(mergedEvidence(evidence, { rows: plan.rows, decision, contactExisted: plan.contact !== undefined })));
  }
  // Names only for new people kept for re-permission; of a person who opted out no more is stored than needed (Art. 5(1)(c)).
  if (plan.contact || decision.suppressionRow !== null) return;
  const named = first.firstName !== null || first.lastName !== null ? first : plan.rows.find((r) => r.firstName !== null || r.lastName !== null);
  if (named) writes.names.push(contactId, sealContactNames(key, { first_name: named.firstName, last_name: named.lastName }), at);
}

/** Evidence keys of existing contacts, unwrapped. */
async function existingKeys(trx: Transaction<Tables>, deps: BatchDeps, contactIds: string[]): Promise<Map<string, Buffer>> {
  if (contactIds.length === 0) return new Map();
  const rows = await findWrappedKeys(trx, contactIds);
  return new Map(rows.map((r) => [r.contact_id, unwrapContactKey(deps.keys.masterKeys, r.contact_id, r.wrapped_key)]));
}

function add(a: ImportCounters, b: Partial<ImportCounters>): ImportCounters {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof ImportCounters)[]) out[k] += b[k] ?? 0;
  return out;
}
