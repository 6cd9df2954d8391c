import type { Kysely, Transaction } from 'kysely';
import type { ConsentText, Tables, Topic } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** Every public topic, and the given others (topics the person holds a state for), by name. */
export async function findCentreTopics(db: Executor, heldTopicIds: string[]): Promise<Topic[]> {
  return db
    .selectFrom('topics')
    .selectAll()
    .where((eb) => (heldTopicIds.length === 0 ? eb('is_public', '=', 1) : eb.or([eb('is_public', '=', 1), eb('id', 'in', heldTopicIds)])))
    .orderBy('name')
    .orderBy('slug')
    .execute();
}

/** Every consent text version of the given topics, newest first. */
export async function findTextsOfTopics(db: Executor, topicIds: string[]): Promise<ConsentText[]> {
  if (topicIds.length === 0) return [];
  return db.selectFrom('consent_texts').selectAll().where('topic_id', 'in', topicIds).orderBy('version', 'desc').execute();
}

/** System mails of one kind sent to a contact since a time (the link-request throttle). */
export async function countMailsSince(db: Executor, input: { contactId: string; kind: string; since: string }): Promise<number> {
  const row = await db
    .selectFrom('mail_log')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('contact_id', '=', input.contactId)
    .where('kind', '=', input.kind)
    .where('created_at', '>', input.since)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
