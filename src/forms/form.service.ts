import { z } from 'zod';
import { AppError } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import type { IdGenerator } from '../shared/ids.js';
import type { Db, Form } from '../storage/index.js';
import { slugSchema } from '../topics/topic.js';
import { findConsentTextVersion, findLatestConsentText, findTopicBySlug } from '../topics/index.js';
import { findFormTopics, findLatestForm, insertForm, listLatestForms } from './form.repository.js';

export interface FormDeps {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
}

const formInputSchema = z.object({
  slug: slugSchema,
  title: z.string().trim().min(1, 'a form needs a title').max(200),
  /** Each topic, optionally pinned to a consent text version (default: newest). */
  topics: z
    .array(z.object({ slug: slugSchema, textVersion: z.number().int().min(1).optional() }))
    .min(1, 'a form offers at least one topic'),
});

export type FormInput = z.input<typeof formInputSchema>;

export interface LoadedForm {
  form: Form;
  topics: Awaited<ReturnType<typeof findFormTopics>>;
}

/**
 * Adds a form, or a new version of it when the slug exists: versions are
 * immutable, so an event's form version always shows what the person saw.
 */
export async function addForm(deps: FormDeps, input: FormInput): Promise<LoadedForm> {
  const parsed = formInputSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AppError('validation_failed', `${issue?.path.join('.') || 'form'}: ${issue?.message}`);
  }
  const { slug, title, topics } = parsed.data;
  if (new Set(topics.map((t) => t.slug)).size !== topics.length) {
    throw new AppError('validation_failed', 'topics: a form offers each topic once (GDPR Recital 43: one box per purpose)');
  }
  const formId = await deps.db.transaction().execute(async (trx) => {
    const links = [];
    for (const [position, t] of topics.entries()) {
      const topic = await findTopicBySlug(trx, t.slug);
      if (!topic) throw new AppError('not_found', `no topic "${t.slug}"`);
      const text = t.textVersion
        ? await findConsentTextVersion(trx, topic.id, t.textVersion)
        : await findLatestConsentText(trx, topic.id);
      if (!text) throw new AppError('not_found', `topic "${t.slug}" has no consent text version ${t.textVersion ?? ''}`.trim());
      links.push({ topic_id: topic.id, consent_text_id: text.id, position });
    }
    const previous = await findLatestForm(trx, slug);
    const form: Form = {
      id: deps.newId(),
      slug,
      version: (previous?.version ?? 0) + 1,
      title,
      created_at: deps.clock.now().toISOString(),
    };
    await insertForm(trx, form, links);
    return form.id;
  });
  const loaded = await loadForm(deps, slug);
  if (!loaded || loaded.form.id !== formId) throw new AppError('conflict', `form "${slug}" changed while it was being saved`);
  return loaded;
}

/** The newest version of a form with its topics and texts. */
export async function loadForm(deps: Pick<FormDeps, 'db'>, slug: string): Promise<LoadedForm | undefined> {
  const form = await findLatestForm(deps.db, slug);
  if (!form) return undefined;
  return { form, topics: await findFormTopics(deps.db, form.id) };
}

/** The newest version of every form. */
export async function listForms(deps: Pick<FormDeps, 'db'>): Promise<LoadedForm[]> {
  const forms = await listLatestForms(deps.db);
  return Promise.all(forms.map(async (form) => ({ form, topics: await findFormTopics(deps.db, form.id) })));
}
