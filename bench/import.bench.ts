/**
 * Issue 5, point 6: `assent import` of a generated CSV (10% duplicates, 1% of
 * those with a conflicting state) into SQLite and into PostgreSQL, beside a
 * plain better-sqlite3 bulk insert of the same rows in one transaction (the
 * floor an import cannot beat), all in one run.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { ChildTask, FloorChildResult, MinimumChildResult } from './lib/child.js';
import { benchResult, expectSuccess, lastJsonLine, repoRoot, spawnNode, type Finished } from './lib/procs.js';
import { childEnv, makeInstance, prepareImportTarget, prepareSchemaOnly, TOPIC_SLUG, type Instance } from './lib/setup.js';
import { createDatabase } from './lib/postgres.js';
import { fixed, int, mb, secs, table, verdict } from './lib/table.js';
import type { BenchContext } from './run.js';

const RSS_TARGET_KB = 300 * 1024;
const MINIMUM_LABEL = 'design minimum: better-sqlite3, required rows only';

export interface CsvShape {
  rows: number;
  unique: number;
  duplicates: number;
  conflicting: number;
  bytes: number;
}

/** Deterministic PRNG (mulberry32), so every run imports the same file. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Anna', 'Ben', 'Chloé', 'David', 'Emma', 'Felix', 'Greta', 'Hugo', 'Ines', 'Jonas', 'Karla', 'Luca', 'Mia', 'Noah', 'Olga', 'Paul'];
const LAST = ['Schmidt', 'Martin', 'García', 'Rossi', 'Nowak', 'Jensen', 'Dubois', 'Silva', 'Novak', 'Smith', 'Müller', 'Costa'];
const DOMAINS = ['example.com', 'example.net', 'example.org', 'mail.example.com'];

/**
 * Writes `rows` CSV rows: every tenth row repeats an earlier person (10%
 * duplicates, 30% of them with the address in another case); one duplicate in
 * a hundred declares a conflicting state (subscribed vs unsubscribed). Base
 * rows: 96% subscribed, 2% unsubscribed, 1% cleaned (bounced), 1% complained.
 */
export async function generateCsv(file: string, rows: number): Promise<CsvShape> {
  const random = prng(20260301);
  const out = createWriteStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const statuses: string[] = [];
  const pickStatus = () => {
    const r = random();
    return r < 0.96 ? 'subscribed' : r < 0.98 ? 'unsubscribed' : r < 0.99 ? 'cleaned' : 'complained';
  };
  const line = (i: number, email: string, status: string) => {
    const day = String(1 + (i % 28)).padStart(2, '0');
    return `${email},${FIRST[i % FIRST.length]},${LAST[(i * 7) % LAST.length]},${status},2024-03-${day} 10:${String(i % 60).padStart(2, '0')}:00,203.0.113.${i % 250}\n`;
  };
  const address = (i: number) => `person.${i}@${DOMAINS[i % DOMAINS.length]}`;
  let bytes = 0;
  let unique = 0;
  let duplicates = 0;
  let conflicting = 0;
  let buffer = 'email,first_name,last_name,status,optin_time,optin_ip\n';
  for (let k = 0; k < rows; k++) {
    if (k % 10 === 9 && unique > 0) {
      const j = Math.floor(random() * unique);
      const base = statuses[j]!;
      let status = base;
      if (duplicates % 100 === 0) {
        status = base === 'subscribed' ? 'unsubscribed' : 'subscribed';
        conflicting += 1;
      }
      const email = random() < 0.3 ? address(j).replace(/^p/, 'P') : address(j);
      buffer += line(j, email, status);
      duplicates += 1;
    } else {
      const status = pickStatus();
      statuses.push(status);
      buffer += line(unique, address(unique), status);
      unique += 1;
    }
    if (buffer.length > 1 << 20) {
      bytes += Buffer.byteLength(buffer);
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  bytes += Buffer.byteLength(buffer);
  out.end(buffer);
  await once(out, 'finish');
  return { rows, unique, duplicates, conflicting, bytes };
}

interface ImportSummaryLike {
  rows?: number;
  contacts_created?: number;
  merged?: number;
  suppressed?: number;
  errors?: number;
  [key: string]: unknown;
}

interface ImportRow {
  importer: string;
  rows: number;
  ms: number;
  cpuUs: number;
  maxRssKb: number;
  result: string;
  ok: boolean;
}

export async function runImportBench(ctx: BenchContext): Promise<void> {
  const rows = ctx.quick ? 100_000 : 1_000_000;
  // An import slower than this is stopped and its rate taken from the rows it committed (labelled).
  const capMs = Number(process.env.BENCH_IMPORT_CAP_SECONDS ?? (ctx.quick ? 120 : 480)) * 1000;
  const csv = join(ctx.tmp, 'import.csv');
  ctx.log(`C. import: generating ${int(rows)} CSV rows`);
  const shape = await generateCsv(csv, rows);
  ctx.log(`   ${int(shape.unique)} people, ${int(shape.duplicates)} duplicate rows (${int(shape.conflicting)} conflicting), ${mb(shape.bytes / 1024)}`);

  const results: ImportRow[] = [];
  ctx.log('   floor: better-sqlite3 bulk insert, one transaction');
  const task: ChildTask = { kind: 'floor', csvFile: csv, sqliteFile: join(ctx.tmp, 'floor.sqlite') };
  const floorRun = expectSuccess(await spawnNode('floor', ['--import', 'tsx', 'bench/lib/child.ts'], { env: { BENCH_TASK: JSON.stringify(task) } }).done);
  const floor = benchResult<FloorChildResult>(floorRun);
  results.push({
    importer: 'better-sqlite3 bulk insert, 1 transaction (floor)',
    rows: floor.rows,
    ms: floorRun.wallMs,
    cpuUs: floorRun.cpuUs,
    maxRssKb: floorRun.maxRssKb,
    result: `${int(floor.rows)} rows inserted (${secs(floor.elapsedMs)} s in-process)`,
    ok: true,
  });

  ctx.log('   design minimum: better-sqlite3 writing only the rows the design requires, into Assent\'s schema');
  const minimumFile = join(ctx.tmp, 'minimum.sqlite');
  await prepareSchemaOnly(minimumFile);
  const minimumTask: ChildTask = { kind: 'minimum', csvFile: csv, sqliteFile: minimumFile, topicId: randomUUID() };
  const minimumRun = expectSuccess(await spawnNode('minimum', ['--import', 'tsx', 'bench/lib/child.ts'], { env: { BENCH_TASK: JSON.stringify(minimumTask) } }).done);
  const minimum = benchResult<MinimumChildResult>(minimumRun);
  results.push({
    importer: MINIMUM_LABEL,
    rows: minimum.rows,
    ms: minimumRun.wallMs,
    cpuUs: minimumRun.cpuUs,
    maxRssKb: minimumRun.maxRssKb,
    result: `${int(minimum.people)} contacts, ${int(minimum.events)} chained events (${secs(minimum.elapsedMs)} s in-process)`,
    ok: true,
  });

  const importAvailable = existsSync(join(repoRoot, 'src/cli/import.commands.ts'));
  for (const database of ['sqlite', 'postgres'] as const) {
    const label = `assent import -> ${database === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`;
    if (database === 'postgres' && ctx.postgresSkip) {
      results.push({ importer: label, rows, ms: NaN, cpuUs: 0, maxRssKb: 0, result: `skipped: ${ctx.postgresSkip}`, ok: false });
      continue;
    }
    if (!importAvailable) {
      results.push({ importer: label, rows, ms: NaN, cpuUs: 0, maxRssKb: 0, result: 'skipped: `assent import` is not in this tree yet', ok: false });
      continue;
    }
    let drop: (() => Promise<void>) | undefined;
    try {
      let url: string | undefined;
      if (database === 'postgres') {
        const created = await createDatabase();
        url = created.url;
        drop = created.drop;
      }
      const instance = makeInstance({ dir: join(ctx.tmp, `import-${database}`), ...(url ? { databaseUrl: url } : {}) });
      await prepareImportTarget(instance);
      ctx.log(`   ${label}`);
      const args = ['bin/assent.mjs', 'import', csv, '--topic', TOPIC_SLUG, '--json', '--report', join(instance.dataDir, 'import-report.csv')];
      const proc = spawnNode(label, args, { env: childEnv(instance) });
      // Progress from the import's own resume point (imports.rows_done, moved by every committed batch).
      const progress = await progressReader(instance);
      let last = { rows: 0, ms: 0 };
      let lastLog = 0;
      let capped = false;
      try {
        while (proc.child.exitCode === null && proc.child.signalCode === null) {
          await Promise.race([proc.done, sleep(500)]);
          const elapsed = performance.now() - proc.startedAt;
          const done = await progress.rowsDone();
          if (done !== null && done > last.rows) last = { rows: done, ms: elapsed };
          if (elapsed - lastLog > 15_000) {
            lastLog = elapsed;
            ctx.log(`   ${int(last.rows)} rows committed after ${secs(elapsed)} s`);
          }
          if (elapsed > capMs && proc.child.exitCode === null) {
            capped = true;
            proc.sample();
            ctx.log(`   time cap: stopping the import at ${int(last.rows)} rows (it resumes where it stopped if run again)`);
            await proc.stop(10_000);
          }
        }
      } finally {
        await progress.close();
      }
      const run: Finished = await proc.done;
      if (capped) {
        results.push({
          importer: label,
          rows: last.rows,
          ms: last.ms,
          cpuUs: run.cpuUs,
          maxRssKb: run.maxRssKb,
          result: `time cap ${secs(capMs)} s: ${int(last.rows)} of ${int(rows)} rows committed; rate from those (usage from /proc)`,
          ok: last.rows > 0,
        });
        continue;
      }
      if (run.code !== 0) {
        results.push({ importer: label, rows, ms: run.wallMs, cpuUs: run.cpuUs, maxRssKb: run.maxRssKb, result: `failed (exit ${run.code}): ${lastLine(run.stderr)}`, ok: false });
        continue;
      }
      const summary = lastJsonLine<ImportSummaryLike>(run);
      results.push({
        importer: label,
        rows: summary.rows ?? rows,
        ms: run.wallMs,
        cpuUs: run.cpuUs,
        maxRssKb: run.maxRssKb,
        result: `created ${int(summary.contacts_created ?? NaN)}, merged ${int(summary.merged ?? NaN)}, suppressed ${int(summary.suppressed ?? NaN)}, errors ${int(summary.errors ?? NaN)}`,
        ok: true,
      });
    } catch (error) {
      results.push({ importer: label, rows, ms: NaN, cpuUs: 0, maxRssKb: 0, result: `failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, ok: false });
    } finally {
      await drop?.();
    }
  }

  ctx.out(`\nImport: ${int(rows)} CSV rows (${int(shape.unique)} people, ${int(shape.duplicates)} duplicates, ${int(shape.conflicting)} conflicting), ${mb(shape.bytes / 1024)}`);
  ctx.out(
    table(
      ['importer', 'rows', 'seconds', 'rows/s', 'CPU s', 'peak RSS', 'result'],
      results.map((r) => [
        r.importer,
        int(r.rows),
        Number.isFinite(r.ms) ? secs(r.ms) : '-',
        r.ok ? int((r.rows * 1000) / r.ms) : '-',
        r.cpuUs ? fixed(r.cpuUs / 1e6, 1) : '-',
        mb(r.maxRssKb),
        r.result,
      ]),
    ),
  );
  ctx.out('seconds = process start to exit for every row (Node start-up and, for Assent, opening the runtime included).');
  const floorRate = (floor.rows * 1000) / floorRun.wallMs;
  const sqliteRow = results.find((r) => r.importer.endsWith('SQLite'));
  const pgRow = results.find((r) => r.importer.endsWith('PostgreSQL'));
  const ratioRows: string[][] = [];
  if (sqliteRow?.ok) {
    const ratio = (sqliteRow.rows * 1000) / sqliteRow.ms / floorRate;
    ratioRows.push(['assent import SQLite / floor', fixed(ratio, 3), '>= 0.25', verdict(ratio, 0.25, 'min')]);
    ctx.summary.push(`import ${int(rows)}: SQLite ${int((sqliteRow.rows * 1000) / sqliteRow.ms)} rows/s = ${fixed(ratio, 3)} x floor (>= 0.25 ${verdict(ratio, 0.25, 'min')})`);
  }
  const minimumRow = results.find((r) => r.importer === MINIMUM_LABEL);
  if (minimumRow?.ok) {
    const minimumRate = (minimumRow.rows * 1000) / minimumRow.ms;
    ratioRows.push(['design minimum / floor', fixed(minimumRate / floorRate, 3), '-', '']);
    ctx.summary.push(`import ${int(rows)}: the design minimum (required rows only, no checks) = ${fixed(minimumRate / floorRate, 3)} x floor`);
    if (sqliteRow?.ok) ratioRows.push(['assent import SQLite / design minimum', fixed((sqliteRow.rows * 1000) / sqliteRow.ms / minimumRate, 3), '-', '']);
  }
  if (pgRow?.ok) ratioRows.push(['assent import PostgreSQL / floor', fixed((pgRow.rows * 1000) / pgRow.ms / floorRate, 3), '-', '']);
  for (const r of [sqliteRow, pgRow]) {
    if (r?.ok) ratioRows.push([`${r.importer} peak RSS`, mb(r.maxRssKb), '< 300 MB', verdict(r.maxRssKb, RSS_TARGET_KB, 'max')]);
  }
  if (ratioRows.length) ctx.out(table(['ratio', 'value', 'target', 'verdict'], ratioRows));
  else ctx.summary.push('import: no Assent import measured (see table)');
}

/** Reads the newest import run's `rows_done` from outside the importing process; null before it exists. */
async function progressReader(instance: Instance): Promise<{ rowsDone(): Promise<number | null>; close(): Promise<void> }> {
  const query = 'select rows_done from imports order by created_at desc limit 1';
  if (instance.databaseUrl.startsWith('postgres')) {
    const client = new pg.Client({ connectionString: instance.databaseUrl });
    await client.connect();
    return {
      rowsDone: async () => {
        try {
          const { rows } = await client.query<{ rows_done: string | number }>(query);
          return rows[0] ? Number(rows[0].rows_done) : null;
        } catch {
          return null;
        }
      },
      close: () => client.end(),
    };
  }
  const db = new Database(instance.databaseUrl, { readonly: true });
  return {
    rowsDone: async () => {
      try {
        const row = db.prepare(query).get() as { rows_done: number } | undefined;
        return row ? Number(row.rows_done) : null;
      } catch {
        return null;
      }
    },
    close: async () => {
      db.close();
    },
  };
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.slice(0, 200) ?? '';
}
