/**
 * The byte-level pieces of SMTP that the pipelining client needs, kept free of
 * sockets so they can be read and tested on their own: the reply parser
 * (RFC 5321 §4.2), dot-stuffing (§4.5.2), reply classes (§4.2.1), envelope
 * planning for SMTPUTF8 (RFC 6531), the MAIL parameters, AUTH (RFC 4954) and
 * the smtp:// / smtps:// URL (RFC 8314).
 */
import { isAscii } from 'node:buffer';
import { hostname } from 'node:os';
import { domainToASCII } from 'node:url';
import type { Envelope, SendResult } from './transport.js';

export interface SmtpTimeouts {
  /** TCP/TLS connect plus the 220 greeting. */
  connectMs: number;
  /** Each command reply. */
  replyMs: number;
  /** The reply after the end-of-data mark (RFC 5321 §4.5.3.2.6 allows minutes). */
  dataMs: number;
}

export interface SmtpEndpoint {
  host: string;
  port: number;
  /** Implicit TLS from the first byte (smtps://, RFC 8314 §3.3). */
  secure: boolean;
  /** STARTTLS (RFC 3207): upgrade when advertised, insist on it, or stay in clear text. */
  startTls: 'opportunistic' | 'required' | 'never';
  auth?: { user: string; pass: string };
  rejectUnauthorized: boolean;
  /** The EHLO argument (RFC 5321 §4.1.1.1). */
  clientName: string;
}

/** Reads an smtp:// or smtps:// URL (RFC 8314 §3.3 port 465 for implicit TLS, 587 otherwise). */
export function parseSmtpUrl(url: string): SmtpEndpoint {
  const parsed = new URL(url);
  if (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') throw new TypeError(`not an SMTP URL: ${parsed.protocol}`);
  const query = parsed.searchParams;
  const secure = parsed.protocol === 'smtps:' || query.get('secure') === 'true';
  const user = decodeURIComponent(parsed.username);
  const name = query.get('name') ?? hostname();
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? (secure ? 465 : 587) : Number(parsed.port),
    secure,
    // Like nodemailer: STARTTLS whenever offered, unless the URL says otherwise.
    startTls: query.get('requireTLS') === 'true' ? 'required' : query.get('ignoreTLS') === 'true' ? 'never' : 'opportunistic',
    ...(user === '' ? {} : { auth: { user, pass: decodeURIComponent(parsed.password) } }),
    rejectUnauthorized: query.get('tls.rejectUnauthorized') !== 'false',
    // RFC 5321 §4.1.1.1 wants a FQDN or an address literal.
    clientName: name.includes('.') ? name : '[127.0.0.1]',
  };
}

export interface Reply {
  code: number;
  /** Every line of the reply, code included, joined with "\n". */
  text: string;
  /** The text after "NNN-" / "NNN " of each line; EHLO keywords live here. */
  lines: string[];
}

/** A reply line longer than this is not SMTP (§4.5.3.1.5 allows 512 octets). */
const MAX_LINE = 64 * 1024;
const REPLY_LINE = /^[1-5]\d\d(?:[ -]|$)/;

/**
 * Splits the server's byte stream into replies. A reply is one or more lines
 * "NNN-text" ending with a line "NNN text" or "NNN" (§4.2); the server may send
 * several replies in one segment (pipelining) or one line over many.
 */
export class ReplyParser {
  private carry: Buffer | undefined;
  private lines: string[] = [];

  constructor(private readonly onReply: (reply: Reply) => void) {}

  /** Bytes received but not yet part of a whole reply. */
  get buffered(): boolean {
    return this.carry !== undefined || this.lines.length > 0;
  }

  /** Throws on bytes that are not an SMTP reply; the caller drops the connection. */
  feed(chunk: Buffer): void {
    const data = this.carry === undefined ? chunk : Buffer.concat([this.carry, chunk]);
    let start = 0;
    for (let lf = data.indexOf(0x0a); lf !== -1; lf = data.indexOf(0x0a, start)) {
      const end = lf > start && data[lf - 1] === 0x0d ? lf - 1 : lf;
      this.line(data.toString('utf8', start, end));
      start = lf + 1;
    }
    this.carry = start < data.length ? data.subarray(start) : undefined;
    if (this.carry !== undefined && this.carry.length > MAX_LINE) throw new Error('SMTP reply line too long');
  }

  private line(line: string): void {
    if (!REPLY_LINE.test(line)) throw new Error(`not an SMTP reply: ${JSON.stringify(line.slice(0, 80))}`);
    this.lines.push(line);
    if (line[3] === '-') return;
    const lines = this.lines;
    this.lines = [];
    this.onReply({ code: Number(line.slice(0, 3)), text: lines.join('\n'), lines: lines.map((l) => l.slice(4)) });
  }
}

const DOT = Buffer.from('.');
const LF_DOT = Buffer.from('\n.');
/** The end-of-data mark on its own line (RFC 5321 §4.1.1.4). */
export const DOT_CRLF = Buffer.from('.\r\n');
const CRLF_DOT_CRLF = Buffer.from('\r\n.\r\n');

/**
 * The DATA payload as slices of `raw` (no copy of the message): every line that
 * starts with "." gets one more "." (RFC 5321 §4.5.2), then the end-of-data
 * mark CRLF "." CRLF. A line start is taken to be any LF, not only CRLF, so a
 * stray bare LF followed by ".\r\n" cannot end the data early at a lenient
 * server (SMTP smuggling); for CRLF-only messages both readings agree.
 */
export function dotStuff(raw: Buffer): Buffer[] {
  const out: Buffer[] = raw[0] === 0x2e ? [DOT] : [];
  let start = 0;
  for (let at = raw.indexOf(LF_DOT); at !== -1; at = raw.indexOf(LF_DOT, at + 2)) {
    out.push(raw.subarray(start, at + 1), DOT);
    start = at + 1; // the line's own "." opens the next slice
  }
  out.push(start === 0 ? raw : raw.subarray(start));
  const endsWithCrlf = raw.length >= 2 && raw[raw.length - 2] === 0x0d && raw[raw.length - 1] === 0x0a;
  // §4.1.1.4: the mark follows the last line's CRLF; a message without one gets it added.
  out.push(endsWithCrlf ? DOT_CRLF : CRLF_DOT_CRLF);
  return out;
}

/** The SendResult status of a reply code: RFC 5321 §4.2.1 classes. */
export function replyStatus(code: number): SendResult['status'] {
  if (code >= 200 && code < 300) return 'sent';
  // 503 "bad sequence of commands" is a fault of this session, not a verdict on
  // the message: the same message can go through on a fresh connection.
  if (code >= 500 && code < 600 && code !== 503) return 'permanent';
  return 'transient';
}

/** What ends the envelope phase early: MAIL refused, every RCPT refused, or DATA refused. */
export function envelopeRefusal(mail: Reply, rcpts: Reply[], data: Reply | undefined): Reply | undefined {
  if (replyStatus(mail.code) !== 'sent') return mail;
  if (rcpts.some((r) => r.code === 421)) return rcpts.find((r) => r.code === 421);
  if (!rcpts.some((r) => replyStatus(r.code) === 'sent')) {
    // A recipient that may succeed later makes the whole message worth retrying.
    return rcpts.find((r) => replyStatus(r.code) === 'transient') ?? rcpts[0] ?? mail;
  }
  if (data?.code === 354) return undefined;
  return data ?? mail;
}

/** A refusal as a SendResult, its code kept. */
export function failure(messageId: string, reply: Reply): SendResult {
  const status = replyStatus(reply.code);
  return { status: status === 'sent' ? 'transient' : status, messageId, response: reply.text, code: reply.code };
}

/** A lost, timed-out or unusable session; nothing here is a verdict on a message. */
export class SmtpSessionError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
  }
}

/**
 * The response of a message refused before sending (ADR-05): a non-ASCII local
 * part cannot cross a hop that does not advertise SMTPUTF8, and there is no
 * standard downgrade. It is 'permanent' because retrying the same relay cannot
 * help (transient would only burn the retry budget), and it has no reply code
 * because no server refused the mailbox: suppression must not count it as a
 * hard bounce. Code that feeds suppression from permanent failures keys on
 * this exact text (the worker's onPermanent hook sees only the response).
 */
export const SMTPUTF8_UNSUPPORTED = 'smtputf8_unsupported';

export type EnvelopePlan =
  | { ok: true; from: string; to: string[]; smtpUtf8: boolean }
  | { ok: false };

/**
 * How the envelope goes on the wire (ADR-05). ASCII addresses go as given
 * (ADR-03: sent verbatim). With non-ASCII addresses and a server that
 * advertises SMTPUTF8, they go as given with the SMTPUTF8 parameter (RFC 6531
 * §3.4). Without it, an IDN domain can still go as its A-label, which names
 * the same domain (RFC 5890 §2.3.2.1, ADR-04); a non-ASCII local part cannot
 * be sent at all, since there is no standard downgrade (RFC 6530 §10).
 */
export function planEnvelope(envelope: Envelope, serverSmtpUtf8: boolean): EnvelopePlan {
  const addresses = [envelope.from, ...envelope.to];
  for (const address of addresses) assertCommandSafe(address);
  if (addresses.every(isAsciiString)) return { ok: true, from: envelope.from, to: envelope.to, smtpUtf8: false };
  if (serverSmtpUtf8) return { ok: true, from: envelope.from, to: envelope.to, smtpUtf8: true };
  const ascii = addresses.map(asciiForm);
  if (ascii.some((a) => a === undefined)) return { ok: false };
  const [from, ...to] = ascii as string[];
  return { ok: true, from: from!, to, smtpUtf8: false };
}

function asciiForm(address: string): string | undefined {
  if (isAsciiString(address)) return address;
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  if (at < 0 || !isAsciiString(local)) return undefined;
  const domain = domainToASCII(address.slice(at + 1));
  return domain === '' ? undefined : `${local}@${domain}`;
}

function isAsciiString(text: string): boolean {
  return /^[\x00-\x7f]*$/.test(text);
}

/**
 * The MAIL command with the parameters the server advertised: SIZE (RFC 1870 §4),
 * BODY=8BITMIME for a message with any octet above 127 (RFC 6152), and SMTPUTF8
 * when the envelope needs it (RFC 6531 §3.4).
 */
export function mailFrom(plan: { from: string; smtpUtf8: boolean }, raw: Buffer, has: (keyword: string) => boolean): string {
  let command = `MAIL FROM:<${plan.from}>`;
  if (has('SIZE')) command += ` SIZE=${raw.length}`;
  if (has('8BITMIME') && !isAscii(raw)) command += ' BODY=8BITMIME';
  return plan.smtpUtf8 ? `${command} SMTPUTF8` : command;
}

/** Addresses are validated upstream; CR, LF or angle brackets here would inject commands. */
export function assertCommandSafe(address: string): void {
  if (/[\r\n<>]/.test(address)) throw new TypeError(`unsafe envelope address: ${JSON.stringify(address)}`);
}

/** Parses the EHLO reply's keywords (RFC 5321 §4.1.1.1): "SIZE 1000" → SIZE → "1000". */
export function parseExtensions(reply: Reply): Map<string, string> {
  const extensions = new Map<string, string>();
  for (const line of reply.lines.slice(1)) {
    const [keyword = '', ...params] = line.trim().split(/\s+/);
    if (keyword !== '') extensions.set(keyword.toUpperCase(), params.join(' '));
  }
  return extensions;
}

/**
 * AUTH PLAIN (RFC 4616) when offered, else AUTH LOGIN, both per RFC 4954;
 * `offered` is the AUTH keyword's parameters from EHLO.
 */
export async function authenticate(
  command: (line: string) => Promise<Reply>,
  offered: string | undefined,
  { user, pass }: { user: string; pass: string },
): Promise<void> {
  const methods = (offered ?? '').toUpperCase().split(' ');
  const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
  let reply: Reply;
  if (methods.includes('PLAIN')) {
    reply = await command(`AUTH PLAIN ${b64(`\0${user}\0${pass}`)}`);
  } else if (methods.includes('LOGIN')) {
    reply = await command('AUTH LOGIN');
    if (reply.code === 334) reply = await command(b64(user));
    if (reply.code === 334) reply = await command(b64(pass));
  } else {
    throw new SmtpSessionError('EAUTH', 'the server offers neither AUTH PLAIN nor AUTH LOGIN');
  }
  if (reply.code !== 235) throw new SmtpSessionError('EAUTH', `AUTH refused: ${reply.text}`);
}
