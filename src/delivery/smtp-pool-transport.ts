/**
 * The high-throughput SMTP transport: a pool of pipelining sessions
 * (smtp-client.ts) fed from one queue. With PIPELINING (RFC 2920) each session
 * carries two transactions at once: while one message awaits its final reply,
 * the next envelope is already on the wire behind it, so a session costs about
 * one round trip per message. The nodemailer transport (smtp-transport.ts)
 * stays the simple option.
 */
import { silentLogger, type Logger } from '../shared/logger.js';
import { SmtpConnection } from './smtp-client.js';
import { assertCommandSafe, parseSmtpUrl, type SmtpTimeouts } from './smtp-wire.js';
import type { OutgoingMessage, SendResult, Transport } from './transport.js';

export { parseSmtpUrl, SMTPUTF8_UNSUPPORTED } from './smtp-wire.js';

export interface PipeliningTransportOptions {
  /**
   * smtp://[user:pass@]host[:port] or smtps://… (implicit TLS, RFC 8314). The
   * query takes nodemailer's names so one URL serves both transports:
   * requireTLS=true, ignoreTLS=true, tls.rejectUnauthorized=false, name=EHLO-name.
   */
  url: string;
  /** Parallel SMTP sessions; 10 by default. */
  connections?: number;
  /** Messages per session before QUIT and a fresh connection; 1000 by default. */
  maxMessagesPerConnection?: number;
  timeouts?: Partial<SmtpTimeouts>;
  logger?: Logger;
}

export interface PipeliningStats {
  /** Sessions connected and usable. */
  open: number;
  /** Messages handed to a session and not yet answered. */
  inFlight: number;
  /** Messages waiting for a free session. */
  queued: number;
}

export interface PipeliningTransport extends Transport {
  stats(): PipeliningStats;
}

const DEFAULT_TIMEOUTS: SmtpTimeouts = { connectMs: 15_000, replyMs: 60_000, dataMs: 120_000 };

interface Job {
  message: OutgoingMessage;
  resolve: (result: SendResult) => void;
}

interface Lane {
  connection: SmtpConnection | undefined;
  /** A connect under way, shared by the lane's pumps. */
  connecting: Promise<SmtpConnection | undefined> | undefined;
  /** pump() loops running on this lane: 1, or 2 when the server pipelines. */
  pumps: number;
  /** Messages handed to the current connection. */
  sent: number;
}

/** Transactions overlapping on one connection: the next envelope rides behind a message (RFC 2920 §3.1). */
const PIPELINE_DEPTH = 2;

export function createPipeliningTransport(options: PipeliningTransportOptions): PipeliningTransport {
  const endpoint = parseSmtpUrl(options.url);
  const clientOptions = { ...endpoint, timeouts: { ...DEFAULT_TIMEOUTS, ...options.timeouts } };
  const size = options.connections ?? 10;
  const maxPerConnection = options.maxMessagesPerConnection ?? 1000;
  const logger = options.logger ?? silentLogger;
  const lanes: Lane[] = [];
  const queue = new JobQueue();
  const pending = new Set<Promise<SendResult>>();
  const pumping = new Set<Promise<void>>();
  const quitting = new Set<Promise<void>>();
  let inFlight = 0;
  let closed = false;

  async function send(message: OutgoingMessage): Promise<SendResult> {
    if (closed) throw new Error('pipelining smtp transport is closed; sends after close() are refused');
    assertMessage(message);
    const result = new Promise<SendResult>((resolve) => queue.push({ message, resolve }));
    pending.add(result);
    void result.then(() => pending.delete(result));
    wake();
    return await result;
  }

  /** Starts an idle lane, or opens a new one while the pool is below its size. */
  function wake(): void {
    const idle = lanes.find((lane) => lane.pumps === 0);
    if (idle) return start(idle);
    if (lanes.length < size) start(lanes[lanes.push({ connection: undefined, connecting: undefined, pumps: 0, sent: 0 }) - 1]!);
  }

  function start(lane: Lane): void {
    lane.pumps += 1;
    const running = pump(lane).finally(() => {
      lane.pumps -= 1;
      pumping.delete(running);
    });
    pumping.add(running);
  }

  /** Sends queued messages on the lane's connection until the queue is empty. */
  async function pump(lane: Lane): Promise<void> {
    while (queue.length > 0) {
      const connection = lane.connection?.alive ? lane.connection : await (lane.connecting ??= connect(lane));
      if (connection === undefined || !connection.alive) continue; // a failed connect already failed one job
      const job = queue.shift();
      if (job === undefined) break;
      inFlight += 1;
      // This pump's transaction takes the connection's turn before a second pump
      // is started, so a QUIT from retire() always queues behind every message
      // already handed to the connection, never in front of one.
      const result = connection.send(job.message).catch((error: unknown) => lostResult(job.message, error));
      if (++lane.sent >= maxPerConnection) retire(lane); // its QUIT queues behind this message
      const depth = connection.has('PIPELINING') ? PIPELINE_DEPTH : 1;
      if (lane.connection === connection && lane.pumps < depth && queue.length > 0) start(lane);
      job.resolve(await result);
      inFlight -= 1;
    }
  }

  /**
   * A failed connect fails the oldest queued message (transient, no reply code),
   * so a relay that is down empties the queue quickly instead of spinning.
   */
  async function connect(lane: Lane): Promise<SmtpConnection | undefined> {
    lane.connection = undefined;
    lane.sent = 0;
    try {
      const connection = await SmtpConnection.open(clientOptions);
      connection.onDead = (error) => logger.info({ err: error.message, host: endpoint.host }, 'smtp connection ended');
      lane.connection = connection;
      logger.debug({ host: endpoint.host, lanes: lanes.length }, 'smtp connection open');
      return connection;
    } catch (error) {
      logger.warn({ err: String(error), host: endpoint.host }, 'smtp connect failed');
      const job = queue.shift();
      job?.resolve(lostResult(job.message, error));
      return undefined;
    } finally {
      lane.connecting = undefined;
    }
  }

  function retire(lane: Lane): void {
    const quit = lane.connection?.quit();
    if (quit) {
      quitting.add(quit);
      void quit.finally(() => quitting.delete(quit));
    }
    lane.connection = undefined;
    lane.sent = 0;
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    // Queued and in-flight messages get their answers, so accepted mail is never
    // reported as unknown (and sent again later).
    await Promise.allSettled([...pending]);
    await Promise.allSettled([...pumping]);
    lanes.forEach(retire);
    await Promise.allSettled([...quitting]);
  }

  function stats(): PipeliningStats {
    return { open: lanes.filter((lane) => lane.connection?.alive).length, inFlight, queued: queue.length };
  }

  return { kind: 'smtp', send, close, stats };
}

/** No reply code: the message was never refused, only not delivered (RFC 5321 §4.2.1 does not apply). */
function lostResult(message: OutgoingMessage, error: unknown): SendResult {
  return { status: 'transient', messageId: message.messageId, response: error instanceof Error ? error.message : String(error) };
}

/** Programmer errors, refused before anything is queued. */
function assertMessage(message: OutgoingMessage): void {
  if (!Buffer.isBuffer(message.raw) || message.envelope.to.length === 0) {
    throw new TypeError('an OutgoingMessage needs a Buffer raw and at least one envelope recipient');
  }
  [message.envelope.from, ...message.envelope.to].forEach(assertCommandSafe);
}

/** A FIFO with O(1) shift, for queues of many thousands of messages. */
class JobQueue {
  private items: (Job | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(job: Job): void {
    this.items.push(job);
  }

  shift(): Job | undefined {
    if (this.head >= this.items.length) return undefined;
    const job = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return job;
  }
}
