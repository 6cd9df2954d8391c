/**
 * `npm run bench [-- campaign|import] [--quick] [--no-postgres] [--profile]`
 *
 * Runs the benchmarks of issue 3 (campaign throughput and memory) and issue 5
 * (import), each beside its peers in the same run, and prints tables and
 * ratios. Progress goes to stderr, the report to stdout. Every child process
 * (smtp-sink, senders, workers) is stopped by its PID and every temporary
 * directory and PostgreSQL database removed, also on error and Ctrl-C.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { cleanupAll, onCleanup, setProbeDir } from './lib/procs.js';
import { postfixToolsPresent } from './lib/sink.js';
import { postgresReachable } from './lib/postgres.js';
import { runCampaignBench } from './campaign.bench.js';
import { runImportBench } from './import.bench.js';

export interface BenchContext {
  quick: boolean;
  /** This run's temporary directory (removed at the end). */
  tmp: string;
  /** A reason PostgreSQL runs are skipped, or null. */
  postgresSkip: string | null;
  /** Progress, to stderr. */
  log(line: string): void;
  /** The report, to stdout. */
  out(text: string): void;
  /** One line per headline figure, printed again at the end. */
  summary: string[];
  /** Things that went wrong in Assent during the run (stalls), printed at the end. */
  problems: string[];
  /** Peak RSS of Assent processes seen so far (for the < 300 MB verdict). */
  peakRss: { what: string; kb: number }[];
  /** With --profile: where Assent's measured children write CPU profiles (kept after the run). */
  profileDir: string | null;
}

const usage = 'usage: npm run bench [-- campaign|import] [--quick] [--no-postgres] [--profile]';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const flags = new Set(args.filter((a) => a.startsWith('--')));
  const names = args.filter((a) => !a.startsWith('--'));
  for (const f of flags) {
    if (!['--quick', '--no-postgres', '--profile', '--help'].includes(f)) {
      process.stderr.write(`unknown option ${f}\n${usage}\n`);
      return 2;
    }
  }
  if (flags.has('--help')) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const unknown = names.filter((n) => n !== 'campaign' && n !== 'import');
  if (unknown.length) {
    process.stderr.write(`unknown benchmark ${unknown.join(', ')}\n${usage}\n`);
    return 2;
  }
  const selected = names.length ? names : ['campaign', 'import'];
  const quick = flags.has('--quick');

  const tmp = mkdtempSync(join(tmpdir(), 'assent-bench-'));
  onCleanup('temporary directory', () => rmSync(tmp, { recursive: true, force: true }));
  setProbeDir(tmp);
  const started = performance.now();
  const ctx: BenchContext = {
    quick,
    tmp,
    postgresSkip: flags.has('--no-postgres') ? '--no-postgres' : await postgresReachable(),
    log: (line) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`),
    out: (text) => process.stdout.write(`${text}\n`),
    summary: [],
    problems: [],
    peakRss: [],
    profileDir: flags.has('--profile') ? mkdtempSync(join(tmpdir(), 'assent-bench-profiles-')) : null,
  };
  if (ctx.profileDir) ctx.log(`--profile: CPU profiles of Assent's measured processes go to ${ctx.profileDir} (kept)`);

  const cpu = cpus();
  ctx.out(`Assent benchmark, ${new Date().toISOString()}${quick ? ' (--quick: smaller sizes)' : ''}`);
  ctx.out(
    `machine: ${cpu.length} x ${cpu[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}; ` +
      'one run; senders and sink share the cores, so read the ratios, not the absolute rates',
  );
  if (postfixRunning()) ctx.log('note: a postfix master daemon is running on this machine; the benchmark does not need it');

  if (selected.includes('campaign')) {
    if (!postfixToolsPresent()) {
      ctx.out('\nCampaign benchmark skipped: /usr/sbin/smtp-sink and smtp-source not found (apt-get install postfix; the daemon need not run).');
    } else {
      await runCampaignBench(ctx);
    }
  }
  if (selected.includes('import')) await runImportBench(ctx);

  ctx.out(`\nSummary (${((performance.now() - started) / 1000 / 60).toFixed(1)} min):`);
  for (const line of ctx.summary) ctx.out(`  ${line}`);
  if (ctx.problems.length) {
    ctx.out('Problems seen:');
    for (const line of ctx.problems) ctx.out(`  ${line}`);
  }
  return 0;
}

/** Whether Postfix's master daemon runs here (we never start it; the brief says not to leave it running). */
function postfixRunning(): boolean {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .some((pid) => read(`/proc/${pid}/comm`).trim() === 'master' && read(`/proc/${pid}/cmdline`).includes('postfix'));
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping child processes and cleaning up\n`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

let code = 1;
try {
  code = await main();
} catch (error) {
  // After Ctrl-C the children were stopped on purpose; their "failure" is no news.
  if (!interrupted) process.stderr.write(`\nbenchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  code = 1;
} finally {
  if (!interrupted) await cleanupAll();
}
process.exitCode = code;
