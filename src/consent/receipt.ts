import { CompactSign, compactVerify, importJWK, type JWK } from 'jose';
import { z } from 'zod';
import { AppError } from '../shared/errors.js';
import { translator, type Translate } from '../shared/i18n.js';
import type { ReceiptPrivateKey } from './receipt-keys.js';

/**
 * The consent receipt: a signed record, in the shape of the Kantara Consent
 * Receipt v1.1.0, of what one person agreed to. It is mailed on confirmation
 * so the person holds proof that does not depend on our database (GDPR Art
 * 7(1); EDPB 05/2020 §5.1: how, when, and what was shown).
 */
export interface ReceiptInput {
  receiptId: string;
  controller: { name: string; contact: string; email: string; address?: string; url?: string };
  policyUrl: string;
  jurisdiction: string;
  language: string;
  /** Opaque contact id, never the address: the receipt is proof, not a copy of the data (EDPB-02). */
  subject: string;
  topic: { slug: string; name: string };
  consentText: { id: string; version: number; sha256: string; body: string };
  consentedAt: Date;
  confirmedAt: Date;
  method: string;
  formId?: string;
  ledgerEventHash: string;
  ledgerEventSeq: number;
  /** When the receipt is issued; defaults to `confirmedAt`, when it is first mailed. */
  issuedAt?: Date;
}

export const RECEIPT_VERSION = 'KI-CR-v1.1.0';
export const RECEIPT_JWS_TYPE = 'assent-receipt+jws';
export const RECEIPT_FILENAME = 'consent-receipt.jws';
export const RECEIPT_KEY_PATH = '/.well-known/assent-receipt-key.json';

const TERMINATION =
  'Until withdrawn. You can withdraw at any time with the unsubscribe link in every message or in the preference centre.';
/** A receipt is a few kilobytes; refusing huge input keeps verification cheap for any caller. */
const MAX_JWS_CHARS = 256 * 1024;

const text = z.string().min(1);
/** Kantara §4.3.3 counts seconds; the bound (year 5138) rejects a timestamp given in milliseconds. */
const seconds = z.int().nonnegative().max(99_999_999_999);

const controllerSchema = z.object({
  piiController: text,
  contact: text,
  email: text,
  address: text.optional(),
  piiControllerUrl: text.optional(),
});

const purposeSchema = z.object({
  purpose: text,
  purposeCategory: z.array(text).min(1),
  consentType: text,
  piiCategory: z.array(text).min(1),
  primaryPurpose: z.boolean().optional(),
  termination: text,
  thirdPartyDisclosure: z.boolean(),
});

/** Assent's extension: the ledger facts that tie the receipt to one consent event. */
const assentSchema = z.object({
  topic: text,
  consentTextId: text,
  consentTextVersion: z.int().positive(),
  consentTextSha256: text,
  confirmedAt: seconds,
  method: text,
  formId: text.optional(),
  ledgerEventHash: text,
  ledgerEventSeq: z.int().nonnegative(),
});

/** Kantara §4.2: the REQUIRED fields must be present; §4.8 gives their types. */
const receiptClaimsSchema = z.object({
  version: z.literal(RECEIPT_VERSION),
  jurisdiction: text,
  consentTimestamp: seconds,
  collectionMethod: text,
  consentReceiptID: text,
  language: text.optional(),
  piiPrincipalId: text,
  piiControllers: z.array(controllerSchema).min(1),
  policyUrl: text,
  services: z.array(z.object({ service: text, purposes: z.array(purposeSchema).min(1) })).min(1),
  sensitive: z.boolean(),
  spiCat: z.array(text),
  iat: seconds,
  iss: text.optional(),
  assent: assentSchema,
});

export type ReceiptClaims = z.infer<typeof receiptClaimsSchema>;

export type ReceiptVerification =
  | { ok: true; claims: ReceiptClaims; kid: string }
  | { ok: false; reason: string };

export function buildReceiptClaims(input: ReceiptInput): ReceiptClaims {
  if (input.subject.includes('@')) {
    throw new AppError('validation_failed', 'Receipt subject must be an opaque contact id, not an address');
  }
  const { controller: c, topic, consentText: t } = input;
  return withoutUndefined({
    version: RECEIPT_VERSION,
    jurisdiction: input.jurisdiction,
    consentTimestamp: toSeconds(input.consentedAt),
    collectionMethod: input.method,
    consentReceiptID: input.receiptId,
    language: input.language,
    piiPrincipalId: input.subject,
    piiControllers: [
      withoutUndefined({
        piiController: c.name,
        contact: c.contact,
        email: c.email,
        address: c.address,
        piiControllerUrl: c.url,
      }),
    ],
    policyUrl: input.policyUrl,
    services: [{ service: topic.name, purposes: [marketingPurpose(t.body)] }],
    sensitive: false,
    spiCat: [],
    iat: toSeconds(input.issuedAt ?? input.confirmedAt),
    iss: c.url,
    assent: withoutUndefined({
      topic: topic.slug,
      consentTextId: t.id,
      consentTextVersion: t.version,
      consentTextSha256: t.sha256,
      confirmedAt: toSeconds(input.confirmedAt),
      method: input.method,
      formId: input.formId,
      ledgerEventHash: input.ledgerEventHash,
      ledgerEventSeq: input.ledgerEventSeq,
    }),
  });
}

/** The purpose is the exact text shown at collection, so the receipt says what was agreed (EDPB-02). */
function marketingPurpose(consentTextBody: string): ReceiptClaims['services'][number]['purposes'][number] {
  return {
    purpose: consentTextBody,
    purposeCategory: ['marketing'],
    consentType: 'EXPLICIT',
    piiCategory: ['email address'],
    primaryPurpose: true,
    termination: TERMINATION,
    thirdPartyDisclosure: false,
  };
}

/** Absent optional fields are left out, so the claims built equal the claims a verifier reads back. */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Refuses claims the verifier would reject, so we never mail a receipt that cannot be checked. */
export async function signReceipt(claims: ReceiptClaims, key: ReceiptPrivateKey): Promise<string> {
  const checked = receiptClaimsSchema.safeParse(claims);
  if (!checked.success) {
    throw new AppError('validation_failed', `Receipt claims are not valid: ${describeIssue(checked.error)}`);
  }
  const privateKey = await importJWK(key.privateJwk, 'EdDSA');
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: RECEIPT_JWS_TYPE })
    .sign(privateKey);
}

/** Never throws: a receipt comes from anyone, and the answer is always a reason. */
export async function verifyReceipt(jws: string, publicKeys: JWK[]): Promise<ReceiptVerification> {
  if (!isCanonicalCompactJws(jws)) return fail('malformed: not a compact JWS in canonical base64url');
  const [headerPart = '', payloadPart = ''] = jws.split('.');
  const header = decodeJsonSegment(headerPart);
  const headerProblem = checkHeader(header);
  if (headerProblem !== null) return fail(headerProblem);
  const kid = (header as { kid: string }).kid;
  const jwk = Array.isArray(publicKeys) ? publicKeys.find((k) => k?.kid === kid) : undefined;
  if (jwk === undefined) return fail(`unknown key id ${JSON.stringify(kid)}`);
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    // Only the public members: a private JWK passed by mistake must not change behaviour.
    key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, 'EdDSA');
  } catch {
    return fail(`key ${JSON.stringify(kid)} is not an Ed25519 public key`);
  }
  try {
    await compactVerify(jws, key, { algorithms: ['EdDSA'] });
  } catch {
    return fail('signature does not verify: the receipt was altered or signed by another key');
  }
  const checked = receiptClaimsSchema.safeParse(decodeJsonSegment(payloadPart));
  if (!checked.success) return fail(`claims do not have the receipt shape: ${describeIssue(checked.error)}`);
  return { ok: true, claims: checked.data, kid };
}

/**
 * RFC 7515 §7.1 segments. Canonical base64url is required because a base64
 * decoder ignores the spare low bits of the last character: without this, a
 * changed last signature character could still verify.
 */
function isCanonicalCompactJws(jws: unknown): jws is string {
  if (typeof jws !== 'string' || jws.length > MAX_JWS_CHARS) return false;
  const parts = jws.split('.');
  return parts.length === 3 && parts.every(isCanonicalBase64url);
}

function isCanonicalBase64url(segment: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(segment) && Buffer.from(segment, 'base64url').toString('base64url') === segment;
}

function decodeJsonSegment(segment: string): unknown {
  try {
    const json = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(segment, 'base64url'));
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}

/** Exactly the header we write: anything else (crit, b64, jwk, x5u…) is not one of our receipts. */
function checkHeader(header: unknown): string | null {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    return 'malformed: protected header is not a JSON object';
  }
  const { alg, kid, typ, ...rest } = header as Record<string, unknown>;
  if (alg !== 'EdDSA') return `unsupported alg ${JSON.stringify(alg ?? null)}: receipts are signed with EdDSA`;
  if (typ !== RECEIPT_JWS_TYPE) return `wrong typ ${JSON.stringify(typ ?? null)}: expected ${RECEIPT_JWS_TYPE}`;
  if (typeof kid !== 'string' || kid === '') return 'malformed: protected header has no kid';
  const extra = Object.keys(rest);
  return extra.length === 0 ? null : `unexpected header parameter(s): ${extra.join(', ')}`;
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue === undefined ? 'invalid' : `${issue.path.join('.') || '(root)'}: ${issue.message}`;
}

function fail(reason: string): ReceiptVerification {
  return { ok: false, reason };
}

/** Kantara §4.3.3: consentTimestamp is seconds since the epoch, not milliseconds. */
function toSeconds(date: Date): number {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new AppError('validation_failed', 'Receipt timestamp is not a valid date');
  return Math.floor(ms / 1000);
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Deep enough for mixed → alternative → related, and a forwarded message around it. */
const MAX_MIME_DEPTH = 8;

interface MimePart {
  headers: Map<string, string>;
  body: string;
}

/**
 * Takes what a person has: the bare JWS, or the whole receipt email saved as
 * .eml. A minimal RFC 2045/2046 walk, enough for the mail we send and for a
 * forward of it; anything it cannot read gives null, never an exception.
 */
export function extractReceiptJws(input: string): string | null {
  if (typeof input !== 'string' || input.length > 64 * MAX_JWS_CHARS) return null;
  const bare = input.trim();
  if (COMPACT_JWS.test(bare)) return bare;
  const leaves = leafParts(parseMimePart(input.replace(/\r\n?/g, '\n')), 0);
  const part = leaves.find(isNamedReceipt) ?? leaves.find((p) => mediaType(p).value === 'application/jose');
  if (part === undefined) return null;
  const jws = decodeBody(part).trim();
  return COMPACT_JWS.test(jws) ? jws : null;
}

function parseMimePart(raw: string): MimePart {
  const lines = raw.split('\n');
  const blank = lines.indexOf('');
  const headerLines = blank === -1 ? lines : lines.slice(0, blank);
  const headers = new Map<string, string>();
  let last = '';
  for (const line of headerLines) {
    // RFC 5322 §2.2.3: a line starting with white space continues the previous field.
    if (/^[ \t]/.test(line) && last !== '') headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
    else {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      last = line.slice(0, colon).trim().toLowerCase();
      if (!headers.has(last)) headers.set(last, line.slice(colon + 1).trim());
    }
  }
  return { headers, body: blank === -1 ? '' : lines.slice(blank + 1).join('\n') };
}

function leafParts(part: MimePart, depth: number): MimePart[] {
  if (depth > MAX_MIME_DEPTH) return [];
  const type = mediaType(part);
  if (type.value === 'message/rfc822') return leafParts(parseMimePart(decodeBody(part)), depth + 1);
  if (!type.value.startsWith('multipart/')) return [part];
  const boundary = type.params.get('boundary');
  if (boundary === undefined || boundary === '') return [];
  return splitMultipart(part.body, boundary).flatMap((raw) => leafParts(parseMimePart(raw), depth + 1));
}

/** RFC 2046 §5.1.1: delimiter lines, optional trailing white space, preamble and epilogue ignored. */
function splitMultipart(body: string, boundary: string): string[] {
  const parts: string[] = [];
  let current: string[] | null = null;
  for (const line of body.split('\n')) {
    const trimmed = line.trimEnd();
    if (trimmed === `--${boundary}` || trimmed === `--${boundary}--`) {
      if (current !== null) parts.push(current.join('\n'));
      if (trimmed.endsWith(`${boundary}--`)) return parts;
      current = [];
    } else current?.push(line);
  }
  if (current !== null) parts.push(current.join('\n'));
  return parts;
}

function isNamedReceipt(part: MimePart): boolean {
  const disposition = parseHeaderValue(part.headers.get('content-disposition') ?? '');
  const name = disposition.params.get('filename') ?? mediaType(part).params.get('name') ?? '';
  return name.toLowerCase() === RECEIPT_FILENAME;
}

function mediaType(part: MimePart): { value: string; params: Map<string, string> } {
  return parseHeaderValue(part.headers.get('content-type') ?? 'text/plain');
}

/** `value; name=token; name="quoted \"string\""` (RFC 2045 §5.1). */
function parseHeaderValue(header: string): { value: string; params: Map<string, string> } {
  const semi = header.indexOf(';');
  const value = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
  const params = new Map<string, string>();
  const param = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (const m of header.matchAll(param)) {
    const name = (m[1] ?? '').toLowerCase();
    if (!params.has(name)) params.set(name, m[2] === undefined ? (m[3] ?? '') : m[2].replace(/\\(.)/g, '$1'));
  }
  return { value, params };
}

function decodeBody(part: MimePart): string {
  const encoding = (part.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  if (encoding === 'base64') return Buffer.from(part.body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    return part.body
      .replace(/=[ \t]*\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  return part.body;
}

/**
 * Kantara §4.7: the receipt MUST also be given in a human-readable form, in
 * the person's language (the catalogue's `mail.receipt.text.*`; English when
 * no translator is given). The words agreed to are quoted as signed.
 */
export function renderReceiptText(claims: ReceiptClaims, t: Translate = translator('en').t): string {
  const controller = claims.piiControllers[0];
  const purpose = claims.services[0]?.purposes[0];
  const a = claims.assent;
  const rows: [string, string][] = [
    [t('mail.receipt.text.controller'), describeController(controller, t)],
    [t('mail.receipt.text.policy'), claims.policyUrl],
    [
      t('mail.receipt.text.consent_text'),
      t('mail.receipt.text.consent_text_value', { id: a.consentTextId, version: a.consentTextVersion, sha256: a.consentTextSha256 }),
    ],
    [t('mail.receipt.text.consented_at'), isoSeconds(claims.consentTimestamp)],
    [t('mail.receipt.text.confirmed_at'), isoSeconds(a.confirmedAt)],
    [t('mail.receipt.text.method'), a.formId === undefined ? a.method : t('mail.receipt.text.method_form', { method: a.method, form: a.formId })],
    [t('mail.receipt.text.ledger_event'), t('mail.receipt.text.ledger_event_value', { seq: a.ledgerEventSeq, hash: a.ledgerEventHash })],
    [t('mail.receipt.text.receipt_id'), claims.consentReceiptID],
    [t('mail.receipt.text.contact_id'), claims.piiPrincipalId],
    [t('mail.receipt.text.jurisdiction'), claims.jurisdiction],
    // The standard term is translated; any other is quoted as signed.
    [t('mail.receipt.text.lasts'), purpose?.termination === undefined || purpose.termination === TERMINATION ? t('mail.receipt.text.lasts_value') : purpose.termination],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const lines = [
    t('mail.receipt.text.heading'),
    '',
    t('mail.receipt.text.agreed', { controller: controller?.piiController ?? t('mail.receipt.text.unknown_controller') }),
    `  ${t('mail.receipt.text.topic', { name: claims.services[0]?.service ?? a.topic, slug: a.topic })}`,
    '',
    t('mail.receipt.text.words'),
    ...(purpose?.purpose ?? '').split('\n').map((line) => `  | ${line}`),
    '',
    ...rows.map(([label, value]) => `${label.padEnd(width)}${value}`),
    '',
    t('mail.receipt.text.verify_heading'),
    t('mail.receipt.text.verify_signed', { file: RECEIPT_FILENAME }),
    t('mail.receipt.text.verify_check', { file: RECEIPT_FILENAME }),
    t('mail.receipt.text.verify_eml'),
    `  ${keyUrl(claims.iss, t)}`,
  ];
  return `${lines.join('\n')}\n`;
}

function describeController(c: ReceiptClaims['piiControllers'][number] | undefined, t: Translate): string {
  if (c === undefined) return t('mail.receipt.text.unknown');
  const extras = [c.address, c.piiControllerUrl].filter((x): x is string => x !== undefined);
  return [`${c.piiController} (${c.contact}, ${c.email})`, ...extras].join(', ');
}

function keyUrl(iss: string | undefined, t: Translate): string {
  if (!URL.canParse(iss ?? '')) return t('mail.receipt.text.key_fallback', { path: RECEIPT_KEY_PATH });
  return new URL(RECEIPT_KEY_PATH, iss).href;
}

function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}
