import type { Transaction } from 'kysely';
import { findContactKey, findKeptContactById, sealPersonal, unwrapContactKey } from '../contacts/index.js';
import { ALL_SCOPE, findStates, findSuppressions, lookupHashes, suppressContact, withLedger, type Evidence } from '../consent/index.js';
import type { Contact, Tables } from '../storage/index.js';
import type { WithdrawalDeps } from './deps.js';
import { isWithdrawable, topicsToWithdraw, type WithdrawalChannel } from './withdrawal.js';

export interface WithdrawalInput {
  contactId: string;
  channel: WithdrawalChannel;
  campaignId?: string;
  ip?: string;
  userAgent?: string;
}

/** 'unchanged' is success too: the person is not subscribed, which is what they asked for. */
export type WithdrawalOutcome = 'withdrawn' | 'objected' | 'unchanged' | 'unknown_contact';

/**
 * Withdraws consent for one topic (GDPR Art. 7(3)): appends `withdrawn` with
 * the channel as its method and suppresses the address for that topic
 * (reason 'unsubscribed'; RFC 8058 via EML-04, GDPR-21: at least the list's
 * scope), so no form or import subscribes it again; only the person's own
 * confirmed request from their preference centre lifts it. The projection
 * moves in the same transaction, so the next batch claim skips the person.
 * Commits before it returns, so the caller answers only once the withdrawal
 * holds. Idempotent.
 */
export async function withdrawTopic(deps: WithdrawalDeps, input: WithdrawalInput & { topicId: string }): Promise<WithdrawalOutcome> {
  const now = deps.clock.now();
  return withLedger(deps.db, async (trx, ledger) => {
    const contact = await liveContact(trx, input.contactId);
    if (!contact?.match_key) return 'unknown_contact';
    const state = (await findStates(trx, contact.id)).find((s) => s.topic_id === input.topicId);
    if (!isWithdrawable(state?.state)) return 'unchanged';
    await suppressContact(trx, ledger, {
      keys: deps.keys.suppressionKeys,
      contact,
      event: { id: deps.newId(), type: 'withdrawn', topicId: input.topicId, evidence: await withdrawalEvidence(deps, trx, contact, input), at: now },
      reason: 'unsubscribed',
      scope: input.topicId,
    });
    return 'withdrawn';
  });
}

/**
 * Objects to all direct marketing (GDPR Art. 21(2)-(3), absolute): appends
 * `objected`, suppresses every alias of the address for scope 'all', and
 * withdraws every topic still held, so that if the person ever lifts the
 * objection through a fresh double opt-in, no old consent comes back with
 * it. Idempotent: an objection already on file changes nothing.
 */
export async function objectToAll(deps: WithdrawalDeps, input: WithdrawalInput): Promise<WithdrawalOutcome> {
  const now = deps.clock.now();
  return withLedger(deps.db, async (trx, ledger) => {
    const contact = await liveContact(trx, input.contactId);
    if (!contact?.match_key) return 'unknown_contact';
    const existing = await findSuppressions(trx, lookupHashes(deps.keys.suppressionKeys, contact.match_key), []);
    const topicIds = topicsToWithdraw(await findStates(trx, contact.id));
    if (existing.some((s) => s.scope === ALL_SCOPE && s.reason === 'objected') && topicIds.length === 0) return 'unchanged';
    const evidence = await withdrawalEvidence(deps, trx, contact, input);
    const objectionId = deps.newId();
    await suppressContact(trx, ledger, {
      keys: deps.keys.suppressionKeys,
      contact,
      event: { id: objectionId, type: 'objected', topicId: null, evidence, at: now },
      reason: 'objected',
      scope: ALL_SCOPE,
    });
    await ledger.append(
      topicIds.map((topicId) => ({
        id: deps.newId(),
        contactId: contact.id,
        topicId,
        type: 'withdrawn' as const,
        occurredAt: now,
        evidence: { ...evidence, reason: 'objected', objection_event: objectionId },
      })),
    );
    return 'objected';
  });
}

/** The live contact that answers for the id, merges followed in the withdrawal's own transaction. */
async function liveContact(trx: Transaction<Tables>, contactId: string): Promise<Contact | undefined> {
  const contact = await findKeptContactById(trx, contactId);
  return contact && contact.erased_at === null ? contact : undefined;
}

/** Evidence of the subject's own act: the channel, and IP and user agent sealed under the contact's key. */
async function withdrawalEvidence(deps: WithdrawalDeps, trx: Transaction<Tables>, contact: Contact, input: WithdrawalInput): Promise<Evidence> {
  const wrapped = await findContactKey(trx, contact.id);
  const hasPersonal = input.ip !== undefined || input.userAgent !== undefined;
  const personal =
    wrapped && hasPersonal
      ? sealPersonal(unwrapContactKey(deps.keys.masterKeys, contact.id, wrapped), { ip: input.ip, user_agent: input.userAgent })
      : undefined;
  return {
    method: input.channel,
    actor: 'subject',
    ...(input.campaignId === undefined ? {} : { campaign_id: input.campaignId }),
    ...(personal === undefined ? {} : { personal }),
  };
}
