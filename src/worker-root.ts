/**
 * The sending half of the composition root: builds the worker's renderer,
 * throttle and feedback hook from a Runtime, and runs the loop until told
 * to stop. `assent serve` runs one in-process; `assent worker` runs only
 * this, and any number of them share one PostgreSQL database.
 */
import { hostname } from 'node:os';
import { newId } from './shared/ids.js';
import { createCampaignRenderer } from './campaigns/index.js';
import { createDkimSigner } from './delivery/dkim.js';
import { createThrottle } from './delivery/throttle.js';
import { runWorker, type WorkerReport } from './delivery/worker.js';
import { recordSendRefusal } from './feedback/index.js';
import type { Runtime } from './main.js';

export interface RunningWorker {
  id: string;
  /** Stops claiming, lets in-flight sends finish, resolves with the totals. */
  stop(): Promise<WorkerReport>;
  done: Promise<WorkerReport>;
}

export function startWorker(runtime: Runtime, options: { idleMs?: number } = {}): RunningWorker {
  const { config, storage, secrets, clock, logger } = runtime;
  const id = `${hostname()}:${process.pid}:${newId().slice(0, 8)}`;
  const render = createCampaignRenderer({
    db: storage.db,
    clock,
    linkKeys: secrets.linkKeys,
    masterKeys: secrets.masterKeys,
    publicUrl: config.publicUrl,
    controller: config.controller,
    domain: config.mailDomain,
    defaultLocale: config.defaultLocale,
    ...(config.returnPath ? { returnPath: config.returnPath } : {}),
    ...(config.unsubscribeMailto ? { unsubscribeMailto: config.unsubscribeMailto } : {}),
    ...(config.dkim ? { dkim: createDkimSigner(config.dkim) } : {}),
  });
  const throttled = Object.values(config.throttle).some((v) => v !== undefined);
  const controller = new AbortController();
  const feedback = { db: storage.db, clock, newId, logger, suppressionKeys: secrets.suppressionKeys };
  const done = runWorker({
    deps: { db: storage.db, clock, newId, logger, capabilities: storage.capabilities, suppressionKeys: secrets.suppressionKeys },
    transport: runtime.transport,
    render,
    workerId: id,
    batchSize: config.worker.batchSize,
    concurrency: config.worker.concurrency,
    leaseMs: config.worker.leaseMs,
    signal: controller.signal,
    ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
    ...(throttled ? { throttle: createThrottle(config.throttle, clock) } : {}),
    // DESIGN.md flow 6: a hard bounce met while sending suppresses the address.
    onPermanent: async ({ contactId, campaignId, response, code }) => {
      await recordSendRefusal(feedback, { contactId, campaignId, response, ...(code === undefined ? {} : { code }) });
    },
  });
  logger.info({ workerId: id }, 'worker started');
  return {
    id,
    done,
    stop: async () => {
      controller.abort();
      const report = await done;
      logger.info({ workerId: id, ...report }, 'worker stopped');
      return report;
    },
  };
}
