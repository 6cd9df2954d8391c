/**
 * Small, audited-primitive wrappers over node:crypto: AES-256-GCM sealing,
 * SHA-256, HMAC, and a canonical JSON encoding for hashing.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';

const SEALED_PREFIX = 'enc:v1:';

/**
 * Random bytes handed out from slabs of 64 KiB filled by the CSPRNG: an
 * import makes a key and several nonces per row, and one call per slab
 * costs far less than one per nonce. Each byte is handed out once and a
 * slab is never refilled (a used one is dropped), so no nonce or key
 * repeats or aliases another.
 */
const SLAB = 64 * 1024;
let slab = Buffer.alloc(0);
let slabOffset = 0;

export function randomSlice(length: number): Buffer {
  if (slabOffset + length > slab.length) {
    slab = randomFillSync(Buffer.allocUnsafeSlow(Math.max(SLAB, length)));
    slabOffset = 0;
  }
  const out = slab.subarray(slabOffset, slabOffset + length);
  slabOffset += length;
  return out;
}

/** AES-256-GCM with a random 96-bit nonce; output is self-describing text. */
export function seal(key: Buffer, plaintext: string, associatedData?: string): string {
  const iv = randomSlice(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (associatedData) cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return SEALED_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** Opens what `seal` made; throws when the key or the bytes are wrong. */
export function open(key: Buffer, sealed: string, associatedData?: string): string {
  if (!sealed.startsWith(SEALED_PREFIX)) throw new Error('not a sealed value');
  const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  if (associatedData) decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}

export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(SEALED_PREFIX);
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hmacHex(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('hex');
}

export function hmacBase64url(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('base64url');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` dropped.
 * Hashes over it are stable whatever order code built the object in
 * (the same idea as RFC 8785, for the plain data Assent stores).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonicalJson: non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
