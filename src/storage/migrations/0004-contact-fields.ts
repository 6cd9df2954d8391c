import { sql, type Kysely } from 'kysely';

/**
 * Contact names and resumable imports (issue 5). Schema builder only, so the
 * same migration runs on SQLite and PostgreSQL.
 *
 * Names live beside the contact, sealed under the contact's evidence key,
 * rather than as plain columns on `contacts`: erasure deletes that key, so a
 * name is shredded with the rest of the personal data (GDPR Art. 17) without
 * every erasure path having to know about it.
 *
 * An import is keyed by file hash, topic and parse options: running the same
 * file again finds its row and continues after `rows_done`, the last row of
 * the last committed batch, which each batch moves in its own ledger
 * transaction. `import_rows` holds the rows an import did not apply (errors,
 * suppressed, not subscribed) — reasons only, never an address — written in
 * the same transaction, so the report is exact however often it was resumed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('contact_names')
    .addColumn('contact_id', 'text', (c) => c.primaryKey().references('contacts.id'))
    .addColumn('sealed', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('imports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('file_name', 'text', (c) => c.notNull())
    .addColumn('file_sha256', 'text', (c) => c.notNull())
    .addColumn('topic_id', 'text', (c) => c.notNull().references('topics.id'))
    .addColumn('options', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('running', 'completed')`))
    .addColumn('rows_done', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .addColumn('summary', 'text', (c) => c.notNull())
    .addUniqueConstraint('imports_file_topic_options', ['file_sha256', 'topic_id', 'options'])
    .execute();

  await db.schema
    .createTable('import_rows')
    .addColumn('import_id', 'text', (c) => c.notNull().references('imports.id'))
    .addColumn('row', 'integer', (c) => c.notNull())
    .addColumn('line', 'integer', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('import_rows_pk', ['import_id', 'row'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('import_rows').execute();
  await db.schema.dropTable('imports').execute();
  await db.schema.dropTable('contact_names').execute();
}
