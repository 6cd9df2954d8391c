import type { Kysely, Transaction } from 'kysely';
import type { Tables } from '../storage/index.js';
import { ALL_SCOPE } from './suppression.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** Suppressions matching any of the hashes, for everything or for the given topics. */
export async function findSuppressions(
  db: Executor,
  hashes: string[],
  topicIds: string[],
): Promise<{ scope: string; reason: string }[]> {
  if (hashes.length === 0) return [];
  return db
    .selectFrom('suppressions')
    .select(['scope', 'reason'])
    .where('key_hash', 'in', hashes)
    .where('scope', 'in', [ALL_SCOPE, ...topicIds])
    .execute();
}

/** Adds suppression entries; an existing entry for the same hash and scope is kept. */
export async function insertSuppressions(
  db: Executor,
  rows: { key_hash: string; key_version: number; scope: string; reason: string; created_at: string; event_seq: number | null }[],
): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('suppressions')
    .values(rows)
    .onConflict((oc) => oc.columns(['key_hash', 'scope']).doNothing())
    .execute();
}
