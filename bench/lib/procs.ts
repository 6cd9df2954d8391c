/**
 * Child processes of the benchmark: started, watched (peak RSS and CPU from
 * /proc while they run, exact figures from bench/lib/probe.mjs when they are
 * Node), and always stopped by their own PID, also on error and SIGINT.
 * Cleanup hooks (temp dirs, PostgreSQL databases) run last-in first-out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const repoRoot = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
export const probeModule = join(repoRoot, 'bench/lib/probe.mjs');
const CLK_TCK = 100;

export interface Usage {
  /** Peak resident set (VmHWM / ru_maxrss), KiB. */
  maxRssKb: number;
  /** User + system CPU, microseconds. */
  cpuUs: number;
}

export interface Finished extends Usage {
  label: string;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  stdout: string;
  stderr: string;
  /** Where the usage came from: the probe (exact) or /proc polling (last sample). */
  usageSource: 'probe' | 'proc' | 'time';
}

export interface Tracked {
  label: string;
  pid: number;
  child: ChildProcess;
  startedAt: number;
  /** Latest /proc sample (peak RSS so far, CPU so far). */
  sample(): Usage;
  done: Promise<Finished>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<Finished>;
}

const live = new Set<Tracked>();
const cleanups: { label: string; run: () => Promise<void> | void }[] = [];
let probeCounter = 0;

/** Registers work to do at the end (or on error/SIGINT); runs last-in first-out. */
export function onCleanup(label: string, run: () => Promise<void> | void): void {
  cleanups.push({ label, run });
}

/** Stops every child still running, then runs the cleanup hooks. Safe to call twice. */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...live].map((t) => t.stop(3000).catch(() => undefined)));
  while (cleanups.length > 0) {
    const hook = cleanups.pop()!;
    try {
      await hook.run();
    } catch (error) {
      process.stderr.write(`cleanup "${hook.label}" failed: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }
}

/** PIDs of a process's children (/proc/<pid>/task/<pid>/children), recursively. */
function descendants(pid: number): number[] {
  try {
    const direct = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return direct.flatMap((c) => [c, ...descendants(c)]);
  } catch {
    return [];
  }
}

function killTree(pid: number, signal: NodeJS.Signals): void {
  for (const p of [...descendants(pid).reverse(), pid]) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}

/** Peak RSS (KiB) and CPU (µs) of one PID from /proc; null once it is gone. */
export function procUsage(pid: number): Usage | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) -> index 11, 12 here.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { maxRssKb: hwm ? Number(hwm[1]) : 0, cpuUs: (ticks * 1e6) / CLK_TCK };
  } catch {
    return null;
  }
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  /** Preload probe.mjs (Node children only) for exact peak RSS and CPU at exit. */
  probe?: boolean;
  /** Run under GNU time for exact rusage of a non-Node program. */
  gnuTime?: boolean;
  /** Keep at most this many characters of stdout/stderr (the tail). */
  keep?: number;
  /** Print the child's stderr as it comes (progress, errors). */
  echoStderr?: boolean;
}

/** Starts a Node script: `node [--import probe] ...args`. */
export function spawnNode(label: string, args: string[], options: SpawnOptions = {}): Tracked {
  const pre = options.probe === false ? [] : ['--import', probeModule];
  return spawnTracked(label, process.execPath, [...pre, ...args], { ...options, probe: options.probe !== false });
}

export function spawnTracked(label: string, command: string, args: string[], options: SpawnOptions = {}): Tracked {
  const keep = options.keep ?? 256 * 1024;
  const probeFile = options.probe ? join(tmpDirForProbes(), `probe-${process.pid}-${++probeCounter}.json`) : undefined;
  const timeFile = options.gnuTime ? join(tmpDirForProbes(), `time-${process.pid}-${++probeCounter}.txt`) : undefined;
  const [cmd, argv] = timeFile ? ['/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, command, ...args]] : [command, args];
  const child = spawn(cmd, argv, {
    cwd: repoRoot,
    env: { ...process.env, ...options.env, ...(probeFile ? { BENCH_PROBE_FILE: probeFile } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${label} (${command})`);
  const pid = child.pid;
  const startedAt = performance.now();
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout = (stdout + s).slice(-keep);
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-keep);
    if (options.echoStderr) process.stderr.write(s);
  });
  // What /proc said last; for a wrapper (GNU time), the wrapped program's PID is sampled.
  let last: Usage = { maxRssKb: 0, cpuUs: 0 };
  const poll = () => {
    const target = timeFile ? (descendants(pid)[0] ?? pid) : pid;
    const u = procUsage(target);
    if (u) last = { maxRssKb: Math.max(last.maxRssKb, u.maxRssKb), cpuUs: Math.max(last.cpuUs, u.cpuUs) };
  };
  const timer = setInterval(poll, 100);
  timer.unref();
  let tracked!: Tracked;
  const done = new Promise<Finished>((resolve) => {
    child.on('exit', (code, signal) => {
      const wallMs = performance.now() - startedAt;
      clearInterval(timer);
      live.delete(tracked);
      // Let stdout/stderr drain before resolving.
      setImmediate(() => {
        let usage: Usage = last;
        let usageSource: Finished['usageSource'] = 'proc';
        if (probeFile && existsSync(probeFile)) {
          try {
            const p = JSON.parse(readFileSync(probeFile, 'utf8')) as { maxRssKb: number; userUs: number; systemUs: number };
            usage = { maxRssKb: p.maxRssKb, cpuUs: p.userUs + p.systemUs };
            usageSource = 'probe';
          } catch {
            // keep the polled figures
          }
          rmSync(probeFile, { force: true });
        }
        if (timeFile && existsSync(timeFile)) {
          const m = /([\d.]+) ([\d.]+) (\d+)\s*$/.exec(readFileSync(timeFile, 'utf8'));
          if (m) {
            usage = { cpuUs: (Number(m[1]) + Number(m[2])) * 1e6, maxRssKb: Number(m[3]) };
            usageSource = 'time';
          }
          rmSync(timeFile, { force: true });
        }
        resolve({ label, pid, code, signal, wallMs, stdout, stderr, ...usage, usageSource });
      });
    });
  });
  tracked = {
    label,
    pid,
    child,
    startedAt,
    sample: () => {
      poll();
      return last;
    },
    done,
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return done;
      killTree(pid, 'SIGTERM');
      const timeout = sleep(graceMs).then(() => 'timeout' as const);
      if ((await Promise.race([done, timeout])) === 'timeout') killTree(pid, 'SIGKILL');
      return done;
    },
  };
  live.add(tracked);
  return tracked;
}

let probeDir: string | undefined;
function tmpDirForProbes(): string {
  probeDir ??= process.env.BENCH_TMP ?? '/tmp';
  return probeDir;
}

/** Sets where probe files go (the run's temporary directory). */
export function setProbeDir(dir: string): void {
  probeDir = dir;
}

/** Throws with the child's stderr when it did not exit 0. */
export function expectSuccess(f: Finished): Finished {
  if (f.code !== 0) {
    throw new Error(`${f.label} exited with ${f.code ?? f.signal}:\n${f.stderr.slice(-4000)}${f.stdout.slice(-2000)}`);
  }
  return f;
}

/** The JSON a bench child printed on its `BENCH_RESULT ` line. */
export function benchResult<T>(f: Finished): T {
  const line = f.stdout.split('\n').reverse().find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`${f.label} printed no result:\n${f.stderr.slice(-4000)}${f.stdout.slice(-2000)}`);
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as T;
}

/** The last non-empty stdout line parsed as JSON (the CLI's `--json` summary). */
export function lastJsonLine<T>(f: Finished): T {
  const line = f.stdout.trim().split('\n').reverse().find((l) => l.trim().startsWith('{'));
  if (!line) throw new Error(`${f.label} printed no JSON summary:\n${f.stderr.slice(-4000)}${f.stdout.slice(-2000)}`);
  return JSON.parse(line) as T;
}
