/**
 * A DKIM signer (RFC 6376) over node:crypto: relaxed/relaxed canonicalisation,
 * rsa-sha256 for RSA keys and ed25519-sha256 (RFC 8463) for Ed25519 keys.
 *
 * Campaign bodies differ per recipient, so the body hash runs once per message:
 * the key is parsed once per signer, the body is canonicalised in one pass into
 * a reused scratch buffer (or hashed in place when it needs no change), and only
 * the dozen signed header fields are canonicalised.
 */
import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { domainToASCII } from 'node:url';

export interface DkimSignerOptions {
  /** d= — the signing domain; U-labels are converted to A-labels (RFC 6376 §3.5). */
  domain: string;
  /** s= — the selector; the public key lives at `<selector>._domainkey.<domain>`. */
  selector: string;
  /** PKCS#8 or PKCS#1 PEM of an RSA (>= 1024 bits, RFC 8301 §3.2) or Ed25519 key. */
  privateKeyPem: string;
  /** Header fields to sign, case-insensitive; must include `from` (RFC 6376 §5.4, EML-18). */
  headers?: readonly string[];
  /** Source of the t= timestamp; injected so tests are deterministic. */
  now?: () => Date;
}

export interface DkimSigner {
  readonly algorithm: 'rsa-sha256' | 'ed25519-sha256';
  /** The configured field names, lower-case, before over-signing. */
  readonly headers: readonly string[];
  /** Returns a new buffer: the DKIM-Signature field followed by `raw` (CRLF line ends). */
  sign(raw: Buffer): Buffer;
  /** The same, with the private-key operation on libuv's thread pool: RSA signing leaves the event loop free. */
  signAsync(raw: Buffer): Promise<Buffer>;
}

/** RFC 8058 §3.1 and EML-03: one-click needs both List-Unsubscribe fields signed. */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  'from', 'subject', 'date', 'message-id', 'to', 'list-unsubscribe', 'list-unsubscribe-post',
  'list-id', 'mime-version', 'content-type',
];

/**
 * RFC 6376 §5.4.2 / §8.15: naming a field once more than it occurs signs its
 * absence, so nobody can add a second From, Subject or unsubscribe target that
 * a mail client might show instead of ours (EML-18).
 */
const OVER_SIGNED = new Set(['from', 'subject', 'list-unsubscribe', 'list-unsubscribe-post']);

const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const HEADER_END = Buffer.from('\r\n\r\n');

export function createDkimSigner(options: DkimSignerOptions): DkimSigner {
  const key = createPrivateKey(options.privateKeyPem);
  const algorithm = signingAlgorithm(key);
  const headers = signedHeaderList(options.headers ?? DEFAULT_SIGNED_HEADERS);
  const domain = domainToASCII(options.domain);
  if (domain === '' || !/^[A-Za-z0-9._-]+$/.test(domain)) throw new TypeError(`invalid DKIM domain ${options.domain}`);
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(options.selector)) {
    throw new TypeError(`invalid DKIM selector ${options.selector}`);
  }
  const now = options.now ?? (() => new Date());
  const fixedTags = `v=1; a=${algorithm}; c=relaxed/relaxed;\r\n\td=${domain}; s=${options.selector};`;
  const scratch = { buffer: Buffer.alloc(64 * 1024) };

  /** What is signed, and how to wrap a signature into the finished message. */
  const prepare = (raw: Buffer): { input: Buffer; finish: (signature: Buffer) => Buffer } => {
    const split = splitMessage(raw);
    const fields = parseHeaderFields(split.header);
    const names = headerNamesToSign(headers, fields);
    const bodyHash = relaxedBodyHash(split.body, scratch);
    const time = Math.floor(now().getTime() / 1000);
    const unsigned =
      `DKIM-Signature: ${fixedTags} t=${time};\r\n\th=${foldList(names)};\r\n\tbh=${bodyHash};\r\n\tb=`;
    // RFC 6376 §3.7: the selected fields, then this field with an empty b= and no final CRLF.
    const data = canonicalHeaders(fields, names) + relaxedHeader(unsigned).slice(0, -2);
    const input = Buffer.from(data, 'latin1');
    return {
      // RFC 8463 §3: PureEdDSA over the SHA-256 hash of the canonicalised data.
      input: algorithm === 'rsa-sha256' ? input : createHash('sha256').update(input).digest(),
      finish: (signature) => Buffer.concat([Buffer.from(`${unsigned}${foldBase64(signature.toString('base64'))}\r\n`, 'latin1'), raw]),
    };
  };
  const digest = algorithm === 'rsa-sha256' ? 'sha256' : null;

  return {
    algorithm,
    headers,
    sign(raw: Buffer): Buffer {
      const { input, finish } = prepare(raw);
      return finish(cryptoSign(digest, input, key));
    },
    signAsync(raw: Buffer): Promise<Buffer> {
      const { input, finish } = prepare(raw);
      return new Promise((resolve, reject) =>
        cryptoSign(digest, input, key, (error, signature) => (error ? reject(error) : resolve(finish(signature)))),
      );
    },
  };
}

/** The DNS TXT record that publishes the key (RFC 6376 §3.6.1; RFC 8463 §4.2 for Ed25519). */
export function dkimTxtRecord(privateKeyPem: string): string {
  const key = createPrivateKey(privateKeyPem);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return signingAlgorithm(key) === 'rsa-sha256'
    ? `v=DKIM1; k=rsa; p=${spki.toString('base64')}`
    : // RFC 8463 §4.2: the bare 32-byte public key, not SubjectPublicKeyInfo.
      `v=DKIM1; k=ed25519; p=${spki.subarray(-32).toString('base64')}`;
}

function signingAlgorithm(key: KeyObject): DkimSigner['algorithm'] {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519-sha256';
  if (key.asymmetricKeyType === 'rsa') {
    // RFC 8301 §3.2: signers MUST use at least 1024 bits (and SHOULD use 2048).
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 1024) throw new TypeError('DKIM RSA key shorter than 1024 bits');
    return 'rsa-sha256';
  }
  throw new TypeError(`unsupported DKIM key type ${String(key.asymmetricKeyType)}`);
}

function signedHeaderList(given: readonly string[]): string[] {
  const names = [...new Set(given.map((n) => n.trim().toLowerCase()))];
  for (const name of names) {
    if (!FIELD_NAME.test(name) || name === 'dkim-signature') throw new TypeError(`cannot DKIM-sign header ${JSON.stringify(name)}`);
  }
  // RFC 6376 §5.4 (EML-18): "The From header field MUST be signed."
  if (!names.includes('from')) throw new TypeError('DKIM h= must include from (RFC 6376 §5.4)');
  return names;
}

interface HeaderField {
  name: string;
  /** The field as it stands, folds included, without the final CRLF. */
  text: string;
}

function splitMessage(raw: Buffer): { header: string; body: Buffer } {
  const end = raw.indexOf(HEADER_END);
  if (end < 0) return { header: raw.toString('latin1'), body: raw.subarray(raw.length) };
  return { header: raw.toString('latin1', 0, end + 2), body: raw.subarray(end + 4) };
}

/** RFC 5322 §2.2: a field continues while the next line starts with WSP. latin1 keeps bytes 1:1. */
function parseHeaderFields(header: string): HeaderField[] {
  const fields: HeaderField[] = [];
  for (const text of header.split(/\r\n(?![ \t])/)) {
    if (text === '') continue;
    const colon = text.indexOf(':');
    if (colon <= 0) throw new TypeError('DKIM: malformed header field');
    fields.push({ name: text.slice(0, colon).replace(/[ \t]+$/, '').toLowerCase(), text });
  }
  return fields;
}

/** Each configured name once per occurrence, plus once more for over-signed names. */
function headerNamesToSign(configured: readonly string[], fields: readonly HeaderField[]): string[] {
  const out: string[] = [];
  for (const name of configured) {
    let count = 0;
    for (const field of fields) if (field.name === name) count++;
    if (name === 'from' && count === 0) throw new TypeError('DKIM: message has no From field (RFC 6376 §5.4)');
    for (let i = count + (OVER_SIGNED.has(name) ? 1 : 0); i > 0; i--) out.push(name);
  }
  return out;
}

/**
 * RFC 6376 §5.4.2: repeated names take instances from the bottom up; a name
 * with no instance left contributes nothing (it signs the field's absence).
 */
function canonicalHeaders(fields: readonly HeaderField[], names: readonly string[]): string {
  const used = new Map<string, number>();
  let out = '';
  for (const name of names) {
    let skip = used.get(name) ?? 0;
    used.set(name, skip + 1);
    for (let i = fields.length - 1; i >= 0; i--) {
      const field = fields[i] as HeaderField;
      if (field.name !== name) continue;
      if (skip-- === 0) {
        out += relaxedHeader(field.text);
        break;
      }
    }
  }
  return out;
}

/** RFC 6376 §3.4.2: lower-case name, unfold, squeeze WSP, trim around the colon and at the end. */
export function relaxedHeader(text: string): string {
  const colon = text.indexOf(':');
  let name = text.slice(0, colon);
  if (/[ \t]$/.test(name)) name = name.replace(/[ \t]+$/, '');
  let value = text.slice(colon + 1);
  // Most fields have nothing to unfold or squeeze; skip the regex work for them.
  if (/\r\n|\t| {2}/.test(value)) value = value.replace(/\r\n/g, '').replace(/[ \t]+/g, ' ');
  if (value.startsWith(' ')) value = value.slice(1);
  if (value.endsWith(' ')) value = value.slice(0, -1);
  return `${name.toLowerCase()}:${value}\r\n`;
}

/**
 * RFC 6376 §3.4.4 and §3.4.3's rule for trailing empty lines: drop WSP at line
 * ends, squeeze WSP runs to one SP, drop empty lines at the end, end a
 * non-empty body with CRLF. Returns bh= (RFC 6376 §3.7, base64 SHA-256).
 */
export function relaxedBodyHash(body: Buffer, scratch?: { buffer: Buffer }): string {
  const hash = createHash('sha256');
  const needsRewrite = body.includes('\t') || body.includes('  ') || body.includes(' \r\n') || body[body.length - 1] === SP;
  let source = body;
  let end = body.length;
  if (needsRewrite) {
    const holder = scratch ?? { buffer: Buffer.alloc(0) };
    if (holder.buffer.length < body.length) holder.buffer = Buffer.alloc(body.length * 2);
    source = holder.buffer;
    end = squeezeWhitespace(body, source);
  }
  while (end >= 2 && source[end - 2] === CR && source[end - 1] === LF) end -= 2;
  if (end > 0) hash.update(source.subarray(0, end)).update('\r\n');
  return hash.digest('base64');
}

/**
 * One read-only pass; bytes are copied in bulk only around the runs that
 * change, since a single SP between words (the common case) is canonical.
 * Returns the length written to `out`.
 */
function squeezeWhitespace(body: Buffer, out: Buffer): number {
  const n = body.length;
  let j = 0;
  let start = 0;
  let i = 0;
  while (i < n) {
    const c = body[i] as number;
    if (c !== SP && c !== TAB) {
      i++;
      continue;
    }
    const d = i + 1 < n ? (body[i + 1] as number) : CR;
    if (c === SP && d !== SP && d !== TAB && d !== CR) {
      i += 2;
      continue;
    }
    let k = i + 1;
    while (k < n && (body[k] === SP || body[k] === TAB)) k++;
    const atLineEnd = k === n || (body[k] === CR && k + 1 < n && body[k + 1] === LF);
    j += body.copy(out, j, start, i);
    if (!atLineEnd) out[j++] = SP;
    i = k;
    start = k;
  }
  return j + body.copy(out, j, start, n);
}

/** h= folded so that no line passes 78 characters (RFC 5322 §2.1.1); FWS is allowed around ':'. */
function foldList(names: readonly string[]): string {
  let out = '';
  let line = 3;
  for (const [i, name] of names.entries()) {
    const piece = i === 0 ? name : `:${name}`;
    if (line + piece.length > 76) {
      out += '\r\n\t';
      line = 1;
    }
    out += piece;
    line += piece.length;
  }
  return out;
}

/** b= may contain FWS anywhere (RFC 6376 §3.5); it is removed before verification. */
function foldBase64(value: string): string {
  const lines: string[] = [];
  for (let i = 0; i < value.length; i += 72) lines.push(value.slice(i, i + 72));
  return lines.join('\r\n\t');
}
