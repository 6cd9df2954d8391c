import type { Transaction } from 'kysely';
import type { Capabilities, Db, Tables } from '../storage/index.js';
import { ALL_SCOPE, decideSend, lookupHashes, type SuppressionKey } from '../consent/index.js';
import { gatePurpose } from '../campaigns/index.js';
import {
  claimRows,
  deferClaimedDelivery,
  findClaimableCampaignIds,
  findBatchStates,
  findBatchSuppressions,
  findClaimCampaigns,
  findClaimContacts,
  markDeliveriesSent,
  releaseDelivery,
  skipDeliveries,
  type DeliveryKey,
} from './claim.repository.js';

export type { DeliveryKey } from './claim.repository.js';

export interface ClaimDeps {
  db: Db;
  capabilities: Capabilities;
  suppressionKeys: SuppressionKey[];
}

/** A delivery this worker holds and may send: the gate allowed it inside the claim. */
export interface ClaimedDelivery extends DeliveryKey {
  /** As the person entered it; sent verbatim (RFC 5321 §2.4). */
  address: string;
  /** Attempts before this one. */
  attempts: number;
  /** The consent event that allowed the send, recorded with it. */
  consentEventSeq: number;
}

/**
 * Claims a batch under a lease and re-evaluates the send gate for every row
 * in the same transaction (DESIGN.md, the one invariant; GDPR-06 c, GDPR-21):
 * a withdrawal, objection or suppression that committed before the claim is
 * honoured. Refused rows are recorded skipped with the gate's reason and not
 * returned.
 */
export async function claimBatch(
  deps: ClaimDeps,
  input: { campaignId?: string; workerId: string; batchSize: number; leaseMs: number; now: Date },
): Promise<ClaimedDelivery[]> {
  const now = input.now.toISOString();
  const leaseUntil = new Date(input.now.getTime() + input.leaseMs).toISOString();
  return deps.db.transaction().execute(async (trx) => {
    const rows: ClaimedRow[] = [];
    // A dead worker's expired claims first, then due rows; campaign after campaign until the batch is full.
    for (const campaignId of await findClaimableCampaignIds(trx, input.campaignId)) {
      if (rows.length >= input.batchSize) break;
      for (const which of ['expired', 'due'] as const) {
        const room = input.batchSize - rows.length;
        if (room <= 0) break;
        rows.push(...(await claimRows(trx, { capabilities: deps.capabilities, campaignId, which, workerId: input.workerId, batchSize: room, leaseUntil, now })));
      }
    }
    if (rows.length === 0) return [];
    const { allowed, refused } = await gateRows(trx, deps.suppressionKeys, rows);
    for (const group of refused.values()) await skipDeliveries(trx, { ...group, now });
    return allowed;
  });
}

type ClaimedRow = Awaited<ReturnType<typeof claimRows>>[number];

/** Loads, in the claim's transaction, what the gate needs for every row (batch queries), and asks it per row. */
async function gateRows(
  trx: Transaction<Tables>,
  suppressionKeys: SuppressionKey[],
  rows: ClaimedRow[],
): Promise<{ allowed: ClaimedDelivery[]; refused: Map<string, { campaignId: string; reason: string; contactIds: string[] }> }> {
  const contactIds = [...new Set(rows.map((r) => r.contact_id))];
  const [contacts, campaigns] = await Promise.all([
    findClaimContacts(trx, contactIds),
    findClaimCampaigns(trx, [...new Set(rows.map((r) => r.campaign_id))]),
  ]);
  const topicIds = [...new Set(campaigns.map((c) => c.topic_id))];
  const hashesOf = new Map(contacts.map((c) => [c.id, c.match_key ? lookupHashes(suppressionKeys, c.match_key) : []]));
  const [states, suppressions] = await Promise.all([
    findBatchStates(trx, { contactIds, topicIds }),
    findBatchSuppressions(trx, { hashes: [...hashesOf.values()].flat(), scopes: [ALL_SCOPE, ...topicIds] }),
  ]);
  const contactById = new Map(contacts.map((c) => [c.id, c]));
  const campaignById = new Map(campaigns.map((c) => [c.id, c]));
  const stateOf = new Map(states.map((s) => [`${s.contact_id}|${s.topic_id}`, s]));
  const hits = new Set(suppressions.map((s) => `${s.key_hash}|${s.scope}`));

  const allowed: ClaimedDelivery[] = [];
  const refused = new Map<string, { campaignId: string; reason: string; contactIds: string[] }>();
  for (const row of rows) {
    const contact = contactById.get(row.contact_id);
    const campaign = campaignById.get(row.campaign_id)!;
    const state = stateOf.get(`${row.contact_id}|${campaign.topic_id}`);
    const suppressed = (hashesOf.get(row.contact_id) ?? []).some((h) => hits.has(`${h}|${ALL_SCOPE}`) || hits.has(`${h}|${campaign.topic_id}`));
    const erased = !contact || contact.erased_at !== null || contact.address === null || contact.match_key === null;
    const decision = decideSend({ purpose: gatePurpose(campaign.kind), topicState: state?.state ?? null, suppressed, erased });
    if (decision.allowed && contact?.address && state) {
      allowed.push({ campaignId: row.campaign_id, contactId: row.contact_id, address: contact.address, attempts: row.attempts, consentEventSeq: Number(state.event_seq) });
      continue;
    }
    const reason = decision.allowed ? 'no_consent' : decision.reason;
    const group = refused.get(`${row.campaign_id}|${reason}`) ?? { campaignId: row.campaign_id, reason, contactIds: [] };
    group.contactIds.push(row.contact_id);
    refused.set(`${row.campaign_id}|${reason}`, group);
  }
  return { allowed, refused };
}

export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  /** Attempts after which a transient failure becomes final. */
  maxAttempts: number;
}

export const defaultRetryPolicy: RetryPolicy = { baseMs: 60_000, maxMs: 3_600_000, maxAttempts: 8 };

/** Pure: after a transient failure (RFC 5321 §4.5.4.1 retry), queue again with exponential backoff, or give up. */
export function retryDecision(
  policy: RetryPolicy,
  input: { attemptsBefore: number; now: Date },
): { status: 'queued'; nextAttemptAt: Date } | { status: 'failed' } {
  if (input.attemptsBefore + 1 >= policy.maxAttempts) return { status: 'failed' };
  const delay = Math.min(policy.baseMs * 2 ** input.attemptsBefore, policy.maxMs);
  return { status: 'queued', nextAttemptAt: new Date(input.now.getTime() + delay) };
}

/**
 * Records many accepted messages at once (one statement per 500); returns,
 * for each input in order, whether its row was still claimed and is now sent.
 */
export async function markSentMany(
  deps: Pick<ClaimDeps, 'db'>,
  input: { marks: { delivery: ClaimedDelivery; messageId: string; sentAt: Date }[]; now: Date },
): Promise<boolean[]> {
  if (input.marks.length === 0) return [];
  const done = await markDeliveriesSent(
    deps.db,
    input.marks.map((m) => ({ key: m.delivery, messageId: m.messageId, consentEventSeq: m.delivery.consentEventSeq, sentAt: m.sentAt.toISOString() })),
    input.now.toISOString(),
  );
  return input.marks.map((m) => done.has(`${m.delivery.campaignId}|${m.delivery.contactId}`));
}

/** A 4xx or lost connection: retried later with backoff, failed after `maxAttempts` (EML-12 b); 'lease_lost' when the row is no longer ours. */
export async function markTransient(
  deps: Pick<ClaimDeps, 'db'>,
  input: { delivery: ClaimedDelivery; workerId: string; error: string; now: Date; policy?: RetryPolicy },
): Promise<'queued' | 'failed' | 'lease_lost'> {
  const decision = retryDecision(input.policy ?? defaultRetryPolicy, { attemptsBefore: input.delivery.attempts, now: input.now });
  const nextAttemptAt = decision.status === 'queued' ? decision.nextAttemptAt : input.now;
  const held = await releaseDelivery(deps.db, {
    key: input.delivery,
    workerId: input.workerId,
    status: decision.status,
    error: input.error,
    nextAttemptAt: nextAttemptAt.toISOString(),
    now: input.now.toISOString(),
  });
  // Another worker took the row over after our lease expired: its result stands.
  return held ? decision.status : 'lease_lost';
}

/**
 * A 5xx: this delivery fails, and only this one. Returns the contact id when
 * the row was ours, so the caller can feed the suppression rules (a hard
 * bounce suppresses, DESIGN.md flow 6); classification is not done here.
 */
export async function markPermanent(
  deps: Pick<ClaimDeps, 'db'>,
  input: { delivery: ClaimedDelivery; workerId: string; error: string; now: Date },
): Promise<{ contactId: string } | null> {
  const now = input.now.toISOString();
  const done = await releaseDelivery(deps.db, { key: input.delivery, workerId: input.workerId, status: 'failed', error: input.error, nextAttemptAt: now, now });
  return done ? { contactId: input.delivery.contactId } : null;
}

/**
 * The throttle refused a send (a domain's cap or back-off, issue 3 point 4):
 * the row goes back to the queue, due at `until`, and no attempt is counted,
 * since nothing was sent. False when the row is no longer ours.
 */
export async function deferDelivery(
  deps: Pick<ClaimDeps, 'db'>,
  input: { delivery: ClaimedDelivery; workerId: string; until: Date; now: Date },
): Promise<boolean> {
  return deferClaimedDelivery(deps.db, { key: input.delivery, workerId: input.workerId, until: input.until.toISOString(), now: input.now.toISOString() });
}
