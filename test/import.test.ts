/**
 * `assent import` end to end on every database: the CLI's contract for
 * scripts (exit codes, one JSON summary as the last line, a progress bar only
 * on a terminal), and an import killed with SIGKILL mid-way, re-run to
 * completion, leaving exactly what a clean run leaves.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerImportCommands } from '../src/cli/import.commands.js';
import { runCli } from '../src/cli/main.js';
import type { Io } from '../src/cli/runtime.js';
import { verifyLedger } from '../src/consent/index.js';
import { importContacts } from '../src/contacts/import.service.js';
import { newId } from '../src/shared/ids.js';
import type { Db } from '../src/storage/index.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';

const bin = fileURLToPath(new URL('../bin/assent.mjs', import.meta.url));
const ROWS = 6_000;
const BATCH = 150;

/** A deterministic legacy list: duplicates (other case), unsubscribes and bounces among them, bad rows, blank lines. */
function legacyList(rows: number): string {
  const lines = ['Email Address,First Name,Last Name,status,OPTIN_TIME'];
  for (let i = 1; i <= rows; i++) {
    const person = i % 10 === 0 ? i - 7 : i;
    const status = i % 50 === 0 ? 'unsubscribed' : i % 97 === 0 ? 'cleaned' : i % 10 === 0 && i % 30 === 0 ? 'unsubscribed' : 'subscribed';
    if (i % 400 === 0) lines.push('');
    else if (i % 211 === 0) lines.push(`not-an-address-${i},X,Y,subscribed,`);
    else lines.push(`${i % 3 === 0 ? 'Person' : 'person'}.${person}@example.org,P${person},L,${status},2020-01-01`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** What an import leaves, independent of ids, keys and times. */
async function snapshot(db: Db) {
  const events = await db.selectFrom('consent_events').select(['type', 'evidence']).orderBy('seq').execute();
  const count = async (table: 'contacts' | 'contact_names' | 'contact_keys') => (await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;
  const group = (rows: Record<string, unknown>[], key: string) => rows.map((r) => String(r[key])).sort().join(',');
  return {
    contacts: Number(await count('contacts')),
    keys: Number(await count('contact_keys')),
    names: Number(await count('contact_names')),
    // Every event names the rows it records: a duplicate would repeat one.
    events: events.map((e) => {
      const evidence = JSON.parse(e.evidence) as { row?: number; records?: { row: number }[] };
      return `${e.type}:${evidence.row ?? evidence.records?.map((r) => r.row).join('+')}`;
    }).sort(),
    states: group(await db.selectFrom('consent_states').select('state').execute(), 'state'),
    suppressions: group(await db.selectFrom('suppressions').select('reason').execute(), 'reason'),
    reportRows: group(await db.selectFrom('import_rows').select('reason').execute(), 'reason'),
  };
}

function capture(rt: TestRuntime): { io: Io; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l) => out.push(l), err: (l) => err.push(l), env: { ...rt.env, ASSENT_LOG_LEVEL: 'warn' }, cwd: rt.dataDir }, out, err };
}

for (const target of await databaseTargets()) {
  describe(`assent import (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    let file: string;
    before(async () => {
      rt = await startTestRuntime(target);
      file = join(rt.dataDir, 'legacy.csv');
      writeFileSync(file, legacyList(ROWS));
    });
    after(() => rt.close());

    test('exit 2 on bad arguments, an unknown topic or an unreadable file; nothing is recorded', async () => {
      const small = join(rt.dataDir, 'small.csv');
      writeFileSync(small, 'email,name\r\na@example.org,A\r\n');
      const cases: [string[], RegExp][] = [
        [['import', small], /required option '--topic <slug>'/],
        [['import', small, '--topic', 'nope'], /^error: no topic "nope"$/],
        [['import', join(rt.dataDir, 'missing.csv'), '--topic', 'newsletter'], /^error: cannot read .*missing\.csv$/],
        [['import', small, '--topic', 'newsletter', '--encoding', 'ebcdic'], /unknown encoding "ebcdic"/],
        [['import', small, '--topic', 'newsletter', '--map', 'email=Mail'], /the file has no column "Mail"/],
        [['import', small, '--topic', 'newsletter', '--batch-size', '0'], /--batch-size must be a positive integer/],
        [['import', small, '--topic', 'newsletter', '--status', 'maybe'], /unknown status "maybe"/],
      ];
      for (const [args, message] of cases) {
        const { io, out, err } = capture(rt);
        assert.equal(await runCli(['node', 'assent', ...args], io), 2, args.join(' '));
        assert.deepEqual(out, []);
        assert.match(err.join('\n'), message);
      }
      assert.deepEqual(await rt.runtime.storage.db.selectFrom('imports').select('id').execute(), []);
    });

    test('exit 0 with per-row errors; stdout not a terminal: one JSON summary as the last line', async () => {
      const csv = join(rt.dataDir, 'mixed.csv');
      writeFileSync(csv, 'Email Address;status\r\nok@example.org;subscribed\r\nbroken;subscribed\r\nOK@example.org;unsubscribed\r\n');
      const { io, out } = capture(rt);
      assert.equal(await runCli(['node', 'assent', 'import', csv, '--topic', 'newsletter', '--report', 'mixed-report.csv'], io), 0);
      const summary = JSON.parse(out.at(-1)!);
      assert.deepEqual(
        [summary.rows, summary.contacts_created, summary.merged, summary.suppressed, summary.errors, summary.imported, summary.suppressed_skipped, summary.unchanged],
        [3, 1, 1, 1, 1, 0, 0, 1],
      );
      assert.equal(summary.report, join(rt.dataDir, 'mixed-report.csv'));
      assert.equal(summary.delimiter, ';');
    });

    test('on a terminal: a progress bar on stderr and a readable summary; --json still prints JSON', async () => {
      const csv = join(rt.dataDir, 'tty.csv');
      writeFileSync(csv, 'email\r\ntty1@example.org\r\ntty2@example.org\r\n');
      const drawn: string[] = [];
      const stderr = Object.assign(new Writable({ write: (chunk, _enc, done) => done(void drawn.push(String(chunk))) }), { isTTY: true, columns: 80, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
      const run = async (args: string[]) => {
        const { io, out } = capture(rt);
        const program = new Command('assent').exitOverride();
        registerImportCommands(program, io, { stdoutIsTTY: true, stderr });
        await program.parseAsync(['node', 'assent', 'import', csv, '--topic', 'newsletter', ...args]);
        return out;
      };
      const human = await run([]);
      assert.match(human[0]!, /^import [0-9a-f-]+ of tty\.csv into newsletter: completed$/);
      assert.match(human.join('\n'), /rows 2: 2 imported, 0 suppressed/);
      assert.match(drawn.join(''), /importing \[.*\] 100% \| 2 rows/);
      const json = await run(['--json']);
      assert.equal(JSON.parse(json.at(-1)!).already_completed, true);
    });

    test('a SIGKILLed import re-run with the same file ends exactly like a clean run: no row lost, none repeated', async (t) => {
      const killed = await startTestRuntime(target);
      t.after(() => killed.close());
      const db = killed.runtime.storage.db;
      const env = { ...process.env, ...killed.env, ASSENT_LOG_LEVEL: 'warn' };
      const args = [bin, 'import', file, '--topic', 'newsletter', '--batch-size', String(BATCH), '--json'];
      const child = spawn(process.execPath, args, { cwd: killed.dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      let killedAt = 0;
      for (let polls = 0; polls < 12_000 && killedAt === 0 && child.exitCode === null; polls++) {
        const run = await db.selectFrom('imports').select(['rows_done', 'status']).where('file_name', '=', 'legacy.csv').executeTakeFirst();
        if (run && Number(run.rows_done) >= 5 * BATCH) {
          child.kill('SIGKILL');
          killedAt = Number(run.rows_done);
        } else await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal(await exited, 'SIGKILL', `the import ended before it could be killed: ${stderr}`);
      const left = await db.selectFrom('imports').select(['rows_done', 'status']).where('file_name', '=', 'legacy.csv').executeTakeFirstOrThrow();
      assert.equal(left.status, 'running');
      assert.ok(Number(left.rows_done) >= killedAt && Number(left.rows_done) < ROWS, `killed mid-import (rows_done ${left.rows_done})`);
      assert.equal(Number(left.rows_done) % BATCH, 0, 'only whole batches committed');
      assert.equal((await verifyLedger(db)).ok, true);

      const resumed = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const again = spawn(process.execPath, args, { cwd: killed.dataDir, env, stdio: ['ignore', 'pipe', 'inherit'] });
        let stdout = '';
        again.stdout.on('data', (d) => (stdout += d));
        again.on('exit', (code) => resolve({ code, stdout }));
      });
      assert.equal(resumed.code, 0);
      const summary = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!);
      assert.equal(summary.resumed_from_row, Number(left.rows_done));

      const clean = await startTestRuntime(target);
      try {
        const started = performance.now();
        const expected = await importContacts(
          { db: clean.runtime.storage.db, clock: clean.clock, newId, keys: { masterKeys: clean.runtime.secrets.masterKeys, suppressionKeys: clean.runtime.secrets.suppressionKeys } },
          { path: file, topicSlug: 'newsletter', batchSize: BATCH },
        );
        const seconds = (performance.now() - started) / 1000;
        t.diagnostic(`clean in-process import on ${target.name}: ${ROWS} rows in ${seconds.toFixed(2)} s (${Math.round(ROWS / seconds)} rows/s)`);
        const strip = (s: object) => ({ ...s, import_id: '', resumed_from_row: 0, report: null });
        assert.deepEqual(strip(summary), strip(expected));
        assert.deepEqual(await snapshot(db), await snapshot(clean.runtime.storage.db));
        assert.equal(summary.rows, ROWS);
        assert.ok(summary.errors > 0 && summary.merged > 0 && summary.suppressed > 0, JSON.stringify(summary));
      } finally {
        await clean.close();
      }
      assert.equal((await verifyLedger(db)).ok, true);
    });
  });
}
