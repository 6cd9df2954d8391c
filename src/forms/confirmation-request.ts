/**
 * What a sign-up form and the preference centre share when they ask a
 * person to confirm (double opt-in, GDPR Art. 7(1)): the per-mailbox
 * throttle key (ABU-03), the `requested` events with their evidence, the
 * single-use token stored only as its hash, and the confirmation mail.
 * Each caller decides what to ask for; this builds and stores the asking.
 */
import { createHash } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { EventDraft } from '../consent/index.js';
import { hmacHex } from '../shared/crypto.js';
import type { Contact, Tables } from '../storage/index.js';
import type { SignupDeps } from './deps.js';
import { confirmationMail } from './mails.js';
import { deliverSystemMail } from './system-mail.js';
import { insertToken } from './token.repository.js';

export const DAY_MS = 86_400_000;

/** The stored form of a confirmation token: its SHA-256, never the secret. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Confirmations are throttled per mailbox: provider aliases (Gmail dots, +tags) count together. */
export function throttleKeyOf(deps: Pick<SignupDeps, 'keys'>, mailbox: { providerKey: string | null; matchKey: string }): string {
  return hmacHex(deps.keys.suppressionKeys[0]!.key, `throttle:${mailbox.providerKey ?? mailbox.matchKey}`);
}

/** Where a request came from: recorded on every `requested` event it makes. */
export interface RequestOrigin {
  method: string;
  form?: { id: string; slug: string; version: number };
}

/** One `requested` event per topic, each naming the exact consent text shown, the token and the mail. */
export function requestedEvents(
  deps: Pick<SignupDeps, 'newId'>,
  v: {
    origin: RequestOrigin;
    contactId: string;
    topics: { topicId: string; text: { id: string; version: number; sha256: string } }[];
    tokenId: string;
    messageId: string;
    /** IP, user agent (and address) sealed under the contact's key. */
    personal: string;
    now: Date;
  },
): EventDraft[] {
  const form = v.origin.form;
  return v.topics.map(({ topicId, text }) => ({
    id: deps.newId(),
    contactId: v.contactId,
    topicId,
    type: 'requested',
    occurredAt: v.now,
    evidence: {
      method: v.origin.method,
      actor: 'subject',
      ...(form ? { form_id: form.id, form_slug: form.slug, form_version: form.version } : {}),
      consent_text_id: text.id,
      consent_text_version: text.version,
      consent_text_sha256: text.sha256,
      token_id: v.tokenId,
      message_id: v.messageId,
      personal: v.personal,
    },
  }));
}

/** Stores the token's hash, valid for the configured number of days; in the caller's ledger transaction. */
export async function storeConfirmationToken(
  trx: Transaction<Tables>,
  deps: Pick<SignupDeps, 'settings'>,
  v: { id: string; token: string; contactId: string; formId: string; topicIds: string[]; throttleKey: string; now: Date },
): Promise<void> {
  await insertToken(trx, {
    id: v.id,
    token_hash: hashToken(v.token),
    contact_id: v.contactId,
    form_id: v.formId,
    topic_ids: JSON.stringify(v.topicIds),
    throttle_key: v.throttleKey,
    created_at: v.now.toISOString(),
    expires_at: new Date(v.now.getTime() + deps.settings.confirmationTtlDays * DAY_MS).toISOString(),
    used_at: null,
  });
}

/**
 * Mails the confirmation link, content-free but for the topic names (no
 * user-supplied text in it: ABU-06), in the contact's stored language when
 * it has one. `purpose` is what the send gate checks: 'confirmation' for a form,
 * 'self_service' for the person's own request from their centre.
 */
export async function mailConfirmationLink(
  deps: SignupDeps,
  v: {
    contact: Contact;
    topicNames: string[];
    topicIds: string[];
    token: string;
    messageId: string;
    locale: string;
    purpose: 'confirmation' | 'self_service';
  },
): Promise<boolean> {
  const locale = v.contact.locale ?? v.locale;
  const mail = confirmationMail({
    locale,
    controller: deps.settings.controller.name,
    topicNames: v.topicNames,
    confirmUrl: `${deps.settings.publicUrl}/confirm/${v.token}`,
    ttlDays: deps.settings.confirmationTtlDays,
  });
  return deliverSystemMail(deps, {
    contact: v.contact,
    gate: { purpose: v.purpose, topicIds: v.topicIds },
    kind: 'confirmation',
    messageId: v.messageId,
    mail,
    locale,
  });
}
