import { findKeptContactById } from '../contacts/index.js';
import { findEvent, findStates, findSuppressions, lookupHashes, readContactEvents, selfLiftableReasons } from '../consent/index.js';
import { reissueReceipt, requestTopicSubscription, type SubscriptionRequestResult } from '../forms/index.js';
import { findTopicBySlug } from '../topics/index.js';
import type { Contact } from '../storage/index.js';
import { buildCentreView, type CentreView } from './centre.js';
import type { PreferenceDeps } from './deps.js';
import { signLinkToken, verifyLinkToken, type LinkClaims, type LinkPurpose } from './link-token.js';
import { findCentreTopics, findTextsOfTopics } from './preferences.repository.js';
import { withdrawTopic, type WithdrawalOutcome } from './withdrawal.service.js';

export type ResolvedLink = { claims: LinkClaims; contact: Contact };

/**
 * A signed link and the living contact it names, or null for anything else:
 * bad MAC, wrong purpose, unknown or erased contact all look the same to the
 * caller, who answers with one neutral page (issue 4, point 2). A link
 * naming a contact an operator merged into another (mailed before the
 * merge) acts on the kept contact, where the person's states now are: an
 * unsubscribe through it must withdraw the consent that is still used.
 */
export async function resolveLink(deps: PreferenceDeps, token: unknown, purpose: LinkPurpose): Promise<ResolvedLink | null> {
  const verified = verifyLinkToken(deps.linkKeys, token, purpose);
  if (!verified.ok) return null;
  const contact = await findKeptContactById(deps.db, verified.claims.contactId);
  if (!contact || contact.erased_at !== null || !contact.match_key) return null;
  return { claims: verified.claims, contact };
}

/** A fresh preference-centre link for a contact (signed with the newest key). */
export function preferencesUrl(deps: Pick<PreferenceDeps, 'linkKeys' | 'settings'>, contactId: string): string {
  return `${deps.settings.publicUrl}/p/${signLinkToken(deps.linkKeys, { purpose: 'preferences', contactId })}`;
}

/** Everything the centre shows for one contact, read in one go. */
export async function loadCentre(deps: PreferenceDeps, contact: Contact): Promise<CentreView> {
  const [states, events, suppressions] = await Promise.all([
    findStates(deps.db, contact.id),
    readContactEvents(deps.db, contact.id),
    findSuppressions(deps.db, lookupHashes(deps.keys.suppressionKeys, contact.match_key!), []),
  ]);
  const topics = await findCentreTopics(deps.db, states.map((s) => s.topic_id));
  const texts = await findTextsOfTopics(deps.db, topics.map((t) => t.id));
  return buildCentreView({ contactId: contact.id, locale: contact.locale, topics, texts, states, events, suppressions, liftable: selfLiftableReasons });
}

/** Withdraws one topic named by slug from the centre; an unknown slug changes nothing. */
export async function withdrawFromCentre(
  deps: PreferenceDeps,
  input: { contact: Contact; topicSlug: string; ip: string; userAgent: string },
): Promise<{ outcome: WithdrawalOutcome; topicName: string | null }> {
  const topic = await findTopicBySlug(deps.db, input.topicSlug);
  if (!topic) return { outcome: 'unchanged', topicName: null };
  const outcome = await withdrawTopic(deps, {
    contactId: input.contact.id,
    topicId: topic.id,
    channel: 'preference_centre',
    ip: input.ip,
    userAgent: input.userAgent,
  });
  return { outcome, topicName: topic.name };
}

export type CentreSubscription = { kind: 'invalid' } | { kind: 'accepted'; result: SubscriptionRequestResult };

/**
 * Subscribing to more from the centre: only topics the centre offers this
 * person, and only through a double opt-in mail (GDPR Art. 7(1), ABU-04).
 */
export async function subscribeFromCentre(
  deps: PreferenceDeps,
  input: { contact: Contact; topicSlugs: string[]; ip: string; userAgent: string; locale: string },
): Promise<CentreSubscription> {
  const view = await loadCentre(deps, input.contact);
  const bySlug = new Map(view.topics.map((t) => [t.slug, t]));
  const chosen = [...new Set(input.topicSlugs)].map((slug) => bySlug.get(slug));
  // No box ticked, or a box for a topic the centre does not offer (a forged form).
  if (chosen.length === 0 || chosen.some((t) => t?.offered !== true)) return { kind: 'invalid' };
  const topicIds = chosen.map((t) => t!.id);
  const result = await requestTopicSubscription(deps, {
    contactId: input.contact.id,
    topicIds,
    ip: input.ip,
    userAgent: input.userAgent,
    locale: input.locale,
  });
  return { kind: 'accepted', result };
}

/** The signed receipt of one of this contact's confirmations, issued again; null for anything else. */
export async function centreReceipt(deps: PreferenceDeps, contact: Contact, eventId: string): Promise<string | null> {
  const event = await findEvent(deps.db, eventId);
  if (!event || event.contact_id !== contact.id) return null;
  return (await reissueReceipt(deps, { event, contact }))?.jws ?? null;
}
