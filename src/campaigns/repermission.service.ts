import { AppError } from '../shared/errors.js';
import { findLatestConsentText, findTopicBySlug } from '../topics/index.js';
import { foldCounts, type Campaign, type CampaignCounts } from './campaign.js';
import { countDeliveries, findCampaign } from './campaign.repository.js';
import { createCampaign, startCampaign, type CampaignDeps } from './campaign.service.js';
import { checkRepermissionDates, REPERMISSION_SUBJECT, REPERMISSION_TEMPLATE, type RepermissionRow } from './repermission.js';
import { countAudienceStates, findReminderOf, findRepermission, insertRepermission } from './repermission.repository.js';

export interface RepermissionInput {
  topicSlug: string;
  /** After it, the unanswered lapse and the confirm link stops working. */
  deadline: Date;
  /** One reminder to those who have not answered; strictly between now and the deadline. */
  reminderAt?: Date | null;
  fromAddress: string;
}

/**
 * Creates a draft re-permission campaign: the campaign row (kind
 * 'repermission', no operator template: Assent writes the mail) and its
 * deadline and reminder, in one transaction. The topic must have a consent
 * text, since the confirm page shows it and the receipt names it (GDPR-04).
 */
export async function createRepermissionCampaign(
  deps: CampaignDeps,
  input: RepermissionInput,
): Promise<{ campaign: Campaign; repermission: RepermissionRow }> {
  const reminderAt = input.reminderAt ?? null;
  checkRepermissionDates({ deadline: input.deadline, reminderAt, now: deps.clock.now() });
  const topic = await findTopicBySlug(deps.db, input.topicSlug);
  if (!topic) throw new AppError('not_found', `no topic "${input.topicSlug}"`);
  if (!(await findLatestConsentText(deps.db, topic.id))) {
    throw new AppError('validation_failed', `topic "${input.topicSlug}" has no consent text to ask for`);
  }
  return deps.db.transaction().execute(async (trx) => {
    const campaign = await createCampaign(
      { ...deps, db: trx },
      { topicSlug: input.topicSlug, kind: 'repermission', templateName: REPERMISSION_TEMPLATE, subject: REPERMISSION_SUBJECT, fromAddress: input.fromAddress },
    );
    const repermission: RepermissionRow = {
      campaign_id: campaign.id,
      parent_id: null,
      deadline_at: input.deadline.toISOString(),
      reminder_at: reminderAt?.toISOString() ?? null,
      reminder_sent_at: null,
      closed_at: null,
    };
    await insertRepermission(trx, repermission);
    return { campaign, repermission };
  });
}

/** Starts a re-permission campaign now; refused once its deadline has passed (the links would be dead on arrival). */
export async function startRepermissionCampaign(deps: CampaignDeps, id: string): Promise<Campaign> {
  const row = await findRepermission(deps.db, id);
  if (!row || row.parent_id !== null) throw new AppError('not_found', `no re-permission campaign "${id}"`);
  if (row.deadline_at <= deps.clock.now().toISOString()) throw new AppError('conflict', `the deadline of campaign ${id} has passed`);
  return startCampaign(deps, id);
}

export interface RepermissionStatus {
  id: string;
  status: string;
  topic_id: string;
  deadline_at: string;
  reminder_at: string | null;
  reminder_sent_at: string | null;
  closed_at: string | null;
  /** Deliveries of the first request. */
  deliveries: CampaignCounts;
  /** Deliveries of the reminder, once it was made. */
  reminder: (CampaignCounts & { id: string; status: string }) | null;
  /** The audience by its consent state for the topic now: confirmed, imported (no answer yet), lapsed, withdrawn… */
  audience: Record<string, number>;
}

/** A re-permission campaign's deadline, reminder, deliveries, and how its audience answered. */
export async function repermissionStatus(deps: Pick<CampaignDeps, 'db'>, id: string): Promise<RepermissionStatus> {
  const [campaign, row] = await Promise.all([findCampaign(deps.db, id), findRepermission(deps.db, id)]);
  if (!campaign || !row || row.parent_id !== null) throw new AppError('not_found', `no re-permission campaign "${id}"`);
  const child = await findReminderOf(deps.db, id);
  const childCampaign = child ? await findCampaign(deps.db, child.campaign_id) : undefined;
  const audience: Record<string, number> = {};
  for (const { state, count } of await countAudienceStates(deps.db, { campaignId: id, topicId: campaign.topic_id })) audience[state] = count;
  return {
    id,
    status: campaign.status,
    topic_id: campaign.topic_id,
    deadline_at: row.deadline_at,
    reminder_at: row.reminder_at,
    reminder_sent_at: row.reminder_sent_at,
    closed_at: row.closed_at,
    deliveries: foldCounts(await countDeliveries(deps.db, id)),
    reminder: childCampaign
      ? { id: childCampaign.id, status: childCampaign.status, ...foldCounts(await countDeliveries(deps.db, childCampaign.id)) }
      : null,
    audience,
  };
}
