/**
 * Contact names, opened for the places that address or show the person:
 * campaign rendering, template previews and the data export (GDPR Art. 15).
 * Names are sealed under the contact's evidence key like the rest of the
 * personal data, so erasure (deleting the key, Art. 17) shreds them too; an
 * erased contact simply has no names.
 */
import type { Kysely, Transaction } from 'kysely';
import { open, seal } from '../shared/crypto.js';
import type { Tables } from '../storage/index.js';
import { unwrapContactKey, type MasterKey } from './contact-keys.js';
import { findSealedNamesWithKeys } from './contact-names.repository.js';

export interface ContactNames {
  first_name: string | null;
  last_name: string | null;
}

/**
 * Bound into the sealed names, so names cannot be passed off as evidence or
 * the reverse. The import seals names through sealContactNames too.
 */
export const CONTACT_NAMES_AAD = 'contact_names';

/** Ids per query: far below SQLite's bound-parameter limit, so a claimed batch is one round trip. */
const IDS_PER_QUERY = 5000;

/** Seals names under a contact's key, as stored in `contact_names.sealed`. */
export function sealContactNames(contactKey: Buffer, names: ContactNames): string {
  return seal(contactKey, JSON.stringify({ first_name: names.first_name, last_name: names.last_name }), CONTACT_NAMES_AAD);
}

/**
 * The opened names of many contacts, keyed by contact id: one query per
 * 5000 ids, then two AES-GCM opens per row (the contact's key, the names).
 * Absent for a contact with no stored names, an erased contact (key gone),
 * or names its key cannot open (a master key missing from the
 * configuration) — the caller renders such names empty rather than failing.
 */
export async function readContactNames(
  db: Kysely<Tables> | Transaction<Tables>,
  masterKeys: MasterKey[],
  contactIds: readonly string[],
): Promise<Map<string, ContactNames>> {
  const ids = [...new Set(contactIds)];
  const out = new Map<string, ContactNames>();
  for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
    for (const row of await findSealedNamesWithKeys(db, ids.slice(i, i + IDS_PER_QUERY))) {
      const names = openNames(masterKeys, row);
      if (names) out.set(row.contact_id, names);
    }
  }
  return out;
}

function openNames(masterKeys: MasterKey[], row: { contact_id: string; sealed: string; wrapped_key: string }): ContactNames | null {
  try {
    const key = unwrapContactKey(masterKeys, row.contact_id, row.wrapped_key);
    const parsed = JSON.parse(open(key, row.sealed, CONTACT_NAMES_AAD)) as Partial<Record<keyof ContactNames, unknown>>;
    return { first_name: textOrNull(parsed.first_name), last_name: textOrNull(parsed.last_name) };
  } catch {
    return null;
  }
}

function textOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}
