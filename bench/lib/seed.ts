/**
 * Seeds N contacts with confirmed consent for one topic, fast and correct:
 * per contact a contacts row (address parsed as sign-up does), its wrapped
 * evidence key, a `requested` and a `confirmed` event chained into the ledger
 * with the ledger's own chainEvent (so `verifyLedger` still holds), the
 * consent_states projection row, and the ledger head moved at the end of
 * each batch. Parsing, ids and key wrapping run on worker threads
 * (seed-worker.ts); the chain, which is sequential, and the writes run here. The rows are typed against the schema (tsc catches drift); the
 * SQL is generated from their keys: prepared single-row inserts in one
 * transaction per 50,000 contacts on SQLite, `INSERT … SELECT FROM unnest()`
 * in chunks on PostgreSQL.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Insertable } from 'kysely';
import { chainEvent, type EventDraft } from '../../src/consent/index.js';
import type { MasterKey } from '../../src/contacts/index.js';
import type { SeedChunk } from './seed-worker.js';
export { benchAddress } from './addresses.js';
import { isPostgresUrl, sqlitePath, type ConsentEventsTable, type ConsentStatesTable, type ContactKeysTable, type ContactsTable } from '../../src/storage/index.js';

export interface SeedInput {
  databaseUrl: string;
  topicId: string;
  count: number;
  masterKeys: MasterKey[];
  /** Contacts per transaction. */
  batch?: number;
  /** First address index (to add more contacts to an already seeded database). */
  offset?: number;
  onProgress?: (done: number) => void;
}

interface Batch {
  contacts: Insertable<ContactsTable>[];
  contact_keys: Insertable<ContactKeysTable>[];
  consent_events: Insertable<ConsentEventsTable>[];
  consent_states: Insertable<ConsentStatesTable>[];
}

type Head = { seq: number; hash: string };

interface Writer {
  readHead(): Promise<Head>;
  begin(): Promise<void>;
  /** Rows of part of a transaction. */
  write(batch: Batch): Promise<void>;
  /** Moves the ledger head and commits. */
  commit(head: Head): Promise<void>;
  close(): Promise<void>;
}

/** Rows are built and written this many contacts at a time inside a transaction (bounded garbage). */
const CHUNK = 5_000;

export async function seedConfirmedContacts(input: SeedInput): Promise<{ ms: number; events: number }> {
  const started = performance.now();
  const writer = isPostgresUrl(input.databaseUrl) ? await postgresWriter(input.databaseUrl) : sqliteWriter(sqlitePath(input.databaseUrl));
  const producer = new Producer(input.masterKeys, Math.max(1, Math.min(3, availableParallelism() - 1)));
  const size = input.batch ?? 50_000;
  const offset = input.offset ?? 0;
  let events = 0;
  try {
    // Chunks in order: [start, count], transactions of `size` contacts cut into CHUNK pieces.
    const chunks: { start: number; count: number; last: boolean }[] = [];
    for (let from = 0; from < input.count; from += size) {
      const n = Math.min(size, input.count - from);
      for (let c = 0; c < n; c += CHUNK) chunks.push({ start: offset + from + c, count: Math.min(CHUNK, n - c), last: c + CHUNK >= n });
    }
    const ahead = producer.size * 2;
    const requested: Promise<SeedChunk>[] = [];
    for (let i = 0; i < Math.min(ahead, chunks.length); i++) requested.push(producer.request(chunks[i]!.start, chunks[i]!.count));
    let head = await writer.readHead();
    let inTransaction = false;
    let done = 0;
    for (let i = 0; i < chunks.length; i++) {
      const part = await requested[i]!;
      if (i + ahead < chunks.length) requested.push(producer.request(chunks[i + ahead]!.start, chunks[i + ahead]!.count));
      if (!inTransaction) {
        await writer.begin();
        inTransaction = true;
      }
      const now = new Date();
      const createdAt = now.toISOString();
      const batch: Batch = { contacts: [], contact_keys: [], consent_events: [], consent_states: [] };
      for (let k = 0; k < part.ids.length; k++) {
        const id = part.ids[k]!;
        batch.contacts.push({
          id,
          address: part.addresses[k]!,
          match_key: part.matchKeys[k]!,
          provider_key: part.providerKeys[k]!,
          locale: 'en',
          created_at: createdAt,
          erased_at: null,
        });
        batch.contact_keys.push({ contact_id: id, wrapped_key: part.wrappedKeys[k]!, created_at: createdAt });
        const drafts: EventDraft[] = [
          { id: part.eventIds[2 * k]!, contactId: id, topicId: input.topicId, type: 'requested', occurredAt: now, evidence: { method: 'bench_seed', actor: 'subject' } },
          { id: part.eventIds[2 * k + 1]!, contactId: id, topicId: input.topicId, type: 'confirmed', occurredAt: now, evidence: { method: 'bench_seed', actor: 'subject' } },
        ];
        for (const draft of drafts) {
          const row = chainEvent(draft, head);
          batch.consent_events.push(row);
          head = { seq: row.seq, hash: row.hash };
        }
        batch.consent_states.push({ contact_id: id, topic_id: input.topicId, state: 'confirmed', since: createdAt, event_seq: head.seq });
      }
      await writer.write(batch);
      events += batch.consent_events.length;
      done += part.ids.length;
      requested[i] = undefined as unknown as Promise<SeedChunk>;
      if (chunks[i]!.last) {
        await writer.commit(head);
        inTransaction = false;
        input.onProgress?.(done);
      }
    }
  } finally {
    await producer.close();
    await writer.close();
  }
  return { ms: performance.now() - started, events };
}

/** Worker threads answering chunk requests in order (each worker is FIFO; chunks go round-robin). */
class Producer {
  readonly size: number;
  readonly #workers: { worker: Worker; waiting: { resolve(c: SeedChunk): void; reject(e: unknown): void }[] }[];
  #next = 0;

  constructor(masterKeys: MasterKey[], size: number) {
    this.size = size;
    const data = { masterKeys: masterKeys.map((k) => ({ version: k.version, key: k.key.toString('base64') })) };
    this.#workers = Array.from({ length: size }, () => {
      const entry = { worker: new Worker(new URL('./seed-worker.mjs', import.meta.url), { workerData: data }), waiting: [] as { resolve(c: SeedChunk): void; reject(e: unknown): void }[] };
      entry.worker.on('message', (chunk: SeedChunk) => entry.waiting.shift()?.resolve(chunk));
      entry.worker.on('error', (error) => {
        for (const w of entry.waiting.splice(0)) w.reject(error);
      });
      return entry;
    });
  }

  request(start: number, count: number): Promise<SeedChunk> {
    const entry = this.#workers[this.#next++ % this.size]!;
    return new Promise((resolve, reject) => {
      entry.waiting.push({ resolve, reject });
      entry.worker.postMessage({ start, count });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }
}

const TABLES = ['contacts', 'contact_keys', 'consent_events', 'consent_states'] as const;

function sqliteWriter(path: string): Writer {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 10000');
  // Seeding only: random-UUID keys touch pages all over four indexes; a big
  // page cache keeps that in memory, and a crash here only loses a bench run.
  db.pragma('cache_size = -262144');
  db.pragma('synchronous = OFF');
  const statements = new Map<string, Database.Statement>();
  const insert = (table: string, row: Record<string, unknown>) => {
    const columns = Object.keys(row);
    const key = `${table}:${columns.join(',')}`;
    let stmt = statements.get(key);
    if (!stmt) {
      stmt = db.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`);
      statements.set(key, stmt);
    }
    stmt.run(...columns.map((c) => row[c] as unknown));
  };
  const setHead = db.prepare('update ledger_head set seq = ?, hash = ? where id = 1');
  return {
    readHead: async () => {
      const row = db.prepare('select seq, hash from ledger_head where id = 1').get() as { seq: number; hash: string };
      return { seq: Number(row.seq), hash: row.hash };
    },
    begin: async () => {
      db.exec('begin immediate');
    },
    write: async (batch) => {
      for (const table of TABLES) for (const row of batch[table]) insert(table, row as Record<string, unknown>);
    },
    commit: async (head) => {
      setHead.run(head.seq, head.hash);
      db.exec('commit');
    },
    close: async () => {
      if (db.inTransaction) db.exec('rollback');
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    },
  };
}

async function postgresWriter(url: string): Promise<Writer> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('set synchronous_commit = off');
  const insert = async (table: string, rows: Record<string, unknown>[]) => {
    const first = rows[0];
    if (!first) return;
    const columns = Object.keys(first);
    const types = columns.map((c) => (typeof rows.find((r) => r[c] !== null && r[c] !== undefined)?.[c] === 'number' ? 'int8' : 'text'));
    for (let i = 0; i < rows.length; i += 10_000) {
      const chunk = rows.slice(i, i + 10_000);
      const arrays = columns.map((c) => chunk.map((r) => (r[c] === undefined ? null : r[c])));
      await client.query(
        `insert into ${table} (${columns.join(', ')}) select * from unnest(${types.map((t, j) => `$${j + 1}::${t}[]`).join(', ')})`,
        arrays,
      );
    }
  };
  return {
    readHead: async () => {
      const { rows } = await client.query<{ seq: string; hash: string }>('select seq, hash from ledger_head where id = 1');
      return { seq: Number(rows[0]!.seq), hash: rows[0]!.hash };
    },
    begin: async () => {
      await client.query('begin');
      await client.query('update ledger_head set seq = seq where id = 1');
    },
    write: async (batch) => {
      for (const table of TABLES) await insert(table, batch[table] as Record<string, unknown>[]);
    },
    commit: async (head) => {
      await client.query('update ledger_head set seq = $1, hash = $2 where id = 1', [head.seq, head.hash]);
      await client.query('commit');
    },
    close: async () => {
      await client.query('rollback').catch(() => undefined);
      await client.query('analyze').catch(() => undefined);
      await client.end();
    },
  };
}
