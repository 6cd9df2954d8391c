/**
 * The sending loop: claim a batch (the gate re-checked inside the claim),
 * render and send each message with bounded concurrency, record the result.
 * It depends on two narrow edges, a transport and an injected renderer, so
 * templates, headers and DKIM are built elsewhere. An optional throttle paces
 * sends (issue 3 point 4): a refusal for the process's own pace is waited out
 * while the lease allows; a refusal for the recipient's domain hands the
 * delivery back for later, without counting an attempt.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../shared/logger.js';
import { advanceCampaigns, runRepermissionJobs, type CampaignDeps } from '../campaigns/index.js';
import type { OutgoingMessage, SendResult, Transport } from './transport.js';
import { claimBatch, deferDelivery, markPermanent, markSent, markTransient, type ClaimDeps, type ClaimedDelivery, type RetryPolicy } from './claim.service.js';
import { recipientDomain, type Throttle } from './throttle.js';

export type WorkerDeps = ClaimDeps & CampaignDeps & { logger?: Logger };

export interface WorkerOptions {
  deps: WorkerDeps;
  transport: Transport;
  render: (delivery: ClaimedDelivery) => Promise<OutgoingMessage>;
  workerId: string;
  batchSize: number;
  /** Longer than a batch takes to send, or another worker may send it again. */
  leaseMs: number;
  signal: AbortSignal;
  /** Sends in flight at once. */
  concurrency?: number;
  /** Pause between polls when there is nothing to claim. */
  idleMs?: number;
  retry?: RetryPolicy;
  /** Paces sends globally and per recipient domain; none means unlimited. */
  throttle?: Throttle;
  /** Called with the contact of each permanent failure, to feed suppression (DESIGN.md flow 6). */
  onPermanent?: (input: { contactId: string; campaignId: string; response: string; code?: number }) => Promise<void>;
}

export interface WorkerReport {
  sent: number;
  retried: number;
  failed: number;
  /** Deliveries handed back because the throttle refused them; present when a throttle is set. */
  deferred?: number;
}

/** Runs until the signal aborts; in-flight sends finish, unsent claims are left to their leases. */
export async function runWorker(options: WorkerOptions): Promise<WorkerReport> {
  const { deps, signal } = options;
  const logger = deps.logger ?? silentLogger;
  const report: WorkerReport = { sent: 0, retried: 0, failed: 0, ...(options.throttle ? { deferred: 0 } : {}) };
  while (!signal.aborted) {
    try {
      // Before advancing: a re-permission campaign whose deadline passed is closed, not started.
      await runRepermissionJobs(deps, deps.clock.now());
      await advanceCampaigns(deps);
      const claimedAt = deps.clock.now();
      const batch = await claimBatch(deps, {
        workerId: options.workerId,
        batchSize: options.batchSize,
        leaseMs: options.leaseMs,
        now: claimedAt,
      });
      if (batch.length > 0) {
        // Waiting for the global pace stops at half the lease, leaving the other half for the send itself.
        const waitUntil = claimedAt.getTime() + options.leaseMs / 2;
        await eachBounded(batch, options.concurrency ?? 8, signal, (delivery) => deliver(options, delivery, { report, waitUntil }));
        continue;
      }
    } catch (error) {
      logger.error({ err: error, workerId: options.workerId }, 'worker iteration failed');
    }
    await sleep(options.idleMs ?? 1000, undefined, { signal }).catch(() => undefined);
  }
  return report;
}

async function deliver(options: WorkerOptions, delivery: ClaimedDelivery, batch: { report: WorkerReport; waitUntil: number }): Promise<void> {
  const { deps, workerId } = options;
  const { report } = batch;
  const domain = recipientDomain(delivery.address);
  if (options.throttle && !(await admit(options, delivery, { domain, ...batch }))) return;
  let result: SendResult;
  try {
    const message = await options.render(delivery);
    result = await options.transport.send(message);
  } catch (error) {
    // A renderer or transport that throws is treated as transient: retried, then failed after maxAttempts.
    result = { status: 'transient', messageId: '', response: error instanceof Error ? error.message : String(error) };
  }
  options.throttle?.record(domain, result);
  const now = deps.clock.now();
  if (result.status === 'sent') {
    await markSent(deps, { delivery, messageId: result.messageId, now });
    report.sent += 1;
  } else if (result.status === 'transient') {
    const outcome = await markTransient(deps, { delivery, workerId, error: result.response, now, ...(options.retry ? { policy: options.retry } : {}) });
    if (outcome !== 'lease_lost') report[outcome === 'queued' ? 'retried' : 'failed'] += 1;
  } else {
    const held = await markPermanent(deps, { delivery, workerId, error: result.response, now });
    report.failed += 1;
    if (held && options.onPermanent) {
      // The reply code goes along: "550 No such user here" has no enhanced status code to classify by.
      const code = result.code === undefined ? {} : { code: result.code };
      await options.onPermanent({ contactId: held.contactId, campaignId: delivery.campaignId, response: result.response, ...code });
    }
  }
}

/**
 * Asks the throttle until it says yes: a refusal for the global pace is slept
 * through while `waitUntil` allows; anything else (the domain's cap or
 * back-off, or a wait too long for the lease) hands the delivery back, due
 * when the throttle said, with its attempts unchanged.
 */
async function admit(
  options: WorkerOptions,
  delivery: ClaimedDelivery,
  input: { domain: string; report: WorkerReport; waitUntil: number },
): Promise<boolean> {
  const { deps, signal } = options;
  for (;;) {
    const reservation = options.throttle!.reserve(input.domain);
    if (reservation.ok) return true;
    const now = deps.clock.now();
    const retryAt = reservation.retryAt.getTime();
    if (reservation.scope === 'global' && retryAt <= input.waitUntil && !signal.aborted) {
      await sleep(Math.max(1, retryAt - now.getTime()), undefined, { signal }).catch(() => undefined);
      continue;
    }
    if (await deferDelivery(deps, { delivery, workerId: options.workerId, until: reservation.retryAt, now })) {
      input.report.deferred = (input.report.deferred ?? 0) + 1;
    }
    return false;
  }
}

/** Runs `work` over the items with at most `limit` at once; stops taking new items once the signal aborts. */
async function eachBounded<T>(items: T[], limit: number, signal: AbortSignal, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (!signal.aborted && next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
}
