import type { Kysely, Transaction } from 'kysely';
import type { ConsentText, Tables, Topic } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** A topic by slug. */
export async function findTopicBySlug(db: Executor, slug: string): Promise<Topic | undefined> {
  return db.selectFrom('topics').selectAll().where('slug', '=', slug).executeTakeFirst();
}

/** Topics by id. */
export async function findTopicsByIds(db: Executor, ids: string[]): Promise<Topic[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('topics').selectAll().where('id', 'in', ids).execute();
}

/** Every topic, by slug. */
export async function listTopics(db: Executor): Promise<Topic[]> {
  return db.selectFrom('topics').selectAll().orderBy('slug').execute();
}

/** Stores a new topic. */
export async function insertTopic(db: Executor, topic: Topic): Promise<void> {
  await db.insertInto('topics').values(topic).execute();
}

/** The newest consent text version of a topic. */
export async function findLatestConsentText(db: Executor, topicId: string): Promise<ConsentText | undefined> {
  return db
    .selectFrom('consent_texts')
    .selectAll()
    .where('topic_id', '=', topicId)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** One consent text version of a topic. */
export async function findConsentTextVersion(db: Executor, topicId: string, version: number): Promise<ConsentText | undefined> {
  return db
    .selectFrom('consent_texts')
    .selectAll()
    .where('topic_id', '=', topicId)
    .where('version', '=', version)
    .executeTakeFirst();
}

/** Consent texts by id. */
export async function findConsentTextsByIds(db: Executor, ids: string[]): Promise<ConsentText[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('consent_texts').selectAll().where('id', 'in', ids).execute();
}

/** Stores a consent text version; versions are never updated (immutable). */
export async function insertConsentText(db: Executor, text: ConsentText): Promise<void> {
  await db.insertInto('consent_texts').values(text).execute();
}

/** Number of consent text versions per topic, for listings. */
export async function countConsentTexts(db: Executor): Promise<{ topic_id: string; versions: number }[]> {
  const rows = await db
    .selectFrom('consent_texts')
    .select(['topic_id', (eb) => eb.fn.max('version').as('versions')])
    .groupBy('topic_id')
    .execute();
  return rows.map((r) => ({ topic_id: r.topic_id, versions: Number(r.versions) }));
}
