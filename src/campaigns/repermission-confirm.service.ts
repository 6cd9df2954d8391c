/**
 * The answer to a re-permission request (issue 5 point 4). GET only shows
 * what the person is asked to agree to; the POST records `confirmed` with
 * its evidence — method, campaign, the token's hash, the Message-ID of the
 * request, the exact consent text version shown, sealed IP and user agent
 * (GDPR Art. 7(1), COMPLIANCE.md GDPR-04) — and mails the signed receipt,
 * as the double opt-in path does. After the deadline the link is dead.
 */
import type { Transaction } from 'kysely';
import type { VersionedKey } from '../config/secrets.js';
import { findContactKey, findKeptContactById, sealPersonal, unwrapContactKey } from '../contacts/index.js';
import {
  buildReceiptClaims,
  collectionMethodOf,
  findSuppressions,
  lookupHashes,
  signReceipt,
  withLedger,
  RECEIPT_FILENAME,
} from '../consent/index.js';
import { deliverSystemMail, mailDomain, type SignupDeps } from '../forms/index.js';
// The receipt mail's words are the double opt-in's own, so both receipts read alike.
import { receiptMail } from '../forms/mails.js';
import { makeMessageId } from '../delivery/compose.js';
import { verifyLinkToken, type LinkClaims } from '../preferences/link-token.js';
import { sha256Hex } from '../shared/crypto.js';
import { findConsentTextVersion, findLatestConsentText, findTopicsByIds } from '../topics/index.js';
import type { ConsentEventRow, ConsentText, Contact, Tables, Topic } from '../storage/index.js';
import { findCampaign } from './campaign.repository.js';
import { decideConfirm, REPERMISSION_METHOD, type ConfirmDecision } from './repermission.js';
import { findRepermission, findSentMessageId } from './repermission.repository.js';

export type RepermissionDeps = SignupDeps & { linkKeys: VersionedKey[] };

type Executor = SignupDeps['db'] | Transaction<Tables>;

interface Loaded {
  claims: LinkClaims & { topicId: string; campaignId: string };
  contact: Contact;
  topic: Topic;
  deadline: Date;
  stateEventSeq: number | null;
  decision: ConfirmDecision;
}

export type RepermissionView =
  | { valid: true; alreadyConfirmed: boolean; topicName: string; text: { version: number; body: string }; deadline: Date; locale: string | null }
  | { valid: false };

/** What the link asks; changes nothing, so link scanners are harmless. */
export async function inspectRepermission(deps: RepermissionDeps, token: string): Promise<RepermissionView> {
  const loaded = await loadLink(deps, deps.db, token);
  if (!loaded || (!loaded.decision.ok && loaded.decision.reason !== 'already_confirmed')) return { valid: false };
  const text = await findLatestConsentText(deps.db, loaded.topic.id);
  if (!text) return { valid: false };
  return {
    valid: true,
    alreadyConfirmed: !loaded.decision.ok,
    topicName: loaded.topic.name,
    text: { version: text.version, body: text.body },
    deadline: loaded.deadline,
    locale: loaded.contact.locale,
  };
}

export type RepermissionAnswer =
  | { kind: 'confirmed'; locale: string | null; receiptSent: boolean }
  | { kind: 'already_confirmed'; locale: string | null }
  | { kind: 'invalid' };

/**
 * The click (POST). Decided inside the ledger transaction, so a lapse or a
 * withdrawal committing at the same moment is seen: `confirmed` is recorded
 * only while the state is still `imported` and the deadline has not passed.
 * `textVersion` is the consent text version the page showed.
 */
export async function confirmRepermission(
  deps: RepermissionDeps,
  input: { token: string; textVersion: number; ip: string; userAgent: string },
): Promise<RepermissionAnswer> {
  const now = deps.clock.now();
  const outcome = await withLedger(deps.db, async (trx, ledger) => {
    const loaded = await loadLink(deps, trx, input.token);
    if (!loaded) return { kind: 'invalid' as const };
    if (!loaded.decision.ok) {
      return loaded.decision.reason === 'already_confirmed' ? { kind: 'already_confirmed' as const, contact: loaded.contact } : { kind: 'invalid' as const };
    }
    const text = Number.isInteger(input.textVersion) ? await findConsentTextVersion(trx, loaded.topic.id, input.textVersion) : undefined;
    if (!text) return { kind: 'invalid' as const };
    const { contact, claims } = loaded;
    const key = unwrapContactKey(deps.keys.masterKeys, contact.id, (await findContactKey(trx, contact.id))!);
    const imported = loaded.stateEventSeq === null ? undefined : await trx.selectFrom('consent_events').select(['id', 'hash']).where('seq', '=', loaded.stateEventSeq).executeTakeFirst();
    // The request went to the contact the link names (before any merge).
    const messageId = await findSentMessageId(trx, { campaignId: claims.campaignId, contactId: claims.contactId });
    const [event] = await ledger.append([
      {
        id: deps.newId(),
        contactId: contact.id,
        topicId: loaded.topic.id,
        type: 'confirmed',
        occurredAt: now,
        evidence: {
          method: REPERMISSION_METHOD,
          actor: 'subject',
          campaign_id: claims.campaignId,
          consent_text_id: text.id,
          consent_text_version: text.version,
          consent_text_sha256: text.sha256,
          token_sha256: sha256Hex(input.token),
          ...(messageId ? { message_id: messageId } : {}),
          ...(imported ? { imported_event: imported.id, imported_event_hash: imported.hash } : {}),
          deadline_at: loaded.deadline.toISOString(),
          personal: sealPersonal(key, { ip: input.ip, user_agent: input.userAgent }),
        },
      },
    ]);
    return { kind: 'confirmed' as const, contact, topic: loaded.topic, text, event: event! };
  });
  if (outcome.kind === 'invalid') return outcome;
  if (outcome.kind === 'already_confirmed') return { kind: 'already_confirmed', locale: outcome.contact.locale };
  const receiptSent = await sendReceipt(deps, outcome);
  return { kind: 'confirmed', locale: outcome.contact.locale, receiptSent };
}

/** Verifies the token and loads everything the decision needs, in the caller's read. */
async function loadLink(deps: RepermissionDeps, db: Executor, token: string): Promise<Loaded | null> {
  const verified = verifyLinkToken(deps.linkKeys, token, 'repermission');
  if (!verified.ok) return null;
  const { claims } = verified;
  if (claims.topicId === undefined || claims.campaignId === undefined) return null;
  // A request mailed before an operator merged this contact into another
  // answers for the kept one, where its `imported` state went; the
  // merged-away record is never revived.
  const [campaign, row, contact] = await Promise.all([
    findCampaign(db, claims.campaignId),
    findRepermission(db, claims.campaignId),
    findKeptContactById(db, claims.contactId),
  ]);
  if (!contact || contact.erased_at || !contact.match_key) return null;
  const [topic] = await findTopicsByIds(db, [claims.topicId]);
  if (!topic || !row) return null;
  const [state, suppressions] = await Promise.all([
    db.selectFrom('consent_states').select(['state', 'event_seq']).where('contact_id', '=', contact.id).where('topic_id', '=', topic.id).executeTakeFirst(),
    findSuppressions(db, lookupHashes(deps.keys.suppressionKeys, contact.match_key), [topic.id]),
  ]);
  const decision = decideConfirm({
    campaign,
    deadlineAt: row.deadline_at,
    tokenTopicId: claims.topicId,
    state: state?.state ?? null,
    suppressed: suppressions.length > 0,
    now: deps.clock.now(),
  });
  const scoped = { ...claims, topicId: claims.topicId, campaignId: claims.campaignId };
  return { claims: scoped, contact, topic, deadline: new Date(row.deadline_at), stateEventSeq: state ? Number(state.event_seq) : null, decision };
}

/** The signed receipt (JWS, Ed25519), mailed through the send gate as on the double opt-in path. */
async function sendReceipt(deps: RepermissionDeps, v: { contact: Contact; topic: Topic; text: ConsentText; event: ConsentEventRow }): Promise<boolean> {
  const { controller } = deps.settings;
  const at = new Date(v.event.occurred_at);
  const locale = v.contact.locale ?? deps.settings.defaultLocale ?? 'en';
  const claims = buildReceiptClaims({
    receiptId: v.event.id,
    controller: { name: controller.name, contact: controller.name, email: controller.email, address: controller.address, url: deps.settings.publicUrl },
    policyUrl: controller.policyUrl,
    jurisdiction: deps.settings.jurisdiction,
    language: locale,
    subject: v.contact.id,
    topic: { slug: v.topic.slug, name: v.topic.name },
    consentText: v.text,
    consentedAt: at,
    confirmedAt: at,
    method: collectionMethodOf(REPERMISSION_METHOD),
    ledgerEventHash: v.event.hash,
    ledgerEventSeq: Number(v.event.seq),
  });
  const jws = await signReceipt(claims, deps.keys.receiptKeys[0]!);
  return deliverSystemMail(deps, {
    contact: v.contact,
    gate: { purpose: 'receipt', topicIds: [v.topic.id] },
    kind: 'receipt',
    messageId: makeMessageId(`receipt.${v.event.id}`, mailDomain(deps)),
    mail: receiptMail({ locale, controller: controller.name, topicName: v.topic.name, claims }),
    locale,
    attachments: [{ filename: RECEIPT_FILENAME, contentType: 'application/jose', content: jws }],
  });
}
