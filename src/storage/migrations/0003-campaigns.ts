import type { Kysely } from 'kysely';

/**
 * Campaigns and their deliveries: one row per (campaign, contact), the record
 * of who was sent what, when, under which consent event (DESIGN.md, Delivery).
 * Schema builder only, so the same migration runs on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('campaigns')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('topic_id', 'text', (c) => c.notNull().references('topics.id'))
    .addColumn('template_name', 'text', (c) => c.notNull())
    .addColumn('template_version', 'integer')
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('from_address', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('scheduled_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text')
    .addColumn('finished_at', 'text')
    .addColumn('materialised_at', 'text')
    .execute();
  await db.schema.createIndex('campaigns_status').on('campaigns').columns(['status', 'scheduled_at']).execute();

  // No foreign key to contacts, like the ledger: the record of a send must
  // outlive whatever erasure does to the contact row.
  await db.schema
    .createTable('deliveries')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id'))
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('skip_reason', 'text')
    .addColumn('error', 'text')
    .addColumn('message_id', 'text')
    .addColumn('consent_event_seq', 'bigint')
    .addColumn('sent_at', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('deliveries_pk', ['campaign_id', 'contact_id'])
    .execute();
  await db.schema
    .createIndex('deliveries_claim')
    .on('deliveries')
    .columns(['campaign_id', 'status', 'next_attempt_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('deliveries').execute();
  await db.schema.dropTable('campaigns').execute();
}
