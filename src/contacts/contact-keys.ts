/**
 * Per-contact keys for personal data in evidence. Each contact's key is
 * wrapped by a master key; erasure deletes the wrapped key and so shreds
 * every sealed value in the ledger without touching the chain (GDPR Art. 17).
 */
import { createCipheriv, randomFillSync } from 'node:crypto';
import { open } from '../shared/crypto.js';

export interface MasterKey {
  version: number;
  key: Buffer;
}

/** A fresh contact key and its wrapped form, bound to the contact id. */
export function createContactKey(masterKeys: MasterKey[], contactId: string): { key: Buffer; wrapped: string } {
  const master = masterKeys[0];
  if (!master) throw new Error('no master key configured');
  const key = randomSlice(32);
  return { key, wrapped: `${master.version}:${sealFast(master.key, key.toString('base64'), contactId)}` };
}

/** Unwraps a contact key with whichever master key version wrapped it. */
export function unwrapContactKey(masterKeys: MasterKey[], contactId: string, wrapped: string): Buffer {
  const colon = wrapped.indexOf(':');
  const version = Number(wrapped.slice(0, colon));
  const master = masterKeys.find((m) => m.version === version);
  if (!master) throw new Error(`master key version ${version} is not configured`);
  return Buffer.from(open(master.key, wrapped.slice(colon + 1), contactId), 'base64');
}

export interface PersonalData {
  address?: string;
  ip?: string;
  user_agent?: string;
}

/** Seals personal data for a ledger event's evidence. */
export function sealPersonal(contactKey: Buffer, data: PersonalData): string {
  return sealFast(contactKey, JSON.stringify(data));
}

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

function randomSlice(length: number): Buffer {
  if (slabOffset + length > slab.length) {
    slab = randomFillSync(Buffer.allocUnsafeSlow(SLAB));
    slabOffset = 0;
  }
  const out = slab.subarray(slabOffset, slabOffset + length);
  slabOffset += length;
  return out;
}

/**
 * `seal` of shared/crypto (AES-256-GCM, random 96-bit nonce, the same
 * `enc:v1:` text, opened by `open`) with its nonce from the slab: the
 * per-row sealing of an import.
 */
export function sealFast(key: Buffer, plaintext: string, associatedData?: string): string {
  const iv = randomSlice(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (associatedData) cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const body = cipher.update(plaintext, 'utf8');
  cipher.final();
  return `enc:v1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
}

/** Opens sealed evidence; null when the key is gone (erased) or wrong. */
export function openPersonal(contactKey: Buffer | null, sealed: string): PersonalData | null {
  if (!contactKey) return null;
  try {
    return JSON.parse(open(contactKey, sealed)) as PersonalData;
  } catch {
    return null;
  }
}
