import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { OutgoingMessage } from './transport.js';

export interface ComposeAttachment {
  filename: string;
  contentType: string;
  content: string | Buffer;
}

export interface ComposeInput {
  /** "Name <addr>" or a bare addr; becomes the From header (RFC 5322 §3.6.2). */
  from: string;
  /** One recipient, "Name <addr>" or a bare addr; the envelope gets the addr verbatim. */
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** With or without angle brackets; always emitted as `<id-left@id-right>`. */
  messageId: string;
  date: Date;
  /** Extra header fields such as List-Unsubscribe; values are MIME-encoded when not ASCII. */
  headers?: Record<string, string>;
  attachments?: ComposeAttachment[];
  /** MAIL FROM (RFC 5321 §4.1.1.2), e.g. a VERP bounce address; defaults to the From addr. */
  returnPath?: string;
  /** BCP 47 tag of the language the message is written in, sent as Content-Language. */
  locale?: string;
}

const CRLF = '\r\n';

/**
 * Builds the complete RFC 5322 message once, so that what is signed, stored in the
 * outbox and handed to SMTP are the same bytes. Throws only for programmer errors
 * (malformed addresses, ids or header fields), never for content.
 */
export async function composeMessage(input: ComposeInput): Promise<OutgoingMessage> {
  const messageId = normaliseMessageId(input.messageId);
  const composer = new MailComposer({
    from: input.from,
    to: input.to,
    subject: input.subject,
    text: input.text,
    ...(input.html === undefined ? {} : { html: input.html }),
    messageId,
    date: input.date,
    headers: extraHeaders(input),
    attachments: (input.attachments ?? []).map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: a.content,
    })),
    // RFC 5322 §2.1: lines end in CRLF, whatever the template used.
    newline: 'win',
    // Content is data, never a path or URL for the composer to fetch.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const built = await composer.compile().build();
  return {
    envelope: { from: input.returnPath ?? bareAddress(input.from, 'from'), to: [bareAddress(input.to, 'to')] },
    messageId,
    raw: endWithCrlf(built),
  };
}

/** A Message-ID in the RFC 5322 §3.6.4 form `<local@domain>`, domain in A-labels. */
export function makeMessageId(localPart: string, domain: string): string {
  const asciiDomain = domainToASCII(domain);
  if (!isIdPart(localPart) || asciiDomain === '' || !isIdPart(asciiDomain)) {
    throw new TypeError(`cannot build a Message-ID from ${JSON.stringify(localPart)} and ${JSON.stringify(domain)}`);
  }
  return `<${localPart}@${asciiDomain}>`;
}

function normaliseMessageId(value: string): string {
  const inner = value.trim().replace(/^<(.*)>$/s, '$1');
  const at = inner.lastIndexOf('@');
  if (at <= 0 || !isIdPart(inner.slice(0, at)) || !isIdPart(inner.slice(at + 1))) {
    throw new TypeError(`invalid Message-ID ${JSON.stringify(value)}`);
  }
  return `<${inner}>`;
}

/** Printable ASCII without the delimiters that would end or split a msg-id. */
function isIdPart(part: string): boolean {
  return /^[\x21-\x7e]+$/.test(part) && !/[<>@"\\]/.test(part);
}

function extraHeaders(input: ComposeInput): Record<string, string> {
  const headers: Record<string, string> = { ...input.headers };
  // RFC 3282: lets clients and screen readers pick the right language.
  if (input.locale !== undefined) headers['Content-Language'] = input.locale;
  for (const [name, value] of Object.entries(headers)) {
    // RFC 5322 §2.2 / §3.6.8: a field name is printable ASCII without ':', and a raw
    // CR or LF in a value would let data inject header fields.
    if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name) || /[\r\n]/.test(value)) {
      throw new TypeError(`invalid header field ${JSON.stringify(name)}`);
    }
  }
  return headers;
}

/** The addr-spec of a single mailbox, verbatim as written (RFC 5321 §4.1.2 wants no display name). */
function bareAddress(mailbox: string, field: string): string {
  const parsed = addressparser(mailbox, { flatten: true });
  const only = parsed[0];
  if (parsed.length !== 1 || only === undefined || !only.address.includes('@')) {
    throw new TypeError(`${field} must be exactly one mailbox, got ${JSON.stringify(mailbox)}`);
  }
  return only.address;
}

/**
 * RFC 5321 §4.1.1.4: the CRLF before the final "." belongs to the message, so a
 * message that does not end in CRLF would gain one on the way and stop being
 * byte-identical to what was stored or signed.
 */
function endWithCrlf(raw: Buffer): Buffer {
  return raw.subarray(-2).toString('latin1') === CRLF ? raw : Buffer.concat([raw, Buffer.from(CRLF)]);
}
