import { findContactById, findContactKey, sealPersonal, unwrapContactKey } from '../contacts/index.js';
import {
  buildReceiptClaims,
  findStates,
  findSuppressions,
  lookupHashes,
  signReceipt,
  withLedger,
  RECEIPT_FILENAME,
  type EventDraft,
} from '../consent/index.js';
import { makeMessageId } from '../delivery/compose.js';
import { findConsentTextsByIds, findTopicsByIds } from '../topics/index.js';
import type { ConfirmationToken, ConsentEventRow, Contact, Topic } from '../storage/index.js';
import { mailDomain, type SignupDeps } from './deps.js';
import { receiptMail } from './mails.js';
import { deliverSystemMail, hashToken } from './signup.service.js';
import { consumeToken, findTokenByHash } from './token.repository.js';

export type TokenView = { valid: true; topics: { slug: string; name: string }[]; locale: string | null } | { valid: false };

/** What a confirmation link offers; changes nothing, so link scanners are harmless. */
export async function inspectConfirmation(deps: SignupDeps, token: string): Promise<TokenView> {
  const row = await usableToken(deps, token);
  if (!row) return { valid: false };
  const topics = await findTopicsByIds(deps.db, JSON.parse(row.topic_ids) as string[]);
  const contact = await findContactById(deps.db, row.contact_id);
  if (!contact || contact.erased_at) return { valid: false };
  return { valid: true, topics: topics.map((t) => ({ slug: t.slug, name: t.name })), locale: contact.locale };
}

export type ConfirmResult = { confirmed: true; topics: string[]; receiptsSent: number } | { confirmed: false };

/**
 * The double opt-in click (POST): consumes the token and records `confirmed`
 * with its own evidence for every topic still awaiting it, then mails a
 * signed receipt per topic. A used, expired or unknown token changes nothing.
 */
export async function confirmSubscription(
  deps: SignupDeps,
  input: { token: string; ip: string; userAgent: string },
): Promise<ConfirmResult> {
  const now = deps.clock.now();
  const row = await usableToken(deps, input.token);
  if (!row) return { confirmed: false };
  const outcome = await withLedger(deps.db, async (trx, ledger) => {
    if (!(await consumeToken(trx, row.id, now.toISOString()))) return null;
    const contact = await findContactById(trx, row.contact_id);
    if (!contact || contact.erased_at || !contact.match_key) return null;
    // A suppression that arrived after the request wins: a confirmation
    // through an old link does not undo a later objection or complaint.
    const hashes = lookupHashes(deps.keys.suppressionKeys, contact.match_key);
    const topicIds = JSON.parse(row.topic_ids) as string[];
    if ((await findSuppressions(trx, hashes, topicIds)).length > 0) return null;
    const states = await findStates(trx, contact.id);
    const awaiting = states.filter((s) => topicIds.includes(s.topic_id) && s.state === 'requested');
    if (awaiting.length === 0) return { contact, events: [] as ConsentEventRow[], requested: [] as ConsentEventRow[] };
    const requested = await trx
      .selectFrom('consent_events')
      .selectAll()
      .where('seq', 'in', awaiting.map((s) => s.event_seq))
      .execute();
    const key = unwrapContactKey(deps.keys.masterKeys, contact.id, (await findContactKey(trx, contact.id))!);
    const personal = sealPersonal(key, { ip: input.ip, user_agent: input.userAgent });
    const events = await ledger.append(requested.map((req) => confirmedEvent(deps, { req, row, personal, now })));
    return { contact, events, requested };
  });
  if (!outcome) return { confirmed: false };
  const receiptsSent = await sendReceipts(deps, outcome);
  return { confirmed: true, topics: outcome.events.map((e) => e.topic_id!), receiptsSent };
}

async function usableToken(deps: SignupDeps, token: string): Promise<ConfirmationToken | undefined> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
  const row = await findTokenByHash(deps.db, hashToken(token));
  if (!row || row.used_at !== null || row.expires_at <= deps.clock.now().toISOString()) return undefined;
  return row;
}

function confirmedEvent(
  deps: SignupDeps,
  v: { req: ConsentEventRow; row: ConfirmationToken; personal: string; now: Date },
): EventDraft {
  const requested = JSON.parse(v.req.evidence) as Record<string, unknown>;
  return {
    id: deps.newId(),
    contactId: v.req.contact_id,
    topicId: v.req.topic_id,
    type: 'confirmed',
    occurredAt: v.now,
    evidence: {
      method: 'double_opt_in',
      actor: 'subject',
      form_id: requested.form_id as string,
      form_slug: requested.form_slug as string,
      form_version: requested.form_version as number,
      consent_text_id: requested.consent_text_id as string,
      consent_text_version: requested.consent_text_version as number,
      consent_text_sha256: requested.consent_text_sha256 as string,
      token_id: v.row.id,
      requested_event: v.req.id,
      requested_event_hash: v.req.hash,
      message_id: requested.message_id as string,
      personal: v.personal,
    },
  };
}

async function sendReceipts(
  deps: SignupDeps,
  outcome: { contact: Contact; events: ConsentEventRow[]; requested: ConsentEventRow[] },
): Promise<number> {
  if (outcome.events.length === 0) return 0;
  const topics = new Map((await findTopicsByIds(deps.db, outcome.events.map((e) => e.topic_id!))).map((t) => [t.id, t]));
  const textIds = outcome.events.map((e) => (JSON.parse(e.evidence) as { consent_text_id: string }).consent_text_id);
  const texts = new Map((await findConsentTextsByIds(deps.db, textIds)).map((t) => [t.id, t]));
  let sent = 0;
  for (const event of outcome.events) {
    const topic = topics.get(event.topic_id!)!;
    const evidence = JSON.parse(event.evidence) as { consent_text_id: string };
    const text = texts.get(evidence.consent_text_id)!;
    const requested = outcome.requested.find((r) => r.topic_id === event.topic_id)!;
    const claims = receiptClaims(deps, { event, requested, topic, text, contact: outcome.contact });
    const jws = await signReceipt(claims, deps.keys.receiptKeys[0]!);
    const locale = outcome.contact.locale ?? 'en';
    const ok = await deliverSystemMail(deps, {
      contact: outcome.contact,
      gate: { purpose: 'receipt', topicIds: [topic.id] },
      kind: 'receipt',
      messageId: makeMessageId(`receipt.${event.id}`, mailDomain(deps)),
      mail: receiptMail({ locale, controller: deps.settings.controller.name, topicName: topic.name, claims }),
      locale,
      attachments: [{ filename: RECEIPT_FILENAME, contentType: 'application/jose', content: jws }],
    });
    if (ok) sent += 1;
  }
  return sent;
}

function receiptClaims(
  deps: SignupDeps,
  v: { event: ConsentEventRow; requested: ConsentEventRow; topic: Topic; text: { id: string; version: number; sha256: string; body: string }; contact: Contact },
) {
  const { controller } = deps.settings;
  return buildReceiptClaims({
    receiptId: v.event.id,
    controller: { name: controller.name, contact: controller.name, email: controller.email, address: controller.address, url: deps.settings.publicUrl },
    policyUrl: controller.policyUrl,
    jurisdiction: deps.settings.jurisdiction,
    language: v.contact.locale ?? 'en',
    subject: v.contact.id,
    topic: { slug: v.topic.slug, name: v.topic.name },
    consentText: v.text,
    consentedAt: new Date(v.requested.occurred_at),
    confirmedAt: new Date(v.event.occurred_at),
    method: 'web_form_double_opt_in',
    formId: (JSON.parse(v.event.evidence) as { form_id?: string }).form_id,
    ledgerEventHash: v.event.hash,
    ledgerEventSeq: v.event.seq,
  });
}
