/**
 * Suppression keys: HMAC-SHA-256(secret, key), never the plain address.
 * A match key is checked under every alias the provider is known to fold
 * (Gmail dots, +tags, googlemail.com) and under every key version, so a
 * suppression outlives key rotation and errs towards not sending.
 */
import { hmacHex } from '../shared/crypto.js';
import { aliasKeys } from '../contacts/index.js';
import type { SuppressionsTable } from '../storage/index.js';

export interface SuppressionKey {
  version: number;
  key: Buffer;
}

/** Scope of a suppression: every marketing purpose, or one topic. */
export const ALL_SCOPE = 'all';

/** One stored entry: a keyed hash of an address (or alias), never the address; `event_seq` is the ledger event that wrote it, when one did. */
export type SuppressionRow = SuppressionsTable;

export type SuppressionReason = 'objected' | 'unsubscribed' | 'bounced' | 'complained' | 'erased' | 'restricted' | 'imported';

/** Every hash under which a suppression of this address could be stored. */
export function lookupHashes(keys: SuppressionKey[], matchKey: string): string[] {
  const out: string[] = [];
  for (const alias of aliasKeys(matchKey)) {
    for (const { key } of keys) out.push(hmacHex(key, alias));
  }
  return out;
}

/** The hashes to write when suppressing: every alias under the newest key. */
export function writeHashes(keys: SuppressionKey[], matchKey: string): { key_hash: string; key_version: number }[] {
  const newest = keys[0];
  if (!newest) throw new Error('no suppression key configured');
  return aliasKeys(matchKey).map((alias) => ({ key_hash: hmacHex(newest.key, alias), key_version: newest.version }));
}
