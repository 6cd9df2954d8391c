/**
 * Per-contact keys for personal data in evidence. Each contact's key is
 * wrapped by a master key; erasure deletes the wrapped key and so shreds
 * every sealed value in the ledger without touching the chain (GDPR Art. 17).
 */
import { open, randomSlice, seal } from '../shared/crypto.js';

export interface MasterKey {
  version: number;
  key: Buffer;
}

/** A fresh contact key and its wrapped form, bound to the contact id. */
export function createContactKey(masterKeys: MasterKey[], contactId: string): { key: Buffer; wrapped: string } {
  const master = masterKeys[0];
  if (!master) throw new Error('no master key configured');
  const key = randomSlice(32);
  return { key, wrapped: `${master.version}:${seal(master.key, key.toString('base64'), contactId)}` };
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
  return seal(contactKey, JSON.stringify(data));
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
