import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Tables, TemplatesTable } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

export type TemplateRow = Selectable<TemplatesTable>;

/** The newest version of a template. */
export async function findLatestTemplate(db: Executor, name: string): Promise<TemplateRow | undefined> {
  return db.selectFrom('templates').selectAll().where('name', '=', name).orderBy('version', 'desc').limit(1).executeTakeFirst();
}

/** One version of a template. */
export async function findTemplateVersion(db: Executor, name: string, version: number): Promise<TemplateRow | undefined> {
  return db.selectFrom('templates').selectAll().where('name', '=', name).where('version', '=', version).executeTakeFirst();
}

/** Stores a template version; versions are never updated, so a campaign can name what it sent. */
export async function insertTemplate(db: Executor, row: TemplateRow): Promise<void> {
  await db.insertInto('templates').values(row).execute();
}

export type TemplateSummary = Omit<TemplateRow, 'source'>;

/** The newest version of every template, by name (without the sources). */
export async function listLatestTemplates(db: Executor): Promise<TemplateSummary[]> {
  return db
    .selectFrom('templates as t')
    .select(['t.id', 't.name', 't.version', 't.format', 't.sha256', 't.created_at'])
    .where(({ eb, selectFrom }) =>
      eb('t.version', '=', selectFrom('templates as v').select((v) => v.fn.max('v.version').as('latest')).whereRef('v.name', '=', 't.name')),
    )
    .orderBy('t.name')
    .execute();
}
