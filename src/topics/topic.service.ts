import { AppError } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import type { IdGenerator } from '../shared/ids.js';
import type { ConsentText, Db, Topic } from '../storage/index.js';
import { consentTextHash, consentTextSchema, topicInputSchema, type TopicInput } from './topic.js';
import {
  countConsentTexts,
  findLatestConsentText,
  findTopicBySlug,
  insertConsentText,
  insertTopic,
  listTopics as listTopicRows,
} from './topic.repository.js';

export interface TopicDeps {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
}

/** Creates a topic with its first consent text version. */
export async function addTopic(
  deps: TopicDeps,
  input: TopicInput & { consentText: string; locale: string },
): Promise<{ topic: Topic; text: ConsentText }> {
  const parsed = topicInputSchema.safeParse(input);
  if (!parsed.success) throw validation(parsed.error.issues[0]);
  const body = parseConsentText(input.consentText);
  const now = deps.clock.now().toISOString();
  const topic: Topic = {
    id: deps.newId(),
    slug: parsed.data.slug,
    name: parsed.data.name,
    description: parsed.data.description,
    is_public: parsed.data.isPublic ? 1 : 0,
    created_at: now,
  };
  const text = newTextRow(deps, { topicId: topic.id, version: 1, locale: input.locale, body, now });
  await deps.db.transaction().execute(async (trx) => {
    if (await findTopicBySlug(trx, topic.slug)) throw new AppError('conflict', `topic "${topic.slug}" already exists`);
    await insertTopic(trx, topic);
    await insertConsentText(trx, text);
  });
  return { topic, text };
}

/** Adds a new consent text version; earlier versions stay as they were. */
export async function addConsentText(deps: TopicDeps, input: { topicSlug: string; body: string; locale: string }): Promise<ConsentText> {
  const body = parseConsentText(input.body);
  return deps.db.transaction().execute(async (trx) => {
    const topic = await findTopicBySlug(trx, input.topicSlug);
    if (!topic) throw new AppError('not_found', `no topic "${input.topicSlug}"`);
    const latest = await findLatestConsentText(trx, topic.id);
    if (latest && latest.sha256 === consentTextHash(body) && latest.locale === input.locale) return latest;
    const text = newTextRow(deps, {
      topicId: topic.id,
      version: (latest?.version ?? 0) + 1,
      locale: input.locale,
      body,
      now: deps.clock.now().toISOString(),
    });
    await insertConsentText(trx, text);
    return text;
  });
}

export interface TopicListing extends Topic {
  consent_text_versions: number;
}

/** Every topic with its number of consent text versions. */
export async function listTopics(deps: Pick<TopicDeps, 'db'>): Promise<TopicListing[]> {
  const [topics, counts] = await Promise.all([listTopicRows(deps.db), countConsentTexts(deps.db)]);
  const byTopic = new Map(counts.map((c) => [c.topic_id, c.versions]));
  return topics.map((t) => ({ ...t, consent_text_versions: byTopic.get(t.id) ?? 0 }));
}

function parseConsentText(body: string): string {
  const parsed = consentTextSchema.safeParse(body);
  if (!parsed.success) throw validation(parsed.error.issues[0]);
  return parsed.data.normalize('NFC');
}

function newTextRow(
  deps: TopicDeps,
  v: { topicId: string; version: number; locale: string; body: string; now: string },
): ConsentText {
  return {
    id: deps.newId(),
    topic_id: v.topicId,
    version: v.version,
    locale: v.locale,
    body: v.body,
    sha256: consentTextHash(v.body),
    created_at: v.now,
  };
}

function validation(issue: { path: PropertyKey[]; message: string } | undefined): AppError {
  const field = issue?.path.map(String).join('.') || 'input';
  return new AppError('validation_failed', `${field}: ${issue?.message ?? 'invalid'}`, { field });
}
