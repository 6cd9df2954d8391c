export {
  transition,
  transitions,
  audienceState,
  gatePurpose,
  foldCounts,
  campaignStatuses,
  campaignKinds,
  type Campaign,
  type Delivery,
  type CampaignStatus,
  type CampaignKind,
  type CampaignAction,
  type CampaignCounts,
} from './campaign.js';
export {
  createCampaign,
  scheduleCampaign,
  startCampaign,
  pauseCampaign,
  resumeCampaign,
  cancelCampaign,
  campaignStatus,
  advanceCampaigns,
  type CampaignDeps,
  type CampaignInput,
  type CampaignStatusReport,
} from './campaign.service.js';
export { findCampaign } from './campaign.repository.js';
export { preflightCampaign, type PreflightInput } from './preflight.js';
export { createCampaignRenderer, type RendererDeps, type RenderTarget } from './campaign-renderer.js';
