import { randomToken } from '../shared/ids.js';
import { findContactKey, findKeptContactById, sealPersonal, unwrapContactKey } from '../contacts/index.js';
import { findStates, findSuppressions, lookupHashes, withLedger } from '../consent/index.js';
import { makeMessageId } from '../delivery/compose.js';
import { findLatestConsentText, findTopicsByIds } from '../topics/index.js';
import { DAY_MS, mailConfirmationLink, requestedEvents, storeConfirmationToken, throttleKeyOf } from './confirmation-request.js';
import { mailDomain, type SignupDeps } from './deps.js';
import { CENTRE_FORM_ID, CENTRE_METHOD, planResubscription, type ResubscriptionSkip } from './resubscription.js';
import { countTokensSince, findPendingTopicIds } from './token.repository.js';

export interface SubscriptionRequest {
  contactId: string;
  /** Topics the person ticked in their preference centre (the caller checks they are offered there). */
  topicIds: string[];
  ip: string;
  userAgent: string;
  locale: string;
}

export type SubscriptionRequestResult = { sent: true; topicIds: string[] } | { sent: false; reason: ResubscriptionSkip | 'unknown_contact' };

/**
 * A topic chosen in the preference centre: never subscribed directly, only
 * through a double opt-in. Records `requested` with the newest consent text
 * (the one the centre shows), stores a single-use token and mails the
 * confirmation link. The person may have objected before: the mail then goes
 * as 'self_service', and confirming it is what lifts their objection
 * (confirmation.service.ts). A contact merged into another asks through the
 * kept one, as a sign-up does.
 */
export async function requestTopicSubscription(deps: SignupDeps, input: SubscriptionRequest): Promise<SubscriptionRequestResult> {
  const now = deps.clock.now();
  const token = randomToken();
  const messageId = makeMessageId(`confirm.${deps.newId()}`, mailDomain(deps));
  const outcome = await withLedger(deps.db, async (trx, ledger) => {
    const contact = await findKeptContactById(trx, input.contactId);
    if (!contact || contact.erased_at !== null || !contact.match_key || !contact.address) return { contact: undefined, plan: null };
    const wanted = [...new Set(input.topicIds)];
    const suppressions = await findSuppressions(trx, lookupHashes(deps.keys.suppressionKeys, contact.match_key), wanted);
    const throttleKey = throttleKeyOf(deps, { providerKey: contact.provider_key, matchKey: contact.match_key });
    const plan = planResubscription({
      requestedTopicIds: wanted,
      states: new Map((await findStates(trx, contact.id)).map((s) => [s.topic_id, s.state])),
      pending: await findPendingTopicIds(trx, contact.id, now.toISOString()),
      suppressionReasons: suppressions.map((s) => s.reason),
      confirmationsToday: await countTokensSince(trx, throttleKey, new Date(now.getTime() - DAY_MS).toISOString()),
      confirmationsPerDay: deps.settings.confirmationsPerDay,
    });
    if (!plan.send) return { contact, plan };
    const key = unwrapContactKey(deps.keys.masterKeys, contact.id, (await findContactKey(trx, contact.id))!);
    const tokenId = deps.newId();
    const topics = [];
    for (const topicId of plan.topicIds) {
      const text = await findLatestConsentText(trx, topicId);
      if (!text) throw new Error(`topic ${topicId} has no consent text`);
      topics.push({ topicId, text });
    }
    await ledger.append(
      requestedEvents(deps, {
        origin: { method: CENTRE_METHOD },
        contactId: contact.id,
        topics,
        tokenId,
        messageId,
        personal: sealPersonal(key, { address: contact.address, ip: input.ip, user_agent: input.userAgent }),
        now,
      }),
    );
    await storeConfirmationToken(trx, deps, { id: tokenId, token, contactId: contact.id, formId: CENTRE_FORM_ID, topicIds: plan.topicIds, throttleKey, now });
    return { contact, plan };
  });
  if (!outcome.contact || !outcome.plan) return { sent: false, reason: 'unknown_contact' };
  if (!outcome.plan.send) {
    deps.logger.info({ outcome: outcome.plan.reason }, 'preference-centre subscription not sent');
    return { sent: false, reason: outcome.plan.reason };
  }
  const topics = await findTopicsByIds(deps.db, outcome.plan.topicIds);
  // 'self_service': the person asked from their own centre; an objection of
  // theirs does not stop this one mail, anything else does (consent/gate.ts).
  await mailConfirmationLink(deps, {
    contact: outcome.contact,
    topicNames: outcome.plan.topicIds.map((id) => topics.find((t) => t.id === id)?.name ?? ''),
    topicIds: outcome.plan.topicIds,
    token,
    messageId,
    locale: input.locale,
    purpose: 'self_service',
  });
  return { sent: true, topicIds: outcome.plan.topicIds };
}
