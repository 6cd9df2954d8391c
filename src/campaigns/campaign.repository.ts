import type { Kysely, Transaction, Updateable } from 'kysely';
import type { CampaignsTable, Tables } from '../storage/index.js';
import type { Campaign } from './campaign.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** Stores a new campaign. */
export async function insertCampaign(db: Executor, campaign: Campaign): Promise<void> {
  await db.insertInto('campaigns').values(campaign).execute();
}

/** A campaign by id. */
export async function findCampaign(db: Executor, id: string): Promise<Campaign | undefined> {
  return db.selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Moves a campaign from the status it was read in (compare-and-set), so two
 * admins or workers acting at once cannot both win; false when it lost.
 */
export async function updateCampaignStatus(
  db: Executor,
  input: { id: string; from: string; patch: Updateable<CampaignsTable> & { status: string } },
): Promise<boolean> {
  const result = await db
    .updateTable('campaigns')
    .set(input.patch)
    .where('id', '=', input.id)
    .where('status', '=', input.from)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Scheduled campaigns whose time has come. */
export async function findDueCampaigns(db: Executor, now: string): Promise<Campaign[]> {
  return db
    .selectFrom('campaigns')
    .selectAll()
    .where('status', '=', 'scheduled')
    .where('scheduled_at', '<=', now)
    .execute();
}

/** Sending campaigns whose audience was not (completely) materialised: a crash between start and the insert. */
export async function findUnmaterialisedCampaigns(db: Executor): Promise<Campaign[]> {
  return db.selectFrom('campaigns').selectAll().where('status', '=', 'sending').where('materialised_at', 'is', null).execute();
}

/** Records that the audience insert committed. */
export async function setMaterialised(db: Executor, input: { id: string; now: string }): Promise<void> {
  await db.updateTable('campaigns').set({ materialised_at: input.now }).where('id', '=', input.id).execute();
}

/** Marks sent every sending campaign with a complete audience and nothing left queued or claimed; returns their ids. */
export async function finishDrainedCampaigns(db: Executor, now: string): Promise<string[]> {
  const rows = await db
    .updateTable('campaigns')
    .set({ status: 'sent', finished_at: now })
    .where('status', '=', 'sending')
    .where('materialised_at', 'is not', null)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('deliveries')
            .select('deliveries.contact_id')
            .whereRef('deliveries.campaign_id', '=', 'campaigns.id')
            .where('deliveries.status', 'in', ['queued', 'claimed']),
        ),
      ),
    )
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

/** Delivery counts of a campaign by status and skip reason. */
export async function countDeliveries(
  db: Executor,
  campaignId: string,
): Promise<{ status: string; skip_reason: string | null; count: number }[]> {
  const rows = await db
    .selectFrom('deliveries')
    .select(({ fn }) => ['status', 'skip_reason', fn.countAll<number>().as('count')])
    .where('campaign_id', '=', campaignId)
    .groupBy(['status', 'skip_reason'])
    .execute();
  return rows.map((r) => ({ ...r, count: Number(r.count) }));
}

/** On cancel, what was still waiting will never be sent: skipped 'cancelled'. */
export async function skipQueuedDeliveries(db: Executor, input: { campaignId: string; now: string }): Promise<void> {
  await db
    .updateTable('deliveries')
    .set({ status: 'skipped', skip_reason: 'cancelled', lease_owner: null, lease_until: null, updated_at: input.now })
    .where('campaign_id', '=', input.campaignId)
    .where('status', 'in', ['queued', 'claimed'])
    .execute();
}
