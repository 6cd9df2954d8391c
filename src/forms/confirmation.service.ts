import type { Transaction } from 'kysely';
import { findContactKey, findKeptContactById, sealPersonal, unwrapContactKey } from '../contacts/index.js';
import {
  ALL_SCOPE,
  buildReceiptClaims,
  collectionMethodOf,
  deleteSuppressionRows,
  findEvent,
  findSuppressionRows,
  findStates,
  lookupHashes,
  readContactEvents,
  signReceipt,
  withLedger,
  RECEIPT_FILENAME,
  type EventDraft,
  type ReceiptClaims,
} from '../consent/index.js';
import { hmacHex } from '../shared/crypto.js';
import { makeMessageId } from '../delivery/compose.js';
import { findConsentTextsByIds, findTopicsByIds } from '../topics/index.js';
import type { ConfirmationToken, ConsentEventRow, ConsentStateRow, Contact, Tables, Topic } from '../storage/index.js';
import { mailDomain, type SignupDeps } from './deps.js';
import { receiptMail } from './mails.js';
import { hashToken } from './confirmation-request.js';
import { deliverSystemMail } from './system-mail.js';
import { consumeToken, findTokenByHash } from './token.repository.js';
import { CENTRE_METHOD, planSuppressionLift, type SuppressionRow } from './resubscription.js';

export type TokenView = { valid: true; topics: { slug: string; name: string }[]; locale: string | null } | { valid: false };

/** What a confirmation link offers; changes nothing, so link scanners are harmless. */
export async function inspectConfirmation(deps: SignupDeps, token: string): Promise<TokenView> {
  const row = await usableToken(deps, token);
  if (!row) return { valid: false };
  const topics = await findTopicsByIds(deps.db, JSON.parse(row.topic_ids) as string[]);
  const contact = await findKeptContactById(deps.db, row.contact_id);
  if (!contact || contact.erased_at) return { valid: false };
  return { valid: true, topics: topics.map((t) => ({ slug: t.slug, name: t.name })), locale: contact.locale };
}

export type ConfirmResult = { confirmed: true; topics: string[]; receiptsSent: number } | { confirmed: false };

/**
 * The double opt-in click (POST): consumes the token and records `confirmed`
 * with its own evidence for every topic still awaiting it, then mails a
 * signed receipt per topic. A used, expired or unknown token changes nothing.
 * A token issued to a contact an operator has since merged into another
 * confirms on the kept contact, and only the requests it was issued for
 * that the merge carried there: the merged-away record is never revived.
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
    const contact = await findKeptContactById(trx, row.contact_id);
    if (!contact || contact.erased_at || !contact.match_key) return null;
    const topicIds = JSON.parse(row.topic_ids) as string[];
    const suppressions = await findSuppressionRows(trx, lookupHashes(deps.keys.suppressionKeys, contact.match_key), [ALL_SCOPE, ...topicIds]);
    const states = await findStates(trx, contact.id);
    const awaiting = states.filter((s) => topicIds.includes(s.topic_id) && s.state === 'requested');
    const requested = await awaitedRequests(trx, { awaiting, row });
    if (requested.length === 0) {
      return suppressions.length > 0 ? null : { contact, events: [] as ConsentEventRow[], requested: [] as ConsentEventRow[] };
    }
    // A suppression that arrived after the request wins: a confirmation
    // through an old link does not undo a later objection or complaint. Only
    // the person's own earlier objection, answered by a request from their
    // own preference centre, is lifted (DESIGN.md, suppression list).
    const lift = planSuppressionLift({
      rows: suppressions,
      requested: requested.map((r) => ({ method: (JSON.parse(r.evidence) as { method?: unknown }).method, occurredAt: r.occurred_at })),
      ownHashes: new Set(deps.keys.suppressionKeys.map((k) => hmacHex(k.key, contact.match_key!))),
      ownEventSeqs: new Set((suppressions.length > 0 ? await readContactEvents(trx, contact.id) : []).map((e) => Number(e.seq))),
    });
    if (!lift.ok) return null;
    await deleteSuppressionRows(trx, lift.lift);
    const key = unwrapContactKey(deps.keys.masterKeys, contact.id, (await findContactKey(trx, contact.id))!);
    const personal = sealPersonal(key, { ip: input.ip, user_agent: input.userAgent });
    const events = await ledger.append(requested.map((req) => confirmedEvent(deps, { contactId: contact.id, req, row, personal, now, lifted: lift.lift })));
    return { contact, events, requested };
  });
  if (!outcome) return { confirmed: false };
  const receiptsSent = await sendReceipts(deps, outcome);
  return { confirmed: true, topics: outcome.events.map((e) => e.topic_id!), receiptsSent };
}

/**
 * The `requested` events the awaiting states stand on. A state an operator
 * merge carried over stands on a merge event that names the original
 * request (`source_event`): that request, with its form and consent text, is
 * what the confirmation confirms. Only the requests this token was issued
 * for count (their evidence names it), never another pending request of the
 * same contact, whether the token came to it directly or through a merge.
 */
async function awaitedRequests(
  trx: Transaction<Tables>,
  v: { awaiting: ConsentStateRow[]; row: ConfirmationToken },
): Promise<ConsentEventRow[]> {
  if (v.awaiting.length === 0) return [];
  const stateEvents = await trx.selectFrom('consent_events').selectAll().where('seq', 'in', v.awaiting.map((s) => s.event_seq)).execute();
  const out: ConsentEventRow[] = [];
  for (const event of stateEvents) {
    const source = (JSON.parse(event.evidence) as { source_event?: unknown }).source_event;
    const request = event.type === 'requested' && typeof source === 'string' ? await findEvent(trx, source) : event;
    if (!request || request.type !== 'requested' || request.topic_id !== event.topic_id) continue;
    if ((JSON.parse(request.evidence) as { token_id?: unknown }).token_id !== v.row.id) continue;
    out.push(request);
  }
  return out;
}

async function usableToken(deps: SignupDeps, token: string): Promise<ConfirmationToken | undefined> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
  const row = await findTokenByHash(deps.db, hashToken(token));
  if (!row || row.used_at !== null || row.expires_at <= deps.clock.now().toISOString()) return undefined;
  return row;
}

function confirmedEvent(
  deps: SignupDeps,
  v: { contactId: string; req: ConsentEventRow; row: ConfirmationToken; personal: string; now: Date; lifted: SuppressionRow[] },
): EventDraft {
  const requested = JSON.parse(v.req.evidence) as Record<string, unknown>;
  const fromCentre = requested.method === CENTRE_METHOD;
  return {
    id: deps.newId(),
    contactId: v.contactId,
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
      ...(fromCentre ? { requested_via: CENTRE_METHOD } : {}),
      // What this confirmation lifted, without the keyed hashes themselves.
      ...(v.lifted.length > 0
        ? { lifted_suppressions: v.lifted.map((x) => ({ scope: x.scope, reason: x.reason, created_at: x.created_at, event_seq: x.event_seq === null ? null : Number(x.event_seq) })) }
        : {}),
    },
  };
}

async function sendReceipts(
  deps: SignupDeps,
  outcome: { contact: Contact; events: ConsentEventRow[]; requested: ConsentEventRow[] },
): Promise<number> {
  let sent = 0;
  for (const event of outcome.events) {
    const requested = outcome.requested.find((r) => r.topic_id === event.topic_id)!;
    const receipt = await buildReceipt(deps, { event, requested, contact: outcome.contact });
    if (!receipt) continue;
    const locale = outcome.contact.locale ?? deps.settings.defaultLocale ?? 'en';
    const ok = await deliverSystemMail(deps, {
      contact: outcome.contact,
      gate: { purpose: 'receipt', topicIds: [receipt.topic.id] },
      kind: 'receipt',
      messageId: makeMessageId(`receipt.${event.id}`, mailDomain(deps)),
      mail: receiptMail({ locale, controller: deps.settings.controller.name, topicName: receipt.topic.name, claims: receipt.claims }),
      locale,
      attachments: [{ filename: RECEIPT_FILENAME, contentType: 'application/jose', content: receipt.jws }],
    });
    if (ok) sent += 1;
  }
  return sent;
}

/**
 * The signed receipt of one stored `confirmed` event, issued again now (the
 * preference centre's download): the same claims as the mailed one but for
 * `iat`. Null when the event is not a confirmation with a consent text.
 */
export async function reissueReceipt(
  deps: SignupDeps,
  v: { event: ConsentEventRow; contact: Contact },
): Promise<{ claims: ReceiptClaims; jws: string } | null> {
  if (v.event.type !== 'confirmed' || v.event.contact_id !== v.contact.id) return null;
  const requestedId = (JSON.parse(v.event.evidence) as { requested_event?: unknown }).requested_event;
  const requested = typeof requestedId === 'string' ? await findEvent(deps.db, requestedId) : undefined;
  const receipt = await buildReceipt(deps, { event: v.event, requested: requested ?? v.event, contact: v.contact, issuedAt: deps.clock.now() });
  return receipt && { claims: receipt.claims, jws: receipt.jws };
}

async function buildReceipt(
  deps: SignupDeps,
  v: { event: ConsentEventRow; requested: ConsentEventRow; contact: Contact; issuedAt?: Date },
): Promise<{ claims: ReceiptClaims; jws: string; topic: Topic } | null> {
  const textId = (JSON.parse(v.event.evidence) as { consent_text_id?: unknown }).consent_text_id;
  if (v.event.topic_id === null || typeof textId !== 'string') return null;
  const [topic] = await findTopicsByIds(deps.db, [v.event.topic_id]);
  const [text] = await findConsentTextsByIds(deps.db, [textId]);
  if (!topic || !text) return null;
  const claims = receiptClaims(deps, { ...v, topic, text });
  return { claims, jws: await signReceipt(claims, deps.keys.receiptKeys[0]!), topic };
}

function receiptClaims(
  deps: SignupDeps,
  v: {
    event: ConsentEventRow;
    requested: ConsentEventRow;
    topic: Topic;
    text: { id: string; version: number; sha256: string; body: string };
    contact: Contact;
    issuedAt?: Date;
  },
) {
  const { controller } = deps.settings;
  const confirmedMethod = (JSON.parse(v.event.evidence) as { method?: unknown }).method;
  const requestMethod = v.requested === v.event ? undefined : (JSON.parse(v.requested.evidence) as { method?: unknown }).method;
  return buildReceiptClaims({
    receiptId: v.event.id,
    controller: { name: controller.name, contact: controller.name, email: controller.email, address: controller.address, url: deps.settings.publicUrl },
    policyUrl: controller.policyUrl,
    jurisdiction: deps.settings.jurisdiction,
    language: v.contact.locale ?? deps.settings.defaultLocale ?? 'en',
    subject: v.contact.id,
    topic: { slug: v.topic.slug, name: v.topic.name },
    consentText: v.text,
    consentedAt: new Date(v.requested.occurred_at),
    confirmedAt: new Date(v.event.occurred_at),
    method: collectionMethodOf(confirmedMethod, requestMethod),
    formId: (JSON.parse(v.event.evidence) as { form_id?: string }).form_id,
    ledgerEventHash: v.event.hash,
    ledgerEventSeq: v.event.seq,
    ...(v.issuedAt ? { issuedAt: v.issuedAt } : {}),
  });
}
