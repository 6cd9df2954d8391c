import type { Kysely, Transaction } from 'kysely';
import type { ConfirmationToken, Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** Stores a confirmation token (only its hash). */
export async function insertToken(db: Executor, token: ConfirmationToken): Promise<void> {
  await db.insertInto('confirmation_tokens').values(token).execute();
}

/** A token by the hash of its secret. */
export async function findTokenByHash(db: Executor, tokenHash: string): Promise<ConfirmationToken | undefined> {
  return db.selectFrom('confirmation_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

/** Marks a token used if it still is unused and unexpired; false when another request won. */
export async function consumeToken(db: Executor, id: string, now: string): Promise<boolean> {
  const result = await db
    .updateTable('confirmation_tokens')
    .set({ used_at: now })
    .where('id', '=', id)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Topic ids with an outstanding (unused, unexpired) confirmation for a contact. */
export async function findPendingTopicIds(db: Executor, contactId: string, now: string): Promise<Set<string>> {
  const rows = await db
    .selectFrom('confirmation_tokens')
    .select('topic_ids')
    .where('contact_id', '=', contactId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .execute();
  return new Set(rows.flatMap((r) => JSON.parse(r.topic_ids) as string[]));
}

/** Confirmation mails sent to one throttle key since a time (ABU-03). */
export async function countTokensSince(db: Executor, throttleKey: string, since: string): Promise<number> {
  const row = await db
    .selectFrom('confirmation_tokens')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('throttle_key', '=', throttleKey)
    .where('created_at', '>', since)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
