/**
 * `importContacts`: a CSV file (or byte stream) into one topic, in batches,
 * resumable. The same function serves the CLI and the future API.
 *
 * An import is identified by the file's SHA-256, the topic and the parse
 * options. Starting one that is running (a killed process) continues after
 * its last committed batch; starting one that completed changes nothing and
 * returns its summary. A stream without a known hash cannot be resumed.
 */
import { createWriteStream } from 'node:fs';
import { basename } from 'node:path';
import { once } from 'node:events';
import { canonicalJson } from '../shared/crypto.js';
import type { Clock } from '../shared/clock.js';
import { AppError, isAppError } from '../shared/errors.js';
import type { IdGenerator } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import type { Db, ImportRun } from '../storage/index.js';
import type { SuppressionKey } from '../consent/index.js';
import { findTopicBySlug } from '../topics/index.js';
import type { MasterKey } from './contact-keys.js';
import { commitBatch, zeroCounters, type Batch, type ImportCounters, type RunContext } from './import-batch.js';
import { parseMapOption, resolveColumns, type MapOverrides } from './import-mapping.js';
import { declaredEvidenceNote, readRow, parseStatus, type DeclaredStatus, type RowContext } from './import-row.js';
import { describeFile, openCsv, parseDelimiter, parseEncoding, readFileBytes, type CsvSource } from './import-source.js';
import { completeImportRun, findImportRows, findImportRun, insertImportRun } from './import.repository.js';

export interface ImportDeps {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
  logger?: Logger;
  keys: { masterKeys: MasterKey[]; suppressionKeys: SuppressionKey[] };
}

export interface ImportInput {
  topicSlug: string;
  /** A file to read; or `stream` with `fileName` (and `fileSha256` to make it resumable). */
  path?: string;
  stream?: AsyncIterable<Uint8Array>;
  fileName?: string;
  fileSha256?: string;
  /** utf-8 (default) or windows-1252; a byte-order mark overrides it. */
  encoding?: string;
  /** comma, semicolon, tab, pipe or auto (default). */
  delimiter?: string;
  /** Column overrides, as `email=Col` pairs or already parsed. */
  map?: readonly string[] | MapOverrides;
  /** Status of every row when the file has no status column (default subscribed). */
  defaultStatus?: string;
  batchSize?: number;
  /** Where to write the per-row report (CSV). */
  reportPath?: string;
  actor?: string;
  declaredBasis?: string;
  /** Called after each committed batch; the import waits for a returned promise. */
  onProgress?: (progress: ImportProgress) => void | Promise<void>;
}

export interface ImportProgress {
  rowsDone: number;
  bytesRead: number;
  totalBytes: number | null;
}

export interface ImportSummary extends ImportCounters {
  import_id: string;
  status: 'completed';
  file_name: string;
  topic: string;
  /** Rows already committed by an earlier, interrupted run of the same import. */
  resumed_from_row: number;
  already_completed: boolean;
  encoding: string;
  delimiter: string;
  report: string | null;
}

interface Prepared {
  topic: { id: string; slug: string };
  options: { encoding: ReturnType<typeof parseEncoding>; delimiter: string; map: MapOverrides; defaultStatus: DeclaredStatus };
  fileName: string;
  file: { size: number | null; sha256: string | null };
  bytes: () => AsyncIterable<Uint8Array>;
}

export async function importContacts(deps: ImportDeps, input: ImportInput): Promise<ImportSummary> {
  const prepared = await prepare(deps, input);
  const key = { fileSha256: prepared.file.sha256 ?? '', topicId: prepared.topic.id, options: canonicalJson(prepared.options) };
  const previous = prepared.file.sha256 === null ? undefined : await findImportRun(deps.db, key);
  if (previous?.status === 'completed') return finish(deps, input, { run: previous, prepared, resumedFrom: previous.rows_done, alreadyCompleted: true, dialect: null });
  const source = await openCsv(prepared.bytes(), prepared.options);
  if (source.header.fault) throw new AppError('validation_failed', `the header row cannot be read (${source.header.fault})`);
  const columns = resolveColumns(source.header.fields, prepared.options.map);
  const run = previous ?? (await startRun(deps, { key, fileName: prepared.fileName }));
  const context: RunContext = {
    importId: run.id,
    topicId: prepared.topic.id,
    fileName: prepared.fileName,
    actor: input.actor ?? 'operator',
    declaredBasis: input.declaredBasis ?? 'consent',
  };
  const resumedFrom = Number(run.rows_done);
  const readContext = { columns, width: source.header.fields.length, defaultStatus: prepared.options.defaultStatus };
  const done = await runBatches(deps, { input, source, readContext, context, run, totalBytes: prepared.file.size });
  return finish(deps, input, { run: { ...run, ...done }, prepared, resumedFrom, alreadyCompleted: false, dialect: source.dialect });
}

/**
 * Reads every record, skipping those an earlier run committed, and commits
 * them in batches; each batch moves the resume point in its own transaction.
 */
async function runBatches(
  deps: ImportDeps,
  input: { input: ImportInput; source: CsvSource; readContext: Omit<RowContext, 'row'>; context: RunContext; run: ImportRun; totalBytes: number | null },
): Promise<{ rows_done: number; summary: string }> {
  const { source, context } = input;
  const resumedFrom = Number(input.run.rows_done);
  const size = Math.max(1, Math.floor(input.input.batchSize ?? 1000));
  let counters: ImportCounters = { ...zeroCounters(), ...(JSON.parse(input.run.summary) as Partial<ImportCounters>) };
  let batch: Batch = { from: resumedFrom + 1, to: resumedFrom, rows: [], notes: [], warnings: [] };
  const now = deps.clock.now();
  const flush = async () => {
    if (batch.to < batch.from) return;
    counters = await commitBatch(deps.db, deps, context, batch, counters);
    await input.input.onProgress?.({ rowsDone: batch.to, bytesRead: source.bytesRead(), totalBytes: input.totalBytes });
    batch = { from: batch.to + 1, to: batch.to, rows: [], notes: [], warnings: [] };
  };
  let row = 0;
  for await (const records of source.records) {
    for (const record of records) {
      row += 1;
      if (row <= resumedFrom) continue;
      const read = readRow(record, { ...input.readContext, row });
      if ('address' in read) {
        batch.rows.push(read);
        const warning = declaredEvidenceNote(read, now);
        if (warning) batch.warnings.push(warning);
      } else batch.notes.push(read);
      batch.to = row;
      if (batch.to - batch.from + 1 >= size) await flush();
    }
  }
  await flush();
  return { rows_done: batch.to, summary: JSON.stringify(counters) };
}

async function prepare(deps: ImportDeps, input: ImportInput): Promise<Prepared> {
  const map = Array.isArray(input.map) ? parseMapOption(input.map as readonly string[]) : ((input.map ?? {}) as MapOverrides);
  const defaultStatus = parseStatus(input.defaultStatus ?? 'subscribed');
  if (defaultStatus === null) throw new AppError('validation_failed', `unknown status "${input.defaultStatus}"`);
  const options = { encoding: parseEncoding(input.encoding ?? 'utf-8'), delimiter: parseDelimiter(input.delimiter ?? 'auto'), map, defaultStatus };
  const topic = await findTopicBySlug(deps.db, input.topicSlug);
  if (!topic) throw new AppError('not_found', `no topic "${input.topicSlug}"`);
  if (input.path !== undefined) {
    const path = input.path;
    const file = await describeFile(path);
    return { topic, options, fileName: input.fileName ?? basename(path), file, bytes: () => readFileBytes(path) };
  }
  const stream = input.stream;
  if (!stream) throw new AppError('validation_failed', 'give a file path or a stream');
  return { topic, options, fileName: input.fileName ?? 'upload.csv', file: { size: null, sha256: input.fileSha256 ?? null }, bytes: () => stream };
}

/** Records a new run; when another process inserted the same one first, that one is continued. */
async function startRun(deps: ImportDeps, input: { key: { fileSha256: string; topicId: string; options: string }; fileName: string }): Promise<ImportRun> {
  const id = deps.newId();
  const run: ImportRun = {
    id,
    file_name: input.fileName,
    // A stream of unknown hash gets a placeholder of its own, so it never matches another run.
    file_sha256: input.key.fileSha256 || `stream:${id}`,
    topic_id: input.key.topicId,
    options: input.key.options,
    status: 'running',
    rows_done: 0,
    created_at: deps.clock.now().toISOString(),
    finished_at: null,
    summary: JSON.stringify(zeroCounters()),
  };
  try {
    await insertImportRun(deps.db, run);
    return run;
  } catch (error) {
    const existing = input.key.fileSha256 ? await findImportRun(deps.db, input.key) : undefined;
    if (!existing || isAppError(error)) throw error;
    return existing;
  }
}

async function finish(
  deps: ImportDeps,
  input: ImportInput,
  state: { run: ImportRun; prepared: Prepared; resumedFrom: number; alreadyCompleted: boolean; dialect: CsvSource['dialect'] | null },
): Promise<ImportSummary> {
  const { run, prepared } = state;
  if (!state.alreadyCompleted) {
    await completeImportRun(deps.db, { id: run.id, finishedAt: deps.clock.now().toISOString(), summary: run.summary });
  }
  const report = input.reportPath ?? null;
  if (report !== null) await writeImportReport(deps.db, { importId: run.id, path: report });
  const counters = { ...zeroCounters(), ...(JSON.parse(run.summary) as Partial<ImportCounters>) };
  const summary: ImportSummary = {
    ...counters,
    import_id: run.id,
    status: 'completed',
    file_name: run.file_name,
    topic: prepared.topic.slug,
    resumed_from_row: state.resumedFrom,
    already_completed: state.alreadyCompleted,
    encoding: state.dialect?.encoding ?? prepared.options.encoding,
    delimiter: state.dialect?.delimiter ?? prepared.options.delimiter,
    report,
  };
  deps.logger?.info({ import: run.id, topic: prepared.topic.slug, ...counters, resumed_from_row: state.resumedFrom }, 'import completed');
  return summary;
}

/**
 * Writes a run's report: one CSV line per row not applied, with its row and
 * line numbers and the reason. Addresses are never written: a suppressed or
 * erased person's address must not reappear through an import (Art. 17, 21).
 */
export async function writeImportReport(db: Db, input: { importId: string; path: string }): Promise<void> {
  const out = createWriteStream(input.path, { encoding: 'utf8' });
  const write = async (line: string) => {
    if (!out.write(`${line}\r\n`)) await once(out, 'drain');
  };
  try {
    await write('row,line,reason,detail');
    for (let after = 0; ; ) {
      const page = await findImportRows(db, { importId: input.importId, afterRow: after, limit: 1000 });
      for (const r of page) await write([r.row, r.line, r.reason, csvCell(r.detail)].join(','));
      if (page.length < 1000) break;
      after = Number(page[page.length - 1]!.row);
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
}

function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
