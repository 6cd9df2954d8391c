/**
 * A per-campaign message builder. Everything that is the same for every
 * recipient (From, List-Id, MIME skeleton, encoded subject) is built once in
 * `prepareCampaignMessage`; `build` only encodes the personalised parts and
 * joins strings, so a campaign does not pay nodemailer's composer (~1 ms) per
 * message (issue 3, "Targets").
 *
 * Every message carries what RFC 8058 one-click needs (EML-01..03): one HTTPS
 * List-Unsubscribe URI (plus an optional mailto:), List-Unsubscribe-Post, and,
 * when a signer is given, a DKIM signature over both.
 */
import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser';
import { joinSplit, type SplitText } from '../templates/index.js';
import type { DkimSigner } from './dkim.js';
import type { OutgoingMessage } from './transport.js';

export interface CampaignMessageOptions {
  /** "Name <addr>" or a bare addr (RFC 5322 §3.6.2). */
  from: string;
  /** Used when `build` is given no subject of its own. */
  subject?: string;
  /** RFC 2919: `id` is `list-label.namespace`, e.g. `newsletter.lists.example.com`. */
  listId: { name: string; id: string };
  /** Right-hand side of every Message-ID. */
  domain: string;
  /** A mailbox for the RFC 2369 mailto: form, e.g. `unsubscribe@example.com`. */
  unsubscribeMailto?: string;
  /** MAIL FROM, or a function for VERP (one bounce address per recipient). */
  returnPath: string | ((recipient: { campaignId: string; contactId: string; to: string }) => string);
  dkim?: DkimSigner;
}

export interface CampaignRecipient {
  /** The address as the person entered it, used verbatim. */
  to: string;
  toName?: string;
  contactId: string;
  campaignId: string;
  subject?: string;
  /** A string, or split at the personal values (templates/recipient-renderer.ts) so the rest is encoded once per campaign. */
  html: string | SplitText;
  text: string | SplitText;
  /** `https://…/u/TOKEN`; the token also goes into the mailto: form. */
  unsubscribeUrl: string;
  messageDate: Date;
}

export interface PreparedCampaignMessage {
  build(recipient: CampaignRecipient): OutgoingMessage;
  /** The same message; a DKIM signature is computed off the event loop (see DkimSigner.signAsync). */
  buildAsync(recipient: CampaignRecipient): Promise<OutgoingMessage>;
}

const CRLF = '\r\n';
const ATEXT_PHRASE = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*$/;
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
/** Dot-atom addresses only, as contacts/address.ts accepts; UTF-8 allowed (RFC 6532). */
const MAILBOX = /^[^\x00-\x20\x7f<>()[\],;:"\\@]+@[^\x00-\x20\x7f<>()[\],;:"\\@]+$/;
const HTTPS_URI = /^https:\/\/[^\x00-\x20\x7f<>,"\\]+$/;
/** Plain http is accepted only on a loopback host: the quick start on one machine, never mail to the world. */
const LOOPBACK_HTTP_URI = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?\/[^\x00-\x20\x7f<>,"\\]+$/;
const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function prepareCampaignMessage(options: CampaignMessageOptions): PreparedCampaignMessage {
  const domain = domainToASCII(options.domain);
  if (domain === '' || !DOT_ATOM.test(domain)) throw new TypeError(`invalid Message-ID domain ${options.domain}`);
  const mailto = options.unsubscribeMailto;
  if (mailto !== undefined && !/^[A-Za-z0-9.!$&'*+/=^_`{|}~-]+@[A-Za-z0-9.-]+$/.test(mailto)) {
    throw new TypeError(`invalid unsubscribe mailbox ${mailto}`);
  }
  const returnPath = options.returnPath;
  if (typeof returnPath === 'string' && !MAILBOX.test(returnPath)) throw new TypeError(`invalid return path ${returnPath}`);
  const defaultSubject = options.subject === undefined ? undefined : headerField('Subject', encodePhraseText(options.subject));
  const skeleton = campaignSkeleton(options);

  const unsignedMessage = (r: CampaignRecipient): OutgoingMessage => {
      if (!MAILBOX.test(r.to)) throw new TypeError(`invalid recipient address ${JSON.stringify(r.to)}`);
      const subject =
        r.subject === undefined || r.subject === options.subject ? defaultSubject : headerField('Subject', encodePhraseText(r.subject));
      if (subject === undefined) throw new TypeError('campaign message needs a subject');
      const messageId = campaignMessageId(r.campaignId, r.contactId, domain);
      const to = r.toName === undefined || r.toName === '' ? r.to : `${displayName(r.toName)} <${r.to}>`;
      const text = encodeBody(r.text);
      const html = encodeBody(r.html);
      const head =
        skeleton.from + headerField('To', to) + subject + `Date: ${rfc5322Date(r.messageDate)}${CRLF}` +
        `Message-ID: ${messageId}${CRLF}` + listUnsubscribeHeader(r.unsubscribeUrl, mailto) + skeleton.tail;
      const body =
        skeleton.text[text.encoding] + text.content + CRLF + skeleton.html[html.encoding] + html.content + CRLF + skeleton.close;
      const unsigned = Buffer.from(head + body, 'utf8');
      const recipient = { campaignId: r.campaignId, contactId: r.contactId, to: r.to };
      return { envelope: { from: typeof returnPath === 'string' ? returnPath : returnPath(recipient), to: [r.to] }, messageId, raw: unsigned };
  };
  const dkim = options.dkim;
  // Signed last: nothing may add or rewrite a header after this (EML-03).
  return {
    build(r: CampaignRecipient): OutgoingMessage {
      const message = unsignedMessage(r);
      return dkim === undefined ? message : { ...message, raw: dkim.sign(message.raw) };
    },
    async buildAsync(r: CampaignRecipient): Promise<OutgoingMessage> {
      const message = unsignedMessage(r);
      return dkim === undefined ? message : { ...message, raw: await dkim.signAsync(message.raw) };
    },
  };
}

type PartHeads = Record<'quoted-printable' | 'base64', string>;

/** The bytes every recipient's message shares, built once per campaign. */
function campaignSkeleton(options: CampaignMessageOptions): { from: string; tail: string; text: PartHeads; html: PartHeads; close: string } {
  // "=_" cannot occur in quoted-printable or base64 output (RFC 2045 §6.7, last paragraph),
  // so this boundary never collides with content and needs no per-message check.
  const boundary = `=_assent_${createHash('sha256').update(`${options.from}\0${options.listId.id}`).digest('hex').slice(0, 24)}`;
  const part = (type: string, encoding: string) =>
    `--${boundary}${CRLF}Content-Type: ${type}; charset=utf-8${CRLF}Content-Transfer-Encoding: ${encoding}${CRLF}${CRLF}`;
  return {
    from: headerField('From', mailbox(options.from, 'from')),
    tail:
      `MIME-Version: 1.0${CRLF}${listIdHeader(options.listId)}` +
      `List-Unsubscribe-Post: List-Unsubscribe=One-Click${CRLF}` +
      `Content-Type: multipart/alternative;${CRLF} boundary="${boundary}"${CRLF}${CRLF}`,
    text: { 'quoted-printable': part('text/plain', 'quoted-printable'), base64: part('text/plain', 'base64') },
    html: { 'quoted-printable': part('text/html', 'quoted-printable'), base64: part('text/html', 'base64') },
    close: `--${boundary}--${CRLF}`,
  };
}

/**
 * Unique per campaign x contact and derivable again from a bounce or ARF
 * report (EML-16, EML-19) without a lookup. Ids that are not plain tokens
 * are hashed instead, so the id-left stays a dot-atom (RFC 5322 §3.6.4).
 */
export function campaignMessageId(campaignId: string, contactId: string, domain: string): string {
  if (SAFE_ID.test(campaignId) && SAFE_ID.test(contactId)) return `<c.${campaignId}.${contactId}@${domain}>`;
  return `<h.${createHash('sha256').update(`${campaignId}\0${contactId}`).digest('hex').slice(0, 40)}@${domain}>`;
}

/** The inverse of the readable form of `campaignMessageId`; null for anything else. */
export function parseCampaignMessageId(messageId: string): { campaignId: string; contactId: string } | null {
  const match = /^<?c\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,64})@[^>]+>?$/.exec(messageId.trim());
  return match === null ? null : { campaignId: match[1] as string, contactId: match[2] as string };
}

/** RFC 2369 §2-3 and RFC 8058 §3.1: one HTTPS URI first, the mailto: form after it. */
function listUnsubscribeHeader(url: string, mailto: string | undefined): string {
  if (!(HTTPS_URI.test(url) || LOOPBACK_HTTP_URI.test(url)) || url.length > 900) {
    throw new TypeError(`unsubscribe URL must be https: ${JSON.stringify(url)}`);
  }
  if (mailto === undefined) return `List-Unsubscribe: <${url}>${CRLF}`;
  // RFC 6068 §2: the subject is percent-encoded; it names the token so the
  // unsubscribe mailbox can act on it (a token is too long for a local part).
  const token = encodeURIComponent(url.slice(url.lastIndexOf('/') + 1));
  return `List-Unsubscribe: <${url}>,${CRLF} <mailto:${mailto}?subject=unsubscribe%20${token}>${CRLF}`;
}

/** RFC 2919 §2: `List-Id: [phrase] <list-label.namespace>`, at most 255 octets inside the brackets. */
function listIdHeader(listId: { name: string; id: string }): string {
  if (!DOT_ATOM.test(listId.id) || !listId.id.includes('.') || listId.id.length > 255) {
    throw new TypeError(`invalid List-Id ${JSON.stringify(listId.id)} (RFC 2919 §2)`);
  }
  return listId.name === '' ? `List-Id: <${listId.id}>${CRLF}` : headerField('List-Id', `${displayName(listId.name)} <${listId.id}>`);
}

function mailbox(value: string, field: string): string {
  const parsed = addressparser(value, { flatten: true });
  const only = parsed[0];
  if (parsed.length !== 1 || only === undefined || !MAILBOX.test(only.address)) {
    throw new TypeError(`${field} must be exactly one mailbox, got ${JSON.stringify(value)}`);
  }
  return only.name === '' ? only.address : `${displayName(only.name)} <${only.address}>`;
}

/** RFC 5322 §3.2.5 phrase: atoms as they are, other ASCII quoted, anything else RFC 2047 words. */
function displayName(name: string): string {
  if (ATEXT_PHRASE.test(name) && name.trim() === name && !name.includes('  ')) return name;
  if (/^[\x20-\x7e]*$/.test(name) && !name.includes('=?')) return `"${name.replace(/(["\\])/g, '\\$1')}"`;
  return encodedWords(name);
}

/** Unstructured text (Subject): printable ASCII stays readable, anything else is encoded. */
function encodePhraseText(text: string): string {
  // Encoded words also fold a long unbroken run that plain folding could not.
  return /^[\x20-\x7e]*$/.test(text) && !text.includes('=?') && !/[^ ]{200}/.test(text) ? text : encodedWords(text);
}

/**
 * RFC 2047 §2 and §5(3): B-encoded UTF-8 words of whole characters, at most
 * 39 bytes -> 52 base64 chars + 12 of framing, so "Subject: " + a word fits 78.
 */
function encodedWords(text: string): string {
  const words: string[] = [];
  let chunk = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > 39) {
      words.push(chunk);
      chunk = '';
      bytes = 0;
    }
    chunk += char;
    bytes += size;
  }
  if (chunk !== '' || words.length === 0) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(' ');
}

/** Folds at spaces so that lines stay within 78 characters where possible (RFC 5322 §2.1.1, §2.2.3). */
function headerField(name: string, value: string): string {
  let line = `${name}: `;
  let out = '';
  for (const [i, word] of value.split(' ').entries()) {
    const piece = i === 0 ? word : ` ${word}`;
    if (i > 0 && line.length + piece.length > 78 && line.trim() !== `${name}:`) {
      out += line + CRLF;
      line = piece;
    } else {
      line += piece;
    }
  }
  // RFC 5322 §2.1.1: 998 is a hard limit; a word that long cannot be folded.
  if (line.length > 998 || out.split(CRLF).some((l) => l.length > 998)) throw new TypeError(`${name} field line too long`);
  return out + line + CRLF;
}

/** RFC 5322 §3.3, with a numeric zone rather than the obsolete "GMT". */
function rfc5322Date(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new TypeError('invalid message date');
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/**
 * Quoted-printable for mostly-Latin text (readable and barely larger), base64
 * when more than about a tenth of the bytes would be escaped (Cyrillic,
 * Greek, CJK), where quoted-printable would triple them.
 */
function encodeBody(content: string | SplitText): { encoding: 'quoted-printable' | 'base64'; content: string } {
  if (typeof content !== 'string') return encodeSplitBody(content);
  const length = Buffer.byteLength(content, 'utf8');
  if ((length - content.length) * 10 <= length) return { encoding: 'quoted-printable', content: quotedPrintable(content) };
  // RFC 2046 §4.1.1: text is encoded in its canonical CRLF form.
  const base64 = Buffer.from(splitLines(content).join(CRLF), 'utf8').toString('base64');
  return { encoding: 'base64', content: base64.match(/.{1,76}/g)?.join(CRLF) ?? '' };
}

/** Per statics array (one per template shape): how its parts encode, computed once. */
const encodedStatics = new WeakMap<readonly string[], { encoding: 'quoted-printable' | 'base64'; parts: string[] | null }>();

/**
 * Quoted-printable of a split text without encoding the shared parts again:
 * each part is encoded on its own and ends at the start of a line (a soft
 * line break, RFC 2045 §6.7 rule 5, where it does not end with a line break
 * of its own), so the encoded parts simply concatenate, and decoding gives
 * the joined text exactly. Only the personal values are encoded per message.
 */
function encodeSplitBody(split: SplitText): { encoding: 'quoted-printable' | 'base64'; content: string } {
  // A body rendered whole (no shared shape) is encoded once, and not cached: its statics are its own.
  if (split.values.length === 0) return encodeBody(split.statics[0]!);
  let cached = encodedStatics.get(split.statics);
  if (cached === undefined) {
    const { encoding } = encodeBody(split.statics.join(''));
    cached = { encoding, parts: encoding === 'quoted-printable' ? split.statics.map(quotedPrintablePart) : null };
    encodedStatics.set(split.statics, cached);
  }
  if (cached.parts === null) return encodeBody(joinSplit(split));
  let out = cached.parts[0]!;
  for (let i = 0; i < split.values.length; i++) out += quotedPrintablePart(split.values[i]!) + cached.parts[i + 1]!;
  // The last part ends the body: no soft break after it.
  return { encoding: 'quoted-printable', content: out.endsWith(SOFT_BREAK) ? out.slice(0, -SOFT_BREAK.length) : out };
}

const SOFT_BREAK = `=${CRLF}`;

/** Quoted-printable of a piece of a body, ending where the next piece may start a line. */
function quotedPrintablePart(content: string): string {
  if (content === '') return '';
  const encoded = quotedPrintable(content);
  const last = content.charCodeAt(content.length - 1);
  return last === 0x0a || last === 0x0d ? encoded : encoded + SOFT_BREAK;
}

function splitLines(content: string): string[] {
  return content.includes('\r') ? content.split(/\r\n|\r|\n/) : content.split('\n');
}

const HEX = Array.from({ length: 256 }, (_, b) => `=${b.toString(16).toUpperCase().padStart(2, '0')}`);
const hexRun = (run: string): string => {
  let out = '';
  for (const byte of Buffer.from(run, 'utf8')) out += HEX[byte];
  return out;
};

/**
 * RFC 2045 §6.7. Escapes with whole-string native replaces (a callback only
 * for runs of non-ASCII), then handles line ends and wrapping a line at a time.
 */
export function quotedPrintable(content: string): string {
  let escaped = content.includes('=') ? content.replaceAll('=', '=3D') : content;
  if (/[^\t\r\n\x20-\x7e]/.test(escaped)) escaped = escaped.replace(/[^\t\r\n\x20-\x7e]+/g, hexRun);
  const out: string[] = [];
  for (let encoded of splitLines(escaped)) {
    // Rule 3: whitespace at the end of an encoded line would be stripped in transit.
    const last = encoded.charCodeAt(encoded.length - 1);
    if (last === 0x20 || last === 0x09) encoded = `${encoded.slice(0, -1)}=${last === 0x20 ? '20' : '09'}`;
    // mbox writers rewrite "From " at a line start to ">From ", which would break DKIM.
    if (encoded.startsWith('From ')) encoded = `=46${encoded.slice(1)}`;
    // Rule 5: at most 76 characters a line, soft breaks never inside an "=XX".
    let start = 0;
    while (encoded.length - start > 76) {
      let cut = start + 75;
      if (encoded[cut - 1] === '=') cut -= 1;
      else if (encoded[cut - 2] === '=') cut -= 2;
      out.push(`${encoded.slice(start, cut)}=`);
      start = cut;
    }
    out.push(start === 0 ? encoded : encoded.slice(start));
  }
  return out.join(CRLF);
}
