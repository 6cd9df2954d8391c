/**
 * The real server as a child process, as `npm start` runs it:
 * `node bin/assent.mjs serve` in the repository root, with a temporary data
 * directory, a free port and a public URL on 127.0.0.1. The outbox transport
 * writes every mail to <data dir>/outbox, where tests read it.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (where bin/assent.mjs lives). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(repoRoot, 'bin', 'assent.mjs');

export interface ServerProcess {
  /** http://127.0.0.1:<port> (or the publicHost given), also the server's ASSENT_PUBLIC_URL. */
  url: string;
  port: number;
  dataDir: string;
  outboxDir: string;
  /** The ASSENT_* environment the server runs with; pass it to the CLI to reach the same data. */
  env: Record<string, string>;
  /** Everything the child wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Full path of the n-th (1-based) .eml in the outbox, oldest first, once it exists. */
  waitForMail(n: number, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then waits for the exit; rejects unless the exit code is 0. */
  stop(timeoutMs?: number): Promise<void>;
  /** Kills the child if it still runs (no assertion) and removes the data directory. */
  dispose(): Promise<void>;
}

export interface StartOptions {
  /** Extra environment, e.g. ASSENT_DATABASE_URL for PostgreSQL (the data dir, host, port and public URL are the helper's). */
  env?: Record<string, string>;
  /** How long to wait for GET /healthz to answer 200. */
  readyTimeoutMs?: number;
  /**
   * The host name in ASSENT_PUBLIC_URL (default 127.0.0.1). The server still
   * listens on 127.0.0.1; a browser reaches another name through
   * --host-resolver-rules. `url` is the public URL.
   */
  publicHost?: string;
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not read a free port'))));
    });
  });
}

/** The parent's environment without any ASSENT_* keys, so the developer's settings cannot leak in. */
function baseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('ASSENT_')) out[key] = value;
  }
  return out;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'assent-e2e-'));
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  // Another process may take the port between freePort() and the child's
  // listen(); that shows as EADDRINUSE and is retried with a new port.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(dataDir, port, options, readyTimeoutMs);
    } catch (error) {
      if (attempt < 3 && error instanceof Error && /EADDRINUSE/.test(error.message)) continue;
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    }
  }
}

async function launch(dataDir: string, port: number, options: StartOptions, readyTimeoutMs: number): Promise<ServerProcess> {
  const url = `http://${options.publicHost ?? '127.0.0.1'}:${port}`;
  const local = `http://127.0.0.1:${port}`;
  // The keys the helper depends on (where it looks, which port) win over options.env.
  const env: Record<string, string> = {
    ASSENT_LOG_LEVEL: 'info',
    ...options.env,
    ASSENT_DATA_DIR: dataDir,
    ASSENT_HOST: '127.0.0.1',
    ASSENT_PORT: String(port),
    ASSENT_PUBLIC_URL: url,
  };
  const outboxDir = join(dataDir, 'outbox');
  let out = '';
  let err = '';
  const child: ChildProcess = spawn(process.execPath, [cli, 'serve'], {
    cwd: repoRoot,
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  // A test process that dies without dispose() (a crash, an uncaught error)
  // must not leave a server running.
  const orphanGuard = () => void child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('exit', orphanGuard);
      resolve((exit = { code, signal }));
    });
    child.once('error', (error) => {
      err += `\nspawn failed: ${String(error)}`;
      resolve((exit = { code: null, signal: null }));
    });
  });
  const describe = () =>
    `server on ${url} (data dir ${dataDir})\n--- stderr ---\n${err.trim() || '(empty)'}\n--- stdout (last 4 KB) ---\n${out.slice(-4096).trim() || '(empty)'}`;

  const deadline = Date.now() + readyTimeoutMs;
  let lastProblem = 'no answer yet';
  for (;;) {
    if (exit) throw new Error(`the server exited before it was ready (code ${exit.code}, signal ${exit.signal})\n${describe()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`GET /healthz did not answer 200 within ${readyTimeoutMs} ms (last: ${lastProblem})\n${describe()}`);
    }
    try {
      const res = await fetch(`${local}/healthz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
      lastProblem = `HTTP ${res.status}`;
    } catch (error) {
      lastProblem = String((error as { cause?: unknown }).cause ?? error);
    }
    await Promise.race([exited, delay(100)]);
  }

  let stopping: Promise<void> | undefined;
  const stop = (timeoutMs = 15_000) =>
    (stopping ??= (async () => {
      if (!exit) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        exited,
        new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (result === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`the server did not exit within ${timeoutMs} ms of SIGTERM\n${describe()}`);
      }
      if (result.code !== 0) {
        throw new Error(`the server exited with code ${result.code} (signal ${result.signal}) after SIGTERM, expected 0\n${describe()}`);
      }
    })());

  return {
    url,
    port,
    dataDir,
    outboxDir,
    env,
    stdout: () => out,
    stderr: () => err,
    waitForMail: async (n, timeoutMs = 15_000) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const mails = listEml(outboxDir);
        if (mails.length >= n) return mails[n - 1]!;
        if (Date.now() > until) {
          throw new Error(`expected at least ${n} .eml file(s) in ${outboxDir} within ${timeoutMs} ms, found ${mails.length}\n${describe()}`);
        }
        await delay(50);
      }
    },
    stop,
    dispose: async () => {
      if (!exit) {
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Finished messages only: the outbox writes `.name.tmp` first and renames it. */
function listEml(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .filter((n) => n.endsWith('.eml') && !n.startsWith('.'))
    .sort()
    .map((n) => join(dir, n));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/assent.mjs <args>` in the repository root with the given ASSENT_* environment. */
export async function runAssent(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { cwd: repoRoot, env: { ...baseEnv(), ...env }, timeout: timeoutMs, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
