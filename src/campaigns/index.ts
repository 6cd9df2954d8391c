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
export { createRepermissionCampaign, startRepermissionCampaign, repermissionStatus, type RepermissionInput, type RepermissionStatus } from './repermission.service.js';
export { runRepermissionJobs, type RepermissionJobReport } from './repermission-jobs.service.js';
export { inspectRepermission, confirmRepermission, type RepermissionDeps, type RepermissionView, type RepermissionAnswer } from './repermission-confirm.service.js';
export { formatDate as formatDeadline } from './repermission-mail.js';
export { stateChangingMerges, probableDuplicates, mergeProbableDuplicates, type DedupeDeps, type MergeReportRow, type ProbableDuplicate, type MergeOutcome } from './dedupe.service.js';
export { mergeTopicStates, winningState, precedence, csvLine, OPERATOR_MERGE, type TopicMerge, type MergeChange } from './dedupe.js';
