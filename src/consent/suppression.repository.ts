import type { Kysely, Transaction } from 'kysely';
import type { Tables } from '../storage/index.js';
import { selfLiftableReasons } from './gate.js';
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

/**
 * Adds suppression entries. An existing entry for the same hash and scope is
 * kept, except that a reason the person can lift with a fresh opt-in of
 * their own (an unsubscribe or objection) gives way to one they cannot (a
 * bounce, a complaint, erasure, restriction): a complaint that arrives after
 * an unsubscribe must still hold the address for good. Suppression errs
 * towards not sending (DESIGN.md).
 */
export async function insertSuppressions(db: Executor, rows: SuppressionRow[]): Promise<void> {
  if (rows.length === 0) return;
  const liftable = [...selfLiftableReasons];
  // One row per key in a statement (PostgreSQL refuses to update a row twice in one): the first, unless a later one cannot be lifted and it can.
  const unique = new Map<string, SuppressionRow>();
  for (const row of rows) {
    const key = `${row.key_hash}\u0000${row.scope}`;
    const seen = unique.get(key);
    if (!seen || (liftable.includes(seen.reason) && !liftable.includes(row.reason))) unique.set(key, row);
  }
  await db
    .insertInto('suppressions')
    .values([...unique.values()])
    .onConflict((oc) =>
      oc
        .columns(['key_hash', 'scope'])
        .doUpdateSet((eb) => ({ reason: eb.ref('excluded.reason'), created_at: eb.ref('excluded.created_at'), event_seq: eb.ref('excluded.event_seq') }))
        .where('suppressions.reason', 'in', liftable)
        .where((eb) => eb.not(eb(eb.ref('excluded.reason'), 'in', liftable))),
    )
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
