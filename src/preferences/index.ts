export { signLinkToken, verifyLinkToken, type LinkClaims, type LinkPurpose, type LinkVerification } from './link-token.js';
export type { PreferenceDeps, WithdrawalDeps } from './deps.js';
export { withdrawTopic, objectToAll, type WithdrawalInput, type WithdrawalOutcome } from './withdrawal.service.js';
export { isWithdrawable, oneClickChannel, withdrawalChannels, type WithdrawalChannel } from './withdrawal.js';
export { resolveLink, preferencesUrl, loadCentre, centreReceipt, withdrawFromCentre, subscribeFromCentre, type ResolvedLink, type CentreSubscription } from './centre.service.js';
export { newestFirst, type CentreView, type CentreTopic, type ConsentRecord, type TopicStatus } from './centre.js';
export { requestPreferenceLink, LINKS_PER_DAY, LINK_MAIL_KIND, type LinkRequestResult } from './link-request.service.js';
export { parseMultipartFields, ONE_CLICK_BODY_LIMIT } from './one-click.js';
export { inspectUnsubscribe, unsubscribeByLink, type UnsubscribeLink } from './unsubscribe.service.js';
