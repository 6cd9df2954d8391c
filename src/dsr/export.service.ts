/**
 * Right of access and portability (GDPR Art. 15 and 20): loads everything
 * stored about one contact in one consistent read and builds the export.
 * Every query is filtered by the contact's id (or the id of a record an
 * operator merged into it: the same person) or by hashes of those records'
 * own addresses, so nothing of anyone else can slip in.
 */
import type { Transaction } from 'kysely';
import { findContactById, findContactKey, findKeptContactById, findMergedAwayInto, readContactNames, unwrapContactKey } from '../contacts/index.js';
import { findStates, lookupHashes, readContactEvents } from '../consent/index.js';
import { findTopicsByIds } from '../topics/index.js';
import { AppError } from '../shared/errors.js';
import type { Contact, Tables } from '../storage/index.js';
import type { DsrDeps } from './deps.js';
import { findDeliveries, findMailLog, findMergeRows, findSuppressionEntries } from './dsr.repository.js';
import { buildExport, type ContactExport, type ExportRows, type MergedRecordRows } from './export.js';

/** The export of one contact; `not_found` when no such contact exists. */
export async function exportContactData(deps: DsrDeps, contactId: string): Promise<ContactExport> {
  // One snapshot: an event appended meanwhile is either wholly in or wholly out.
  const rows = await deps.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute((trx) => loadRows(deps, trx, contactId));
  deps.logger.info({ contact: contactId, events: rows.events.length }, 'data export built');
  return buildExport(rows);
}

async function loadRows(deps: DsrDeps, trx: Transaction<Tables>, contactId: string): Promise<ExportRows> {
  // Asked through a record merged into another: the person is the kept contact.
  const contact = await findKeptContactById(trx, contactId);
  if (!contact) throw new AppError('not_found', 'No such contact');
  const { key, state } = await contactKeyOf(deps, trx, contact);
  const events = await readContactEvents(trx, contact.id);
  const states = await findStates(trx, contact.id);
  const merged = await loadMergedRecords(deps, trx, contact.id);
  const mergedEvents = merged.flatMap((m) => m.events);
  // The suppressions of every address the person had here, and those their events made.
  const suppressions = await findSuppressionEntries(trx, {
    hashes: [contact, ...merged.map((m) => m.contact)].flatMap((c) => (c.match_key ? lookupHashes(deps.keys.suppressionKeys, c.match_key) : [])),
    eventSeqs: [...events, ...mergedEvents].map((e) => Number(e.seq)),
  });
  const topicIds = new Set<string>([
    ...[...events, ...mergedEvents].flatMap((e) => (e.topic_id ? [e.topic_id] : [])),
    ...states.map((s) => s.topic_id),
    ...suppressions.filter((s) => s.scope !== 'all').map((s) => s.scope),
  ]);
  return {
    now: deps.clock.now(),
    contact,
    contactKey: key,
    names: key ? ((await readContactNames(trx, deps.keys.masterKeys, [contact.id])).get(contact.id) ?? null) : null,
    keyState: state,
    events,
    states,
    topics: await findTopicsByIds(trx, [...topicIds]),
    mailLog: await findMailLog(trx, contact.id),
    deliveries: await findDeliveries(trx, contact.id),
    suppressions,
    merged,
  };
}

/** The records an operator merged into the contact, along chains, each with its own key, history and messages. */
async function loadMergedRecords(deps: DsrDeps, trx: Transaction<Tables>, contactId: string): Promise<MergedRecordRows[]> {
  const ids = await findMergedAwayInto(trx, contactId);
  if (ids.length === 0) return [];
  const merges = new Map((await findMergeRows(trx, ids)).map((m) => [m.contact_id, m]));
  const names = await readContactNames(trx, deps.keys.masterKeys, ids);
  const out: MergedRecordRows[] = [];
  for (const id of ids) {
    const record = await findContactById(trx, id);
    const merge = merges.get(id);
    if (!record || !merge) continue;
    const { key, state } = await contactKeyOf(deps, trx, record);
    out.push({
      contact: record,
      contactKey: key,
      names: key ? (names.get(id) ?? null) : null,
      keyState: state,
      mergedInto: merge.merged_into,
      mergedAt: merge.merged_at,
      events: await readContactEvents(trx, id),
      mailLog: await findMailLog(trx, id),
      deliveries: await findDeliveries(trx, id),
    });
  }
  return out;
}

/**
 * The contact's evidence key. Gone after erasure (crypto-shredded, Art. 17);
 * a key that will not unwrap (master key missing from configuration) leaves
 * the export complete but with sealed fields unread, rather than failing it.
 */
async function contactKeyOf(
  deps: DsrDeps,
  trx: Transaction<Tables>,
  contact: Contact,
): Promise<{ key: Buffer | null; state: ExportRows['keyState'] }> {
  const wrapped = await findContactKey(trx, contact.id);
  if (!wrapped) return { key: null, state: contact.erased_at ? 'erased' : 'unreadable' };
  try {
    return { key: unwrapContactKey(deps.keys.masterKeys, contact.id, wrapped), state: 'opened' };
  } catch (error) {
    deps.logger.warn({ contact: contact.id, err: (error as Error).message }, 'contact key does not unwrap; export without personal evidence');
    return { key: null, state: 'unreadable' };
  }
}
