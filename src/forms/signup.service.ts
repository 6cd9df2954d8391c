import { createHash } from 'node:crypto';
import { randomToken } from '../shared/ids.js';
import { hmacHex } from '../shared/crypto.js';
import {
  createContactKey,
  findContactByMatchKey,
  insertContact,
  insertContactKey,
  parseAddress,
  sealPersonal,
  unwrapContactKey,
  findContactKey,
} from '../contacts/index.js';
import { ALL_SCOPE, checkGate, findStates, findSuppressions, lookupHashes, withLedger, type EventDraft, type SendPurpose } from '../consent/index.js';
import { composeMessage, makeMessageId } from '../delivery/compose.js';
import type { Contact } from '../storage/index.js';
import { mailDomain, type SignupDeps } from './deps.js';
import { loadForm, type LoadedForm } from './form.service.js';
import { confirmationMail } from './mails.js';
import { planSignup, type SignupInput, type SignupResult } from './signup.js';
import { countTokensSince, findPendingTopicIds, insertToken } from './token.repository.js';

const DAY_MS = 86_400_000;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Handles a form submission: validates, records `requested` for each newly
 * ticked topic with its evidence, stores a hashed single-use token and mails
 * the confirmation link. Invalid input records nothing.
 */
export async function submitSignup(deps: SignupDeps, input: SignupInput): Promise<SignupResult> {
  const loaded = await loadForm(deps, input.formSlug);
  if (!loaded) return { kind: 'form_not_found' };
  const parsed = parseAddress(input.address);
  const offered = new Map(loaded.topics.map((t) => [t.topic_slug, t]));
  const ticked = [...new Set(input.topics)].filter((slug) => offered.has(slug));
  const errors: { field: 'address' | 'topics'; messageKey: string }[] = [];
  if (!parsed.ok) errors.push({ field: 'address', messageKey: 'form.error.address' });
  if (ticked.length === 0 || ticked.length !== new Set(input.topics).size) {
    errors.push({ field: 'topics', messageKey: 'form.error.topics' });
  }
  if (!parsed.ok || errors.length > 0) return { kind: 'invalid', errors };

  const now = deps.clock.now();
  const throttleKey = hmacHex(deps.keys.suppressionKeys[0]!.key, `throttle:${parsed.providerKey ?? parsed.matchKey}`);
  const token = randomToken();
  const messageId = makeMessageId(`confirm.${deps.newId()}`, mailDomain(deps));
  const outcome = await withLedger(deps.db, async (trx, ledger) => {
    const requestedTopicIds = ticked.map((slug) => offered.get(slug)!.topic_id);
    const suppressions = await findSuppressions(trx, lookupHashes(deps.keys.suppressionKeys, parsed.matchKey), requestedTopicIds);
    let contact = await findContactByMatchKey(trx, parsed.matchKey);
    const states = new Map((contact ? await findStates(trx, contact.id) : []).map((s) => [s.topic_id, s.state]));
    const pending = contact ? await findPendingTopicIds(trx, contact.id, now.toISOString()) : new Set<string>();
    const plan = planSignup({
      requestedTopicIds,
      states,
      pending,
      suppressed: suppressions.some((x) => x.scope === ALL_SCOPE) || contact?.erased_at != null,
      suppressedTopics: new Set(suppressions.map((x) => x.scope)),
      confirmationsToday: await countTokensSince(trx, throttleKey, new Date(now.getTime() - DAY_MS).toISOString()),
      confirmationsPerDay: deps.settings.confirmationsPerDay,
    });
    if (!plan.send) return { plan, contact: undefined };

    let contactKey: Buffer;
    if (!contact) {
      contact = newContact(deps, parsed, input.locale, now);
      await insertContact(trx, contact);
      const created = createContactKey(deps.keys.masterKeys, contact.id);
      await insertContactKey(trx, { contact_id: contact.id, wrapped_key: created.wrapped, created_at: now.toISOString() });
      contactKey = created.key;
    } else {
      contactKey = unwrapContactKey(deps.keys.masterKeys, contact.id, (await findContactKey(trx, contact.id))!);
    }
    const tokenId = deps.newId();
    const personal = sealPersonal(contactKey, { address: parsed.address, ip: input.ip, user_agent: input.userAgent });
    await ledger.append(
      plan.topicIds.map((topicId) => requestedEvent(deps, { loaded, topicId, contact: contact!, tokenId, messageId, personal, now })),
    );
    await insertToken(trx, {
      id: tokenId,
      token_hash: hashToken(token),
      contact_id: contact.id,
      form_id: loaded.form.id,
      topic_ids: JSON.stringify(plan.topicIds),
      throttle_key: throttleKey,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + deps.settings.confirmationTtlDays * DAY_MS).toISOString(),
      used_at: null,
    });
    return { plan, contact };
  });

  if (!outcome.plan.send || !outcome.contact) {
    deps.logger.info({ form: input.formSlug, outcome: outcome.plan.send ? 'sent' : outcome.plan.reason }, 'sign-up accepted');
    return { kind: 'accepted', sent: false, skipped: outcome.plan.send ? undefined : outcome.plan.reason };
  }
  const topicIds = outcome.plan.topicIds;
  await sendConfirmation(deps, {
    contact: outcome.contact,
    topicNames: loaded.topics.filter((t) => topicIds.includes(t.topic_id)).map((t) => t.topic_name),
    topicIds,
    token,
    messageId,
    locale: input.locale,
  });
  return { kind: 'accepted', sent: true };
}

function requestedEvent(
  deps: SignupDeps,
  v: { loaded: LoadedForm; topicId: string; contact: Contact; tokenId: string; messageId: string; personal: string; now: Date },
): EventDraft {
  const offered = v.loaded.topics.find((t) => t.topic_id === v.topicId)!;
  return {
    id: deps.newId(),
    contactId: v.contact.id,
    topicId: v.topicId,
    type: 'requested',
    occurredAt: v.now,
    evidence: {
      method: 'web_form',
      actor: 'subject',
      form_id: v.loaded.form.id,
      form_slug: v.loaded.form.slug,
      form_version: v.loaded.form.version,
      consent_text_id: offered.text_id,
      consent_text_version: offered.text_version,
      consent_text_sha256: offered.text_sha256,
      token_id: v.tokenId,
      message_id: v.messageId,
      personal: v.personal,
    },
  };
}

function newContact(deps: SignupDeps, parsed: { address: string; matchKey: string; providerKey: string | null }, locale: string, now: Date): Contact {
  return {
    id: deps.newId(),
    address: parsed.address,
    match_key: parsed.matchKey,
    provider_key: parsed.providerKey,
    locale,
    created_at: now.toISOString(),
    erased_at: null,
  };
}

async function sendConfirmation(
  deps: SignupDeps,
  v: { contact: Contact; topicNames: string[]; topicIds: string[]; token: string; messageId: string; locale: string },
): Promise<void> {
  // The contact's stored language wins over the page's (an existing contact signing up again).
  const locale = v.contact.locale ?? v.locale;
  const mail = confirmationMail({
    locale,
    controller: deps.settings.controller.name,
    topicNames: v.topicNames,
    confirmUrl: `${deps.settings.publicUrl}/confirm/${v.token}`,
    ttlDays: deps.settings.confirmationTtlDays,
  });
  await deliverSystemMail(deps, {
    contact: v.contact,
    gate: { purpose: 'confirmation', topicIds: v.topicIds },
    kind: 'confirmation',
    messageId: v.messageId,
    mail,
    locale,
  });
}

/**
 * Composes and hands a system mail to the transport, logging it against the
 * contact. The send gate is asked first, like every send path: the mail goes
 * only if some topic it concerns is in the state its purpose needs. A
 * transport failure is logged, not thrown: the ledger already holds the
 * truth, and the person can ask again.
 */
export async function deliverSystemMail(
  deps: SignupDeps,
  v: {
    contact: Contact;
    gate: { purpose: SendPurpose; topicIds: string[] };
    kind: string;
    messageId: string;
    mail: { subject: string; text: string; html: string };
    locale: string;
    attachments?: { filename: string; contentType: string; content: string }[];
  },
): Promise<boolean> {
  const decisions = await Promise.all(
    v.gate.topicIds.map((topicId) => checkGate(deps.db, deps.keys.suppressionKeys, { contact: v.contact, topicId, purpose: v.gate.purpose })),
  );
  const refused = decisions.find((d) => !d.allowed);
  if (!decisions.some((d) => d.allowed)) {
    deps.logger.warn({ kind: v.kind, reason: refused && !refused.allowed ? refused.reason : 'no_topic' }, 'system mail stopped by the send gate');
    return false;
  }
  const message = await composeMessage({
    from: deps.settings.mailFrom,
    to: v.contact.address!,
    subject: v.mail.subject,
    text: v.mail.text,
    html: v.mail.html,
    messageId: v.messageId,
    date: deps.clock.now(),
    locale: v.locale,
    attachments: v.attachments,
  });
  const result = await deps.transport.send(message);
  await deps.db
    .insertInto('mail_log')
    .values({ id: deps.newId(), contact_id: v.contact.id, kind: v.kind, message_id: v.messageId, created_at: deps.clock.now().toISOString() })
    .execute();
  if (result.status !== 'sent') {
    // Relays echo the recipient in their replies ("550 5.1.1 <a@b>: …"); addresses are never logged.
    const response = result.response.replace(/[^\s<>"'(),;:]+@[^\s<>"'(),;:]+/g, '[address]');
    deps.logger.warn({ kind: v.kind, status: result.status, response }, 'system mail not delivered');
    return false;
  }
  return true;
}
