import type { Kysely, Transaction } from 'kysely';
import { insertMany, type ConsentEventRow, type Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/**
 * Takes the chain-head lock: a no-op update of the single head row. It is the
 * first write of every ledger transaction, so on PostgreSQL it is a row lock
 * held to commit and on SQLite it takes the write lock before any read
 * (no stale snapshot, no upgrade deadlock between processes).
 */
export async function lockHead(trx: Transaction<Tables>): Promise<void> {
  await trx.updateTable('ledger_head').set((eb) => ({ seq: eb.ref('seq') })).where('id', '=', 1).execute();
}

/** Reads the chain head (last sequence number and hash). */
export async function readHead(db: Executor): Promise<{ seq: number; hash: string }> {
  const head = await db.selectFrom('ledger_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
  return { seq: Number(head.seq), hash: head.hash };
}

/** Moves the head to the last appended event. */
export async function writeHead(trx: Transaction<Tables>, head: { seq: number; hash: string }): Promise<void> {
  await trx.updateTable('ledger_head').set({ seq: head.seq, hash: head.hash }).where('id', '=', 1).execute();
}

const eventColumns = ['seq', 'id', 'contact_id', 'topic_id', 'type', 'occurred_at', 'evidence', 'prev_hash', 'hash'] as const;

/** Appends chained rows in multi-row statements. */
export async function insertEventRows(trx: Transaction<Tables>, rows: readonly ConsentEventRow[]): Promise<void> {
  const values: unknown[] = [];
  for (const r of rows) values.push(r.seq, r.id, r.contact_id, r.topic_id, r.type, r.occurred_at, r.evidence, r.prev_hash, r.hash);
  await insertMany(trx, { table: 'consent_events', columns: eventColumns }, values);
}

/** Projects many topic events at once; at most one row per (contact, topic), as PostgreSQL's upsert requires. */
export async function upsertStates(
  trx: Transaction<Tables>,
  states: readonly { contact_id: string; topic_id: string; state: string; since: string; event_seq: number }[],
): Promise<void> {
  const values: unknown[] = [];
  for (const s of states) values.push(s.contact_id, s.topic_id, s.state, s.since, s.event_seq);
  await insertMany(
    trx,
    {
      table: 'consent_states',
      columns: ['contact_id', 'topic_id', 'state', 'since', 'event_seq'],
      conflict: 'on conflict ("contact_id", "topic_id") do update set "state" = excluded."state", "since" = excluded."since", "event_seq" = excluded."event_seq"',
    },
    values,
  );
}

/**
 * The first page of the table in sequence order, with no lower bound: a row
 * stored below seq 1 (or, on SQLite, with a null seq) is outside the chain
 * and must be seen by verification, not skipped.
 */
export async function readFirstEvents(db: Executor, limit: number): Promise<ConsentEventRow[]> {
  return db.selectFrom('consent_events').selectAll().orderBy('seq').limit(limit).execute();
}

/** A page of the chain in sequence order, for verification and rebuilds. */
export async function readEventsAfter(db: Executor, afterSeq: number, limit: number): Promise<ConsentEventRow[]> {
  return db.selectFrom('consent_events').selectAll().where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
}

/** Every event of one contact, oldest first (proof, export). */
export async function readContactEvents(db: Executor, contactId: string): Promise<ConsentEventRow[]> {
  return db.selectFrom('consent_events').selectAll().where('contact_id', '=', contactId).orderBy('seq').execute();
}

/** One event by id. */
export async function findEvent(db: Executor, id: string): Promise<ConsentEventRow | undefined> {
  return db.selectFrom('consent_events').selectAll().where('id', '=', id).executeTakeFirst();
}
