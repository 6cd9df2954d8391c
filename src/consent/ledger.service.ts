import type { Transaction } from 'kysely';
import type { ConsentEventRow, Db, Tables } from '../storage/index.js';
import { chainEncoded, chainEvent, checkHead, checkLink, topicEventTypes, type ChainFault, type EncodedEventDraft, type EventDraft } from './ledger.js';
import { insertEventRows, lockHead, readEventsAfter, readFirstEvents, readHead, upsertStates, writeHead } from './ledger.repository.js';

export interface LedgerWriter {
  /** Chains and stores events, updating the projection; returns the stored rows. */
  append(drafts: EventDraft[]): Promise<ConsentEventRow[]>;
  /**
   * The same for batch writers (imports): drafts whose evidence is already
   * encoded. Same chain, same hashes, same storage. Both store rows in
   * multi-row statements and write the projection once per (contact, topic)
   * with the last event.
   */
  appendEncoded(drafts: readonly EncodedEventDraft[]): Promise<ConsentEventRow[]>;
}

/**
 * Runs `work` in one transaction that holds the chain head: events it
 * appends, the projection and whatever else it writes commit together or
 * not at all. Batch writers (imports) call `append` once per batch.
 */
export async function withLedger<T>(db: Db, work: (trx: Transaction<Tables>, ledger: LedgerWriter) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await lockHead(trx);
    let head = await readHead(trx);
    // Both kinds of draft are chained in order from the head, then stored and projected the same way.
    const store = async <D>(drafts: readonly D[], link: (draft: D, prev: { seq: number; hash: string }) => ConsentEventRow) => {
      const rows: ConsentEventRow[] = [];
      for (const draft of drafts) {
        const row = link(draft, head);
        rows.push(row);
        head = { seq: row.seq, hash: row.hash };
      }
      await insertEventRows(trx, rows);
      await upsertStates(trx, latestStates(rows));
      return rows;
    };
    const ledger: LedgerWriter = {
      append: (drafts) => store(drafts, chainEvent),
      appendEncoded: (drafts) => store(drafts, chainEncoded),
    };
    const result = await work(trx, ledger);
    await writeHead(trx, head);
    return result;
  });
}

const topicTypes: readonly string[] = topicEventTypes;

/** The projection after the rows in order: the last topic event of each (contact, topic). */
function latestStates(rows: readonly ConsentEventRow[]) {
  const latest = new Map<string, { contact_id: string; topic_id: string; state: string; since: string; event_seq: number }>();
  for (const row of rows) {
    if (row.topic_id === null || !topicTypes.includes(row.type)) continue;
    latest.set(`${row.contact_id}\u0000${row.topic_id}`, { contact_id: row.contact_id, topic_id: row.topic_id, state: row.type, since: row.occurred_at, event_seq: row.seq });
  }
  return [...latest.values()];
}

export interface VerifyReport {
  ok: boolean;
  events: number;
  head: { seq: number; hash: string };
  fault?: ChainFault;
}

/**
 * Walks the whole chain in pages (constant memory) and stops at the first
 * fault. One read-only snapshot holds the head and every page, so an append
 * committing meanwhile is neither a row "added outside the ledger" nor a
 * "missing" one.
 */
export async function verifyLedger(db: Db, options: { pageSize?: number } = {}): Promise<VerifyReport> {
  const pageSize = options.pageSize ?? 2000;
  return db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
    const head = await readHead(trx);
    let prev = { seq: 0, hash: '0'.repeat(64) };
    let count = 0;
    for (let page = await readFirstEvents(trx, pageSize); ; page = await readEventsAfter(trx, prev.seq, pageSize)) {
      for (const row of page) {
        const fault = checkLink(row, prev);
        if (fault) return { ok: false, events: count, head, fault };
        prev = { seq: Number(row.seq), hash: row.hash };
        count += 1;
      }
      if (page.length < pageSize) break;
    }
    const fault = checkHead(prev, head);
    return fault ? { ok: false, events: count, head, fault } : { ok: true, events: count, head };
  });
}
