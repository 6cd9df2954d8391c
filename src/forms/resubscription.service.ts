import { randomToken } from '../shared/ids.js';
import { hmacHex } from '../shared/crypto.js';
import { findContactById, findContactKey, sealPersonal, unwrapContactKey } from '../contacts/index.js';
import { findStates, findSuppressions, lookupHashes, withLedger, type EventDraft } from '../consent/index.js';
import { makeMessageId } from '../delivery/compose.js';
import { findLatestConsentText, findTopicsByIds } from '../topics/index.js';
import type { Contact } from '../storage/index.js';
import { mailDomain, type SignupDeps } from './deps.js';
import { confirmationMail } from './mails.js';
import { CENTRE_FORM_ID, CENTRE_METHOD, planResubscription, type ResubscriptionSkip } from './resubscription.js';
import { deliverSystemMail, hashToken } from './signup.service.js';
import { countTokensSince, findPendingTopicIds, insertToken } from './token.repository.js';

const DAY_MS = 86_400_000;

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
 * (confirmation.service.ts).
 */
export async function requestTopicSubscription(deps: SignupDeps, input: SubscriptionRequest): Promise<SubscriptionRequestResult> {
  const now = deps.clock.now();
  const token = randomToken();
  const messageId = makeMessageId(`confirm.${deps.newId()}`, mailDomain(deps));
  const outcome = await withLedger(deps.db, async (trx, ledger) => {
    const contact = await findContactById(trx, input.contactId);
    if (!contact || contact.erased_at !== null || !contact.match_key || !contact.address) return { contact: undefined, plan: null };
    const wanted = [...new Set(input.topicIds)];
    const suppressions = await findSuppressions(trx, lookupHashes(deps.keys.suppressionKeys, contact.match_key), wanted);
    const throttleKey = hmacHex(deps.keys.suppressionKeys[0]!.key, `throttle:${contact.provider_key ?? contact.match_key}`);
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
    const personal = sealPersonal(key, { address: contact.address, ip: input.ip, user_agent: input.userAgent });
    const tokenId = deps.newId();
    const drafts: EventDraft[] = [];
    for (const topicId of plan.topicIds) {
      const text = await findLatestConsentText(trx, topicId);
      if (!text) throw new Error(`topic ${topicId} has no consent text`);
      drafts.push({
        id: deps.newId(),
        contactId: contact.id,
        topicId,
        type: 'requested',
        occurredAt: now,
        evidence: {
          method: CENTRE_METHOD,
          actor: 'subject',
          consent_text_id: text.id,
          consent_text_version: text.version,
          consent_text_sha256: text.sha256,
          token_id: tokenId,
          message_id: messageId,
          personal,
        },
      });
    }
    await ledger.append(drafts);
    await insertToken(trx, {
      id: tokenId,
      token_hash: hashToken(token),
      contact_id: contact.id,
      form_id: CENTRE_FORM_ID,
      topic_ids: JSON.stringify(plan.topicIds),
      throttle_key: throttleKey,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + deps.settings.confirmationTtlDays * DAY_MS).toISOString(),
      used_at: null,
    });
    return { contact, plan };
  });
  if (!outcome.contact || !outcome.plan) return { sent: false, reason: 'unknown_contact' };
  if (!outcome.plan.send) {
    deps.logger.info({ outcome: outcome.plan.reason }, 'preference-centre subscription not sent');
    return { sent: false, reason: outcome.plan.reason };
  }
  await mailConfirmation(deps, { contact: outcome.contact, topicIds: outcome.plan.topicIds, token, messageId, locale: input.locale });
  return { sent: true, topicIds: outcome.plan.topicIds };
}

async function mailConfirmation(deps: SignupDeps, v: { contact: Contact; topicIds: string[]; token: string; messageId: string; locale: string }) {
  const topics = await findTopicsByIds(deps.db, v.topicIds);
  const locale = v.contact.locale ?? v.locale;
  const mail = confirmationMail({
    locale,
    controller: deps.settings.controller.name,
    topicNames: v.topicIds.map((id) => topics.find((t) => t.id === id)?.name ?? ''),
    confirmUrl: `${deps.settings.publicUrl}/confirm/${v.token}`,
    ttlDays: deps.settings.confirmationTtlDays,
  });
  // 'self_service': the person asked from their own centre; an objection of
  // theirs does not stop this one mail, anything else does (consent/gate.ts).
  await deliverSystemMail(deps, {
    contact: v.contact,
    gate: { purpose: 'self_service', topicIds: v.topicIds },
    kind: 'confirmation',
    messageId: v.messageId,
    mail,
    locale,
  });
}
