import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { AppError } from '../shared/errors.js';

/**
 * The Ed25519 key that signs consent receipts. The private JWK is kept in a
 * 0600 file; the public JWK is published so that anyone holding a receipt can
 * check it offline (GDPR Art 7(1): the controller must be able to demonstrate
 * consent, and the person must be able to check what they were given).
 */
export interface ReceiptPrivateKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

/** The JWK Set served at /.well-known/assent-receipt-key.json. */
export interface ReceiptKeySet {
  keys: JWK[];
}

/** An Ed25519 key encodes as exactly 32 bytes for both `x` and `d` (RFC 8037 §2). */
const ED25519_KEY_BYTES = 32;

export async function generateReceiptKey(): Promise<ReceiptPrivateKey> {
  const { privateKey } = await generateKeyPair('Ed25519', { extractable: true });
  return receiptKeyFromJwk(await exportJWK(privateKey));
}

/**
 * Rebuilds a key from its stored private JWK. Loud on anything unexpected: a
 * corrupt or swapped key file must stop start-up rather than sign receipts
 * nobody can verify.
 */
export function receiptKeyFromJwk(jwk: unknown): ReceiptPrivateKey {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
    throw keyError('it is not a JSON object');
  }
  const { kty, crv, x, d, kid, alg, use } = jwk as Record<string, unknown>;
  if (kty !== 'OKP' || crv !== 'Ed25519') {
    throw keyError(`expected kty "OKP" and crv "Ed25519", got kty ${show(kty)} and crv ${show(crv)}`);
  }
  if (!isKeyBytes(x)) throw keyError('"x" is not a 32-byte base64url value');
  if (d === undefined) throw keyError('it holds no private part ("d"); this is a public key');
  if (!isKeyBytes(d)) throw keyError('"d" is not a 32-byte base64url value');
  if (alg !== undefined && alg !== 'EdDSA') throw keyError(`"alg" is ${show(alg)}, expected "EdDSA"`);
  if (use !== undefined && use !== 'sig') throw keyError(`"use" is ${show(use)}, expected "sig"`);
  if (derivePublicX(x, d) !== x) throw keyError('"x" is not the public key of "d"');
  const thumbprint = jwkThumbprint(x);
  if (kid !== undefined && kid !== thumbprint) {
    throw keyError(`"kid" ${show(kid)} is not the RFC 7638 thumbprint of the key (${thumbprint})`);
  }
  const publicJwk = publicJwkFor(x, thumbprint);
  return { kid: thumbprint, privateJwk: { ...publicJwk, d }, publicJwk };
}

/**
 * Public parts only. Built from an allow-list rather than by deleting `d`, so
 * no private member (d, or p/q/dp… of a wrong key type) can ever leak.
 */
export function publicKeySet(keys: ReceiptPrivateKey[] | JWK[]): ReceiptKeySet {
  return { keys: keys.map((key) => toPublicJwk(isReceiptKey(key) ? key.publicJwk : key)) };
}

/** RFC 7638 §3.2: the required members of an OKP key, sorted, no whitespace. */
export function jwkThumbprint(x: string): string {
  const canonical = JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x });
  return createHash('sha256').update(canonical).digest('base64url');
}

function toPublicJwk(jwk: JWK): JWK {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !isKeyBytes(jwk.x)) {
    throw new AppError('config_invalid', 'A published receipt key must be an Ed25519 JWK with a 32-byte "x"');
  }
  return publicJwkFor(jwk.x, jwkThumbprint(jwk.x));
}

function publicJwkFor(x: string, kid: string): JWK {
  return { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' };
}

function derivePublicX(x: string, d: string): string | undefined {
  try {
    const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x, d }, format: 'jwk' });
    return createPublicKey(privateKey).export({ format: 'jwk' }).x;
  } catch {
    return undefined;
  }
}

/** Canonical base64url of exactly 32 bytes; rejects padding and stray bits. */
function isKeyBytes(value: unknown): value is string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(value)) return false;
  const bytes = Buffer.from(value, 'base64url');
  return bytes.length === ED25519_KEY_BYTES && bytes.toString('base64url') === value;
}

function isReceiptKey(key: ReceiptPrivateKey | JWK): key is ReceiptPrivateKey {
  return typeof (key as ReceiptPrivateKey).publicJwk === 'object';
}

function keyError(why: string): AppError {
  return new AppError('config_invalid', `Receipt signing key is not an Ed25519 private JWK: ${why}`);
}

function show(value: unknown): string {
  return value === undefined ? 'missing' : JSON.stringify(value);
}
