export { classifyRefusal, type Classification, type BounceClass } from './smtp-classify.js';
export { recordSendRefusal, type FeedbackDeps } from './bounce.service.js';
