import type { Kysely, Transaction } from 'kysely';
import type { ConsentStateRow, Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** A contact's current state for each topic that has one. */
export async function findStates(db: Executor, contactId: string): Promise<ConsentStateRow[]> {
  return db.selectFrom('consent_states').selectAll().where('contact_id', '=', contactId).execute();
}
