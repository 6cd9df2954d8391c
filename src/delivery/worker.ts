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
import { claimBatch, deferDelivery, markPermanent, markSentMany, markTransient, type ClaimDeps, type ClaimedDelivery, type RetryPolicy } from './claim.service.js';
import { recipientDomain, type Throttle } from './throttle.js';

export type WorkerDeps = ClaimDeps & CampaignDeps & { logger?: Logger };

export interface WorkerOptions {
  deps: WorkerDeps;
  transport: Transport;
  render: ((delivery: ClaimedDelivery) => Promise<OutgoingMessage>) & {
    /** Told each claimed batch before its renders, to load what they need in one go. */
    prefetch?: (batch: readonly ClaimedDelivery[]) => void;
  };
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

/**
 * Runs until the signal aborts; in-flight sends finish, unsent claims are left to their leases.
 *
 * Claiming and sending overlap: the next batch is claimed as soon as every
 * delivery of the current one has been handed to a lane, while the last
 * `concurrency` sends are still under way, so the transport never runs dry
 * waiting for a batch's slowest message. Each lane holds its delivery from
 * hand-off until its result is recorded, so at most `concurrency` messages
 * can be accepted by the relay and not yet recorded (the crash bound).
 */
export async function runWorker(options: WorkerOptions): Promise<WorkerReport> {
  const { deps, signal } = options;
  const logger = deps.logger ?? silentLogger;
  const report: WorkerReport = { sent: 0, retried: 0, failed: 0, ...(options.throttle ? { deferred: 0 } : {}) };
  const lanes = new Lanes(Math.max(1, options.concurrency ?? 8));
  const marks = new SentMarks(deps);
  while (!signal.aborted) {
    try {
      // Before advancing: a re-permission campaign whose deadline passed is closed, not started.
      await runRepermissionJobs(deps, deps.clock.now());
      await advanceCampaigns(deps);
      // Claim only when a lane is free: deliveries are not held claimed (gate decided) longer than needed.
      await lanes.free();
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
        options.render.prefetch?.(batch);
        for (const delivery of batch) {
          await lanes.acquire();
          if (signal.aborted) {
            lanes.release();
            break;
          }
          void deliver(options, delivery, { report, waitUntil, marks })
            .catch((error: unknown) => logger.error({ err: error, workerId: options.workerId }, 'recording a delivery failed'))
            .finally(() => lanes.release());
        }
        continue;
      }
      // Nothing to claim: let what is under way finish before idling, so a
      // campaign's status can advance to 'sent' on the next round.
      if (lanes.busy > 0) {
        await lanes.drained();
        continue;
      }
    } catch (error) {
      logger.error({ err: error, workerId: options.workerId }, 'worker iteration failed');
    }
    await sleep(options.idleMs ?? 1000, undefined, { signal }).catch(() => undefined);
  }
  await lanes.drained();
  return report;
}

/** A counting semaphore for the worker's send lanes. */
class Lanes {
  busy = 0;
  private waiting: (() => void)[] = [];
  private idle: (() => void)[] = [];
  constructor(private readonly size: number) {}

  acquire(): Promise<void> {
    if (this.busy < this.size) {
      this.busy += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(() => {
      this.busy += 1;
      resolve();
    }));
  }

  release(): void {
    this.busy -= 1;
    const next = this.waiting.shift();
    if (next) return next();
    if (this.busy === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  /** Resolves once a lane is free (without taking it). */
  async free(): Promise<void> {
    if (this.busy < this.size) return;
    await this.acquire();
    this.release();
  }

  drained(): Promise<void> {
    return this.busy === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }
}

/**
 * Group commit of 'sent' marks: the marks of a short window (or a full
 * window's worth, or those that arrived while the previous commit ran) go
 * in one statement. At
 * thousands of messages a second this turns thousands of single-row UPDATE
 * transactions into a few dozen, and each caller still learns that its own
 * row was recorded before its lane is free.
 */
const MARK_WINDOW_MS = 3;
const MARKS_PER_COMMIT = 100;

class SentMarks {
  private pending: { delivery: ClaimedDelivery; messageId: string; sentAt: Date; done: (recorded: boolean) => void; fail: (error: unknown) => void }[] = [];
  private flushing = false;
  constructor(private readonly deps: WorkerDeps) {}

  private timer: NodeJS.Timeout | undefined;

  record(delivery: ClaimedDelivery, messageId: string, sentAt: Date): Promise<boolean> {
    return new Promise((done, fail) => {
      this.pending.push({ delivery, messageId, sentAt, done, fail });
      if (this.flushing) return;
      // A short window gathers the marks of many lanes into one commit; a full window goes at once.
      if (this.pending.length >= MARKS_PER_COMMIT) {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.flushing = true;
        void this.flush();
      } else {
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.flushing = true;
          void this.flush();
        }, MARK_WINDOW_MS);
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const marks = this.pending.splice(0);
      try {
        const recorded = await markSentMany(this.deps, { marks, now: this.deps.clock.now() });
        marks.forEach((mark, i) => mark.done(recorded[i]!));
      } catch (error) {
        for (const mark of marks) mark.fail(error);
      }
    }
    this.flushing = false;
  }
}

async function deliver(options: WorkerOptions, delivery: ClaimedDelivery, batch: { report: WorkerReport; waitUntil: number; marks: SentMarks }): Promise<void> {
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
    await batch.marks.record(delivery, result.messageId, now);
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
