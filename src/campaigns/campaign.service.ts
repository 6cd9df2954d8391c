import type { Clock } from '../shared/clock.js';
import type { IdGenerator } from '../shared/ids.js';
import { AppError } from '../shared/errors.js';
import type { Db } from '../storage/index.js';
import { findTopicBySlug } from '../topics/index.js';
import { audienceState, campaignKinds, foldCounts, transition, type Campaign, type CampaignAction, type CampaignCounts, type CampaignKind } from './campaign.js';
import {
  countDeliveries,
  findCampaign,
  findDueCampaigns,
  findUnmaterialisedCampaigns,
  finishDrainedCampaigns,
  insertCampaign,
  setMaterialised,
  skipQueuedDeliveries,
  updateCampaignStatus,
} from './campaign.repository.js';
import { materialiseAudience } from './audience.repository.js';

export interface CampaignDeps {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
}

export interface CampaignInput {
  topicSlug: string;
  kind?: CampaignKind;
  templateName: string;
  templateVersion?: number | null;
  subject: string;
  fromAddress: string;
}

/** Creates a draft campaign for a topic. */
export async function createCampaign(deps: CampaignDeps, input: CampaignInput): Promise<Campaign> {
  const kind = input.kind ?? 'regular';
  if (!campaignKinds.includes(kind)) throw new AppError('validation_failed', `unknown campaign kind "${kind}"`);
  for (const [field, value] of [['subject', input.subject], ['template', input.templateName]] as const) {
    if (value.trim() === '') throw new AppError('validation_failed', `the campaign needs a ${field}`);
  }
  if (!/^[^@\s]+@[^@\s]+$/.test(input.fromAddress.replace(/^.*<([^>]+)>\s*$/, '$1'))) {
    throw new AppError('validation_failed', `"${input.fromAddress}" is not a sender address`);
  }
  const topic = await findTopicBySlug(deps.db, input.topicSlug);
  if (!topic) throw new AppError('not_found', `no topic "${input.topicSlug}"`);
  const campaign: Campaign = {
    id: deps.newId(),
    kind,
    topic_id: topic.id,
    template_name: input.templateName,
    template_version: input.templateVersion ?? null,
    subject: input.subject,
    from_address: input.fromAddress,
    status: 'draft',
    scheduled_at: null,
    created_at: deps.clock.now().toISOString(),
    started_at: null,
    finished_at: null,
    materialised_at: null,
  };
  await insertCampaign(deps.db, campaign);
  return campaign;
}

/** Schedules (or reschedules) a campaign; a worker starts it once `at` has come. */
export async function scheduleCampaign(deps: CampaignDeps, id: string, at: Date): Promise<Campaign> {
  if (Number.isNaN(at.getTime())) throw new AppError('validation_failed', 'the schedule time is not a valid date');
  return act(deps, id, 'schedule', { scheduled_at: at.toISOString() });
}

/** Starts sending now: the campaign becomes claimable and its audience is materialised. */
export async function startCampaign(deps: CampaignDeps, id: string): Promise<Campaign> {
  const campaign = await act(deps, id, 'start', { started_at: deps.clock.now().toISOString() });
  await ensureMaterialised(deps, campaign);
  return (await findCampaign(deps.db, id)) ?? campaign;
}

/** Stops claims; messages already in flight finish. */
export const pauseCampaign = (deps: CampaignDeps, id: string) => act(deps, id, 'pause', {});
export const resumeCampaign = (deps: CampaignDeps, id: string) => act(deps, id, 'resume', {});

/** Cancels for good; what was still queued is recorded as skipped 'cancelled'. */
export async function cancelCampaign(deps: CampaignDeps, id: string): Promise<Campaign> {
  const now = deps.clock.now().toISOString();
  const campaign = await act(deps, id, 'cancel', { finished_at: now });
  await skipQueuedDeliveries(deps.db, { campaignId: id, now });
  return campaign;
}

export interface CampaignStatusReport extends CampaignCounts {
  id: string;
  status: string;
}

/** The campaign's status with its delivery counts. */
export async function campaignStatus(deps: Pick<CampaignDeps, 'db'>, id: string): Promise<CampaignStatusReport> {
  const campaign = await findCampaign(deps.db, id);
  if (!campaign) throw new AppError('not_found', `no campaign "${id}"`);
  return { id, status: campaign.status, ...foldCounts(await countDeliveries(deps.db, id)) };
}

/**
 * Worker housekeeping: starts scheduled campaigns whose time has come,
 * re-runs a materialisation a crash interrupted, and marks sent the
 * campaigns with nothing left to send. Safe to run from many workers.
 */
export async function advanceCampaigns(deps: CampaignDeps): Promise<{ started: string[]; finished: string[] }> {
  const now = deps.clock.now().toISOString();
  const started: string[] = [];
  for (const due of await findDueCampaigns(deps.db, now)) {
    if (await updateCampaignStatus(deps.db, { id: due.id, from: due.status, patch: { status: transition(due.status, 'start'), started_at: now } })) {
      started.push(due.id);
    }
  }
  for (const campaign of await findUnmaterialisedCampaigns(deps.db)) await ensureMaterialised(deps, campaign);
  const finished = await finishDrainedCampaigns(deps.db, now);
  return { started, finished };
}

async function ensureMaterialised(deps: CampaignDeps, campaign: Campaign): Promise<void> {
  if (campaign.materialised_at !== null) return;
  const now = deps.clock.now().toISOString();
  await materialiseAudience(deps.db, { campaignId: campaign.id, topicId: campaign.topic_id, state: audienceState(campaign.kind), now });
  await setMaterialised(deps.db, { id: campaign.id, now });
}

/** Loads, asks the lifecycle table, and saves with a compare-and-set on the status read. */
async function act(deps: CampaignDeps, id: string, action: CampaignAction, patch: Partial<Campaign>): Promise<Campaign> {
  const campaign = await findCampaign(deps.db, id);
  if (!campaign) throw new AppError('not_found', `no campaign "${id}"`);
  const status = transition(campaign.status, action);
  const updated = { ...campaign, ...patch, status };
  if (!(await updateCampaignStatus(deps.db, { id, from: campaign.status, patch: { ...patch, status } }))) {
    throw new AppError('conflict', `campaign ${id} changed while it was being ${action}d; try again`);
  }
  return updated;
}
