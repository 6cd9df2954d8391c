import nodemailer from 'nodemailer';
import type { NodemailerError } from 'nodemailer/lib/errors';
import type { ExternalLogger } from 'nodemailer/lib/shared';
import type { OutgoingMessage, SendResult, Transport } from './transport.js';

export interface SmtpTransportOptions {
  /** smtp://, smtps://, with optional user:pass@ and nodemailer query options. */
  url: string;
  /** Reuse connections across messages; on by default because campaigns send in bulk. */
  pool?: boolean;
  /** Upper bound on parallel SMTP sessions when pooling (nodemailer's default is 5). */
  maxConnections?: number;
  /** A bunyan-style logger (pino fits); nothing is logged without one. */
  logger?: ExternalLogger;
}

/** What nodemailer's sendMail resolves with, as far as we read it. */
interface SentInfo {
  response?: string | undefined;
  accepted?: unknown[] | undefined;
  rejected?: unknown[] | undefined;
}

/**
 * Without a reply, these come from nodemailer refusing the envelope or the message
 * itself (an unusable address, an oversized message): retrying cannot help. Every
 * other reply-less failure (lost, refused or timed-out connection, TLS, DNS, the relay
 * refusing our credentials) leaves the message sendable, so it is transient.
 */
const PERMANENT_ERROR_CODES = new Set(['EENVELOPE', 'EMESSAGE', 'EMAXRECIPIENTS', 'EREQUIRETLS']);

/**
 * Sends prebuilt messages over SMTP (RFC 5321). The message bytes go out as given
 * (`raw`), with the envelope given, so nothing is recomposed or re-signed here.
 */
export function createSmtpTransport(options: SmtpTransportOptions): Transport {
  const mailer = buildMailer(options);
  const inFlight = new Set<Promise<SendResult>>();
  let closed = false;

  async function send(message: OutgoingMessage): Promise<SendResult> {
    if (closed) throw new Error('smtp transport is closed; sends after close() are refused');
    assertMessage(message);
    const attempt = deliver(mailer, message);
    inFlight.add(attempt);
    try {
      return await attempt;
    } finally {
      inFlight.delete(attempt);
    }
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    // Let messages already handed to the server get their reply, so a graceful
    // shutdown does not turn accepted mail into "unknown" (and later duplicates).
    await Promise.allSettled([...inFlight]);
    mailer.close();
  }

  return { kind: 'smtp', send, close };
}

function buildMailer(options: SmtpTransportOptions) {
  const logger = options.logger ?? false;
  if (options.pool === false) return nodemailer.createTransport({ url: options.url, logger });
  return nodemailer.createTransport({
    url: options.url,
    pool: true,
    maxConnections: options.maxConnections ?? 5,
    logger,
  });
}

type Mailer = ReturnType<typeof buildMailer>;

async function deliver(mailer: Mailer, message: OutgoingMessage): Promise<SendResult> {
  try {
    const info: SentInfo = await mailer.sendMail({
      envelope: { from: message.envelope.from, to: message.envelope.to },
      raw: message.raw,
    });
    return sentResult(message.messageId, info);
  } catch (err) {
    return failureResult(message.messageId, err);
  }
}

/**
 * With several recipients the server may accept some and refuse others; the message
 * did go out, and retrying would duplicate it for the accepted ones, so it counts as
 * sent and the refusals are kept in the response text.
 */
function sentResult(messageId: string, info: SentInfo): SendResult {
  const rejected = info.rejected ?? [];
  const response = info.response ?? '250';
  return {
    status: 'sent',
    messageId,
    response: rejected.length === 0 ? response : `${response} (rejected: ${rejected.join(', ')})`,
  };
}

/** Maps a nodemailer failure onto RFC 5321 §4.2.1 reply classes. */
export function failureResult(messageId: string, err: unknown): SendResult {
  const error = (err ?? {}) as NodemailerError;
  const code = typeof error.responseCode === 'number' ? error.responseCode : undefined;
  const response = describe(error);
  if (code !== undefined) {
    const status = isPermanentReply(code) ? 'permanent' : 'transient';
    return { status, messageId, response, code };
  }
  const status = PERMANENT_ERROR_CODES.has(error.code ?? '') ? 'permanent' : 'transient';
  return { status, messageId, response };
}

/**
 * 5yz is a permanent negative completion, 4yz a transient one (RFC 5321 §4.2.1).
 * 503 "bad sequence of commands" is a fault in the session, not a verdict on the
 * message, so the same message can go through on a fresh connection.
 */
function isPermanentReply(code: number): boolean {
  return code >= 500 && code <= 599 && code !== 503;
}

function describe(error: NodemailerError): string {
  if (typeof error.response === 'string' && error.response !== '') return error.response;
  // originalCode keeps the socket's reason, e.g. ESOCKET/ECONNREFUSED.
  const codes = [...new Set([error.code, error.originalCode].filter((c) => typeof c === 'string'))];
  return codes.length > 0 ? `${codes.join('/')}: ${error.message}` : String(error.message ?? error);
}

function assertMessage(message: OutgoingMessage): void {
  if (!Buffer.isBuffer(message.raw) || message.envelope.to.length === 0) {
    throw new TypeError('an OutgoingMessage needs a Buffer raw and at least one envelope recipient');
  }
}
