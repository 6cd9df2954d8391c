/**
 * Postfix's smtp-sink on loopback: accepts every message and discards it. The
 * benchmark starts one per suite on a free port and stops it by its PID.
 */
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { onCleanup, procUsage, spawnTracked, type Tracked } from './procs.js';

export const SMTP_SINK = '/usr/sbin/smtp-sink';
export const SMTP_SOURCE = '/usr/sbin/smtp-source';

export interface Sink {
  port: number;
  pid: number;
  /** CPU the sink has used so far, µs (to attribute its share to each sender). */
  cpuUs(): number;
  stop(): Promise<void>;
}

export function postfixToolsPresent(): boolean {
  return existsSync(SMTP_SINK) && existsSync(SMTP_SOURCE);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something on the port answers with a 220 greeting. */
async function greeted(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      const done = (v: boolean) => {
        socket.destroy();
        resolve(v);
      };
      socket.setTimeout(1000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('data', (d) => {
        socket.write('QUIT\r\n');
        done(d.toString().startsWith('220'));
      });
    });
    if (ok) return true;
    await sleep(50);
  }
  return false;
}

/** `smtp-sink -u nobody 127.0.0.1:<port> 1024` (1024: listen backlog). */
export async function startSink(): Promise<Sink> {
  const port = await freePort();
  const tracked: Tracked = spawnTracked('smtp-sink', SMTP_SINK, ['-u', 'nobody', `127.0.0.1:${port}`, '1024'], { keep: 8192 });
  const stop = async () => {
    await tracked.stop(3000);
  };
  onCleanup('smtp-sink', stop);
  if (!(await greeted(port, 5000))) {
    await stop();
    const finished = await tracked.done;
    throw new Error(`smtp-sink did not start on 127.0.0.1:${port}: ${finished.stderr.trim()}`);
  }
  return {
    port,
    pid: tracked.pid,
    cpuUs: () => procUsage(tracked.pid)?.cpuUs ?? 0,
    stop,
  };
}
