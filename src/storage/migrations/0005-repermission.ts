import type { Kysely } from 'kysely';

/**
 * Issue 5 points 3 and 4. Two side tables instead of new columns on
 * `campaigns` and `contacts`, so the existing row types (and every literal
 * built from them) stay as they are:
 *
 * - `repermission_campaigns`: what only a re-permission campaign has — its
 *   deadline, its one optional reminder, and when the deadline job closed it
 *   (stopped its sending and lapsed the unanswered). A reminder is a child
 *   campaign (its own deliveries, keyed (campaign_id, contact_id) like any
 *   other) whose row here names the parent and copies its deadline.
 * - `contact_merges`: a contact an operator merged into another (probable
 *   duplicates, ADR-07). The row is kept (its evidence, its key) but its
 *   consent states moved to the kept contact, so no audience includes it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('repermission_campaigns')
    .addColumn('campaign_id', 'text', (c) => c.primaryKey().references('campaigns.id'))
    .addColumn('parent_id', 'text', (c) => c.references('campaigns.id'))
    .addColumn('deadline_at', 'text', (c) => c.notNull())
    .addColumn('reminder_at', 'text')
    .addColumn('reminder_sent_at', 'text')
    .addColumn('closed_at', 'text')
    .execute();
  await db.schema.createIndex('repermission_campaigns_deadline').on('repermission_campaigns').columns(['closed_at', 'deadline_at']).execute();

  await db.schema
    .createTable('contact_merges')
    .addColumn('contact_id', 'text', (c) => c.primaryKey())
    .addColumn('merged_into', 'text', (c) => c.notNull())
    .addColumn('merged_at', 'text', (c) => c.notNull())
    .addColumn('event_seq', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('contact_merges_into').on('contact_merges').column('merged_into').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('contact_merges').execute();
  await db.schema.dropTable('repermission_campaigns').execute();
}
