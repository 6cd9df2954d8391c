/**
 * SQL of the CSV import: the run and its progress marker, the rows it did
 * not apply, and the batch reads and writes. Lists are chunked to stay under
 * SQLite's bound-parameter limit.
 */
import type { Insertable, Kysely, Transaction } from 'kysely';
import { insertMany, type Contact, type ImportRowsTable, type ImportRun, type ImportsTable, type Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

const CHUNK = 400;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** The run of this file, topic and options, if one was started. */
export async function findImportRun(
  db: Executor,
  key: { fileSha256: string; topicId: string; options: string },
): Promise<ImportRun | undefined> {
  return db
    .selectFrom('imports')
    .selectAll()
    .where('file_sha256', '=', key.fileSha256)
    .where('topic_id', '=', key.topicId)
    .where('options', '=', key.options)
    .executeTakeFirst();
}

/** Records a new run; fails on the unique key when another process started the same one. */
export async function insertImportRun(db: Executor, run: Insertable<ImportsTable>): Promise<void> {
  await db.insertInto('imports').values(run).execute();
}

/** The run's resume point, read inside the batch transaction. */
export async function readRowsDone(trx: Transaction<Tables>, importId: string): Promise<number | undefined> {
  const row = await trx.selectFrom('imports').select('rows_done').where('id', '=', importId).executeTakeFirst();
  return row === undefined ? undefined : Number(row.rows_done);
}

/** Moves the resume point and the counters, in the batch's transaction. */
export async function updateImportProgress(trx: Transaction<Tables>, input: { id: string; rowsDone: number; summary: string }): Promise<void> {
  await trx.updateTable('imports').set({ rows_done: input.rowsDone, summary: input.summary }).where('id', '=', input.id).execute();
}

/** Marks a run completed with its final counters. */
export async function completeImportRun(db: Executor, input: { id: string; finishedAt: string; summary: string }): Promise<void> {
  await db.updateTable('imports').set({ status: 'completed', finished_at: input.finishedAt, summary: input.summary }).where('id', '=', input.id).execute();
}

/** Stores the rows a batch did not apply. */
export async function insertImportRows(trx: Transaction<Tables>, rows: Insertable<ImportRowsTable>[]): Promise<void> {
  for (const part of chunks(rows)) await trx.insertInto('import_rows').values(part).execute();
}

/** A page of a run's report rows, in row order. */
export async function findImportRows(db: Executor, input: { importId: string; afterRow: number; limit: number }) {
  return db
    .selectFrom('import_rows')
    .select(['row', 'line', 'reason', 'detail'])
    .where('import_id', '=', input.importId)
    .where('row', '>', input.afterRow)
    .orderBy('row')
    .limit(input.limit)
    .execute();
}

/** Contacts holding any of the match keys. */
export async function findContactsByMatchKeys(trx: Transaction<Tables>, matchKeys: string[]): Promise<Contact[]> {
  const out: Contact[] = [];
  for (const part of chunks(matchKeys)) out.push(...(await trx.selectFrom('contacts').selectAll().where('match_key', 'in', part).execute()));
  return out;
}

/** Suppression entries under any of the hashes, for the given scopes (which hash matched is needed per address). */
export async function findSuppressionHits(
  trx: Transaction<Tables>,
  input: { hashes: string[]; scopes: string[] },
): Promise<{ key_hash: string; scope: string; reason: string }[]> {
  const out: { key_hash: string; scope: string; reason: string }[] = [];
  for (const part of chunks(input.hashes)) {
    out.push(...(await trx.selectFrom('suppressions').select(['key_hash', 'scope', 'reason']).where('key_hash', 'in', part).where('scope', 'in', input.scopes).execute()));
  }
  return out;
}

/** Consent states of the contacts for one topic. */
export async function findTopicStates(trx: Transaction<Tables>, input: { contactIds: string[]; topicId: string }) {
  const out: { contact_id: string; state: string }[] = [];
  for (const part of chunks(input.contactIds)) {
    out.push(
      ...(await trx
        .selectFrom('consent_states')
        .select(['contact_id', 'state'])
        .where('topic_id', '=', input.topicId)
        .where('contact_id', 'in', part)
        .execute()),
    );
  }
  return out;
}

/** Wrapped evidence keys of the contacts. */
export async function findWrappedKeys(db: Executor, contactIds: string[]): Promise<{ contact_id: string; wrapped_key: string }[]> {
  const out: { contact_id: string; wrapped_key: string }[] = [];
  for (const part of chunks(contactIds)) {
    out.push(...(await db.selectFrom('contact_keys').select(['contact_id', 'wrapped_key']).where('contact_id', 'in', part).execute()));
  }
  return out;
}

// The batch writes below take flat, row-major values in the column order
// named beside them (storage's insertMany): an import writes a row to each
// table for most CSV rows, and the query builder's per-value nodes would cost
// more than the inserts.

export const contactColumns = ['id', 'address', 'match_key', 'provider_key', 'locale', 'created_at', 'erased_at'] as const;
export const contactKeyColumns = ['contact_id', 'wrapped_key', 'created_at'] as const;
export const contactNameColumns = ['contact_id', 'sealed', 'updated_at'] as const;

/** Stores new contacts (values in `contactColumns` order). */
export async function insertContactValues(trx: Transaction<Tables>, values: readonly unknown[]): Promise<void> {
  await insertMany(trx, { table: 'contacts', columns: contactColumns }, values);
}

/** Stores wrapped evidence keys (values in `contactKeyColumns` order). */
export async function insertContactKeyValues(trx: Transaction<Tables>, values: readonly unknown[]): Promise<void> {
  await insertMany(trx, { table: 'contact_keys', columns: contactKeyColumns }, values);
}

/** Stores sealed names (values in `contactNameColumns` order); a contact's existing names are kept. */
export async function insertContactNameValues(trx: Transaction<Tables>, values: readonly unknown[]): Promise<void> {
  await insertMany(trx, { table: 'contact_names', columns: contactNameColumns, conflict: 'on conflict ("contact_id") do nothing' }, values);
}

/** Contacts by id. */
export async function findContactsByIds(trx: Transaction<Tables>, ids: string[]): Promise<Contact[]> {
  const out: Contact[] = [];
  for (const part of chunks(ids)) out.push(...(await trx.selectFrom('contacts').selectAll().where('id', 'in', part).execute()));
  return out;
}

