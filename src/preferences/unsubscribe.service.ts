import { findTopicsByIds } from '../topics/index.js';
import type { Contact, Topic } from '../storage/index.js';
import { resolveLink } from './centre.service.js';
import type { PreferenceDeps } from './deps.js';
import type { LinkClaims } from './link-token.js';
import { withdrawTopic, type WithdrawalOutcome } from './withdrawal.service.js';
import type { WithdrawalChannel } from './withdrawal.js';

export interface UnsubscribeLink {
  claims: LinkClaims;
  contact: Contact;
  topic: Topic;
}

/** What an unsubscribe link names, or null (one neutral answer for every failure). Reads only. */
export async function inspectUnsubscribe(deps: PreferenceDeps, token: unknown): Promise<UnsubscribeLink | null> {
  const link = await resolveLink(deps, token, 'unsubscribe');
  if (!link?.claims.topicId) return null;
  const [topic] = await findTopicsByIds(deps.db, [link.claims.topicId]);
  return topic ? { ...link, topic } : null;
}

/**
 * The POST on an unsubscribe link (RFC 8058 one-click, or our page's
 * button): withdraws the topic the token names, committed before it returns.
 */
export async function unsubscribeByLink(
  deps: PreferenceDeps,
  input: { token: unknown; channel: WithdrawalChannel; ip: string; userAgent: string },
): Promise<(UnsubscribeLink & { outcome: WithdrawalOutcome }) | null> {
  const link = await inspectUnsubscribe(deps, input.token);
  if (!link) return null;
  const outcome = await withdrawTopic(deps, {
    contactId: link.contact.id,
    topicId: link.topic.id,
    channel: input.channel,
    ...(link.claims.campaignId === undefined ? {} : { campaignId: link.claims.campaignId }),
    ip: input.ip,
    userAgent: input.userAgent,
  });
  return { ...link, outcome };
}
