import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../shared/clock.js';
import type { OutgoingMessage, SendResult, Transport } from './transport.js';

export interface OutboxTransportOptions {
  /** Where .eml files go; created with mode 0700 because they hold personal data. */
  dir: string;
  clock: Clock;
}

const EML = '.eml';

/**
 * The development transport: every message becomes one .eml file that any mail
 * client opens. The file is exactly `raw` (RFC 5322 with CRLF), nothing prepended,
 * so the outbox shows what SMTP would have carried.
 */
export function createOutboxTransport(options: OutboxTransportOptions): Transport {
  let closed = false;
  let ready: Promise<unknown> | undefined;

  async function send(message: OutgoingMessage): Promise<SendResult> {
    if (closed) throw new Error('outbox transport is closed; sends after close() are refused');
    if (!Buffer.isBuffer(message.raw)) throw new TypeError('OutgoingMessage.raw must be a Buffer');
    const name = outboxFileName(options.clock.now());
    try {
      // Concurrent first sends share one mkdir; a failed one is retried by the next send.
      ready ??= mkdir(options.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
        ready = undefined;
        throw err;
      });
      await ready;
      await writeAtomically(options.dir, name, message.raw);
      return { status: 'sent', messageId: message.messageId, response: `250 written to outbox as ${name}` };
    } catch (err) {
      // A full or unwritable disk is fixed by an operator; the message stays sendable.
      return { status: 'transient', messageId: message.messageId, response: `outbox write failed: ${String(err)}` };
    }
  }

  async function close(): Promise<void> {
    closed = true;
  }

  return { kind: 'outbox', send, close };
}

/** `<UTC stamp>-<random>.eml`; the stamp sorts lexically in time order. */
export function outboxFileName(at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, ''); // 20261129T142733.123Z
  return `${stamp}-${randomBytes(6).toString('hex')}${EML}`;
}

/**
 * Readers (the admin UI, the CLI, a mail client) must never see half a message:
 * write a hidden temp file in the same directory, flush it, then rename, which is
 * atomic within one file system (POSIX rename(2)).
 */
async function writeAtomically(dir: string, name: string, bytes: Buffer): Promise<void> {
  const finalPath = join(dir, name);
  const tempPath = join(dir, `.${name}.tmp`);
  const handle = await open(tempPath, 'wx', 0o600);
  try {
    await handle.writeFile(bytes);
    // "sent" must mean the message survives a crash, as a 250 from a relay does.
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tempPath, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tempPath, finalPath);
}

/** Full paths of the messages in the outbox, oldest first; [] when there is no outbox yet. */
export async function listOutbox(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => n.endsWith(EML) && !n.startsWith('.'))
    .sort()
    .map((n) => join(dir, n));
}
