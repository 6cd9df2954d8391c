import { sql, type Kysely, type Transaction } from 'kysely';
import type { Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/**
 * Queues one delivery per contact holding `state` for the topic and not
 * erased, in ONE INSERT … SELECT inside the database, so the audience never
 * passes through this process's memory. ON CONFLICT DO NOTHING makes it
 * idempotent: a crash half-way is repaired by running it again. Suppressed
 * contacts are queued too: the gate in the claim skips them with a reason,
 * which is the record that they were held back. Returns rows inserted.
 */
export async function materialiseAudience(
  db: Executor,
  input: { campaignId: string; topicId: string; state: string; now: string },
): Promise<number> {
  const audience = db
    .selectFrom('consent_states')
    .innerJoin('contacts', 'contacts.id', 'consent_states.contact_id')
    .select([
      sql<string>`cast(${input.campaignId} as text)`.as('campaign_id'),
      'consent_states.contact_id',
      sql<string>`'queued'`.as('status'),
      sql<number>`0`.as('attempts'),
      sql<string>`cast(${input.now} as text)`.as('next_attempt_at'),
      sql<string>`cast(${input.now} as text)`.as('updated_at'),
    ])
    .where('consent_states.topic_id', '=', input.topicId)
    .where('consent_states.state', '=', input.state)
    .where('contacts.erased_at', 'is', null);
  const result = await db
    .insertInto('deliveries')
    .columns(['campaign_id', 'contact_id', 'status', 'attempts', 'next_attempt_at', 'updated_at'])
    .expression(audience)
    .onConflict((oc) => oc.columns(['campaign_id', 'contact_id']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0);
}
