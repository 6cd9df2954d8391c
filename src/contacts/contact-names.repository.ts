/**
 * SQL of contact names. Names are read together with the key that opens
 * them, so a batch of contacts costs one round trip, and an erased contact
 * (key deleted, GDPR Art. 17) drops out of the join.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** Sealed names of the contacts, each with its wrapped key; contacts without either are absent. */
export async function findSealedNamesWithKeys(
  db: Executor,
  contactIds: readonly string[],
): Promise<{ contact_id: string; sealed: string; wrapped_key: string }[]> {
  if (contactIds.length === 0) return [];
  return db
    .selectFrom('contact_names')
    .innerJoin('contact_keys', 'contact_keys.contact_id', 'contact_names.contact_id')
    .select(['contact_names.contact_id', 'contact_names.sealed', 'contact_keys.wrapped_key'])
    .where('contact_names.contact_id', 'in', contactIds)
    .execute();
}
