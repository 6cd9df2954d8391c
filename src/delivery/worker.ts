/**
 * The sending loop: claim a batch (the gate re-checked inside the claim),
 * render and send each message with bounded concurrency, record the result.
 * It depends on two narrow edges, a transport and an injected renderer, so
 * templates, headers and DKIM are built elsewhere.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../shared/logger.js';
import { advanceCampaigns, type CampaignDeps } from '../campaigns/index.js';
import type { OutgoingMessage, SendResult, Transport } from './transport.js';
import { claimBatch, markPermanent, markSent, markTransient, type ClaimDeps, type ClaimedDelivery, type RetryPolicy } from './claim.service.js';

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
  /** Called with the contact of each permanent failure, to feed suppression (DESIGN.md flow 6). */
  onPermanent?: (input: { contactId: string; campaignId: string; response: string }) => Promise<void>;
}

export interface WorkerReport {
  sent: number;
  retried: number;
  failed: number;
}

/** Runs until the signal aborts; in-flight sends finish, unsent claims are left to their leases. */
export async function runWorker(options: WorkerOptions): Promise<WorkerReport> {
  const { deps, signal } = options;
  const logger = deps.logger ?? silentLogger;
  const report: WorkerReport = { sent: 0, retried: 0, failed: 0 };
  while (!signal.aborted) {
    try {
      await advanceCampaigns(deps);
      const batch = await claimBatch(deps, {
        workerId: options.workerId,
        batchSize: options.batchSize,
        leaseMs: options.leaseMs,
        now: deps.clock.now(),
      });
      if (batch.length > 0) {
        await eachBounded(batch, options.concurrency ?? 8, signal, (delivery) => deliver(options, delivery, report));
        continue;
      }
    } catch (error) {
      logger.error({ err: error, workerId: options.workerId }, 'worker iteration failed');
    }
    await sleep(options.idleMs ?? 1000, undefined, { signal }).catch(() => undefined);
  }
  return report;
}

async function deliver(options: WorkerOptions, delivery: ClaimedDelivery, report: WorkerReport): Promise<void> {
  const { deps, workerId } = options;
  let result: SendResult;
  try {
    const message = await options.render(delivery);
    result = await options.transport.send(message);
  } catch (error) {
    // A renderer or transport that throws is treated as transient: retried, then failed after maxAttempts.
    result = { status: 'transient', messageId: '', response: error instanceof Error ? error.message : String(error) };
  }
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
    if (held && options.onPermanent) await options.onPermanent({ contactId: held.contactId, campaignId: delivery.campaignId, response: result.response });
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
