import type { Kysely, Transaction } from 'kysely';
import type { Form, Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** The newest version of a form. */
export async function findLatestForm(db: Executor, slug: string): Promise<Form | undefined> {
  return db.selectFrom('forms').selectAll().where('slug', '=', slug).orderBy('version', 'desc').limit(1).executeTakeFirst();
}

/** A form version by id. */
export async function findFormById(db: Executor, id: string): Promise<Form | undefined> {
  return db.selectFrom('forms').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The newest version of every form. */
export async function listLatestForms(db: Executor): Promise<Form[]> {
  const rows = await db.selectFrom('forms').selectAll().orderBy('slug').orderBy('version', 'desc').execute();
  const seen = new Set<string>();
  return rows.filter((f) => (seen.has(f.slug) ? false : (seen.add(f.slug), true)));
}

/** The topics a form version offers, with the consent text shown for each, in order. */
export async function findFormTopics(db: Executor, formId: string) {
  return db
    .selectFrom('form_topics')
    .innerJoin('topics', 'topics.id', 'form_topics.topic_id')
    .innerJoin('consent_texts', 'consent_texts.id', 'form_topics.consent_text_id')
    .select([
      'topics.id as topic_id',
      'topics.slug as topic_slug',
      'topics.name as topic_name',
      'topics.description as topic_description',
      'consent_texts.id as text_id',
      'consent_texts.version as text_version',
      'consent_texts.body as text_body',
      'consent_texts.sha256 as text_sha256',
      'form_topics.position as position',
    ])
    .where('form_topics.form_id', '=', formId)
    .orderBy('form_topics.position')
    .execute();
}

/** Stores a form version and the topics it offers. */
export async function insertForm(
  db: Executor,
  form: Form,
  topics: { topic_id: string; consent_text_id: string; position: number }[],
): Promise<void> {
  await db.insertInto('forms').values(form).execute();
  await db
    .insertInto('form_topics')
    .values(topics.map((t) => ({ ...t, form_id: form.id })))
    .execute();
}
