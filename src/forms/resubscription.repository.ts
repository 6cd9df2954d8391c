import type { Kysely, Transaction } from 'kysely';
import type { Tables } from '../storage/index.js';
import type { SuppressionRow } from './resubscription.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

// These two queries serve the one path that lifts a suppression (a confirmed
// re-subscription from the person's own preference centre); they belong with
// consent/suppression.repository.ts and can move there.

/** Whole suppression rows matching any of the hashes in the given scopes. */
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
