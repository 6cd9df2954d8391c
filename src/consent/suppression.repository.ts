import type { Kysely, Transaction } from 'kysely';
import type { Tables } from '../storage/index.js';
import { ALL_SCOPE, type SuppressionRow } from './suppression.js';

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
export async function insertSuppressions(db: Executor, rows: SuppressionRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('suppressions')
    .values(rows)
    .onConflict((oc) => oc.columns(['key_hash', 'scope']).doNothing())
    .execute();
}

/**
 * Whole entries matching any of the hashes in the given scopes, oldest
 * first: what the one lifting path (a confirmed re-subscription from the
 * person's own preference centre) must inspect before deleting anything.
 */
export async function findSuppressionRows(db: Executor, hashes: string[], scopes: string[]): Promise<SuppressionRow[]> {
  if (hashes.length === 0 || scopes.length === 0) return [];
  return db
    .selectFrom('suppressions')
    .select(['key_hash', 'key_version', 'scope', 'reason', 'created_at', 'event_seq'])
    .where('key_hash', 'in', hashes)
    .where('scope', 'in', scopes)
    .orderBy('created_at')
    .orderBy('key_hash')
    .execute();
}

/** Deletes exactly the given entries (by hash, scope and reason, so a row of another reason is never touched). */
export async function deleteSuppressionRows(db: Executor, rows: SuppressionRow[]): Promise<void> {
  for (const row of rows) {
    await db
      .deleteFrom('suppressions')
      .where('key_hash', '=', row.key_hash)
      .where('scope', '=', row.scope)
      .where('reason', '=', row.reason)
      .execute();
  }
}
