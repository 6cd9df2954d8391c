/**
 * Signed links for one-click unsubscribe and the preference centre.
 *
 * RFC 8058 §3.1 (EML-06): the URI "SHOULD contain an opaque identifier or
 * another hard-to-forge component", so that nobody can unsubscribe a victim by
 * guessing a link. A token is `v<version>.<payload>.<mac>`:
 *
 * - `payload` is a compact binary encoding of the claims, base64url. It holds
 *   opaque ids only — never the address or anything else personal.
 * - `mac` is HMAC-SHA-256 over a context label and `v<version>.<payload>`,
 *   truncated to 128 bits (RFC 2104 §5: at least half the hash output).
 *
 * Tokens never expire: a link in an old mail must still unsubscribe (US-02
 * wants at least 30 days; GDPR Art. 7(3) wants withdrawal to stay easy).
 * The newest key signs; every configured key verifies, so rotation does not
 * break links already in inboxes.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { VersionedKey } from '../config/secrets.js';

/** 'repermission': the confirm link of a re-permission request (issue 5 point 4), scoped to contact, topic and campaign. */
export type LinkPurpose = 'unsubscribe' | 'preferences' | 'repermission';

export interface LinkClaims {
  purpose: LinkPurpose;
  contactId: string;
  topicId?: string;
  campaignId?: string;
}

export type LinkVerification = { ok: true; claims: LinkClaims } | { ok: false };

/** Domain separation: the same key could one day MAC something else. */
const MAC_CONTEXT = 'assent/link-token\0';
const MAC_BYTES = 16;
const PURPOSE_CODES: Record<LinkPurpose, number> = { unsubscribe: 1, preferences: 2, repermission: 3 };
const FLAG_TOPIC = 0b0100;
const FLAG_CAMPAIGN = 0b1000;
/** Marks a field stored as the 16 bytes of a lower-case UUID. */
const UUID_MARK = 0xff;
const MAX_ID_BYTES = 200;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TOKEN = /^v(0|[1-9][0-9]{0,8})\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;

/** Signs `claims` with the newest key. Throws only for programmer errors (no key, bad ids). */
export function signLinkToken(keys: readonly VersionedKey[], claims: LinkClaims): string {
  const key = keys[0];
  if (key === undefined) throw new TypeError('signLinkToken: no link key configured');
  if (!Number.isSafeInteger(key.version) || key.version < 0 || key.version > 999_999_999) {
    throw new TypeError(`signLinkToken: invalid key version ${key.version}`);
  }
  const signed = `v${key.version}.${encodeClaims(claims).toString('base64url')}`;
  return `${signed}.${mac(key.key, signed)}`;
}

/**
 * Never throws: a tampered, truncated, foreign or wrong-purpose token is just
 * `{ ok: false }`, so callers answer every failure with the same neutral page
 * and reveal nothing about whose token it was (issue 4, point 2).
 */
export function verifyLinkToken(keys: readonly VersionedKey[], token: unknown, purpose: LinkPurpose): LinkVerification {
  if (typeof token !== 'string' || token.length > 1024) return { ok: false };
  const match = TOKEN.exec(token);
  if (match === null) return { ok: false };
  const version = Number(match[1]);
  const key = keys.find((k) => k.version === version);
  if (key === undefined) return { ok: false };
  // The MAC covers the payload text itself, not its decoded bytes: base64url's
  // unused trailing bits would otherwise let two spellings share one MAC.
  const signed = token.slice(0, token.length - (match[3] as string).length - 1);
  const expected = Buffer.from(mac(key.key, signed), 'latin1');
  const given = Buffer.from(match[3] as string, 'latin1');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false };
  const claims = decodeClaims(Buffer.from(match[2] as string, 'base64url'));
  if (claims === null || claims.purpose !== purpose) return { ok: false };
  return { ok: true, claims };
}

function mac(key: Buffer, signed: string): string {
  return createHmac('sha256', key)
    .update(MAC_CONTEXT + signed, 'latin1')
    .digest()
    .subarray(0, MAC_BYTES)
    .toString('base64url');
}

/**
 * Layout: one flags byte (bits 0-1 purpose, bit 2 topic present, bit 3
 * campaign present, bits 4-7 zero = this format), then contact, topic and
 * campaign ids, each as 0xff + 16 UUID bytes or a length byte + UTF-8.
 */
function encodeClaims(claims: LinkClaims): Buffer {
  const code = PURPOSE_CODES[claims.purpose];
  if (code === undefined) throw new TypeError(`signLinkToken: unknown purpose ${String(claims.purpose)}`);
  const flags = code | (claims.topicId === undefined ? 0 : FLAG_TOPIC) | (claims.campaignId === undefined ? 0 : FLAG_CAMPAIGN);
  const parts = [Buffer.of(flags), encodeId(claims.contactId, 'contactId')];
  if (claims.topicId !== undefined) parts.push(encodeId(claims.topicId, 'topicId'));
  if (claims.campaignId !== undefined) parts.push(encodeId(claims.campaignId, 'campaignId'));
  return Buffer.concat(parts);
}

function encodeId(id: string, field: string): Buffer {
  if (typeof id !== 'string') throw new TypeError(`signLinkToken: invalid ${field}`);
  if (UUID.test(id)) return Buffer.concat([Buffer.of(UUID_MARK), Buffer.from(id.replaceAll('-', ''), 'hex')]);
  const bytes = Buffer.from(id, 'utf8');
  // A lone surrogate would not survive the UTF-8 round trip; refuse it rather than sign a different id.
  if (id.length === 0 || bytes.length > MAX_ID_BYTES || bytes.toString('utf8') !== id) {
    throw new TypeError(`signLinkToken: invalid ${field}`);
  }
  return Buffer.concat([Buffer.of(bytes.length), bytes]);
}

/** Only ever sees bytes that carried a valid MAC, but stays total anyway. */
function decodeClaims(bytes: Buffer): LinkClaims | null {
  const flags = bytes[0];
  if (flags === undefined || flags >> 4 !== 0) return null;
  const purpose = (Object.keys(PURPOSE_CODES) as LinkPurpose[]).find((p) => PURPOSE_CODES[p] === (flags & 0b11));
  if (purpose === undefined) return null;
  const reader = { offset: 1 };
  const contactId = decodeId(bytes, reader);
  const topicId = flags & FLAG_TOPIC ? decodeId(bytes, reader) : undefined;
  const campaignId = flags & FLAG_CAMPAIGN ? decodeId(bytes, reader) : undefined;
  if (contactId === null || topicId === null || campaignId === null || reader.offset !== bytes.length) return null;
  return {
    purpose,
    contactId,
    ...(topicId === undefined ? {} : { topicId }),
    ...(campaignId === undefined ? {} : { campaignId }),
  };
}

function decodeId(bytes: Buffer, reader: { offset: number }): string | null {
  const head = bytes[reader.offset];
  if (head === undefined) return null;
  const length = head === UUID_MARK ? 16 : head;
  const start = reader.offset + 1;
  if (length === 0 || start + length > bytes.length) return null;
  reader.offset = start + length;
  const body = bytes.subarray(start, start + length);
  if (head !== UUID_MARK) return body.toString('utf8');
  const hex = body.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
