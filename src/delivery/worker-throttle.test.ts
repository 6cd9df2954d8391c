/**
 * The worker under a throttle (issue 3 point 4), on every real database: a
 * domain's cap or back-off hands deliveries back without losing, duplicating
 * or charging an attempt to any of them. The clock is a fake shared by the
 * worker and the throttle, moved by the test once the worker has settled.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { databaseTargets } from '../../test/support/databases.js';
import { withLedger, type SuppressionKey } from '../consent/index.js';
import { insertContact } from '../contacts/index.js';
import { campaignStatus, createCampaign, startCampaign } from '../campaigns/index.js';
import { fixedClock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import type { Db, Storage } from '../storage/index.js';
import { createMemoryTransport, type ScriptedAnswer } from './memory-transport.js';
import { createThrottle, type ThrottleOptions } from './throttle.js';
import type { OutgoingMessage } from './transport.js';
import { runWorker, type WorkerReport } from './worker.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const keys: SuppressionKey[] = [{ version: 1, key: Buffer.alloc(32, 7) }];

/** A started campaign whose confirmed contacts are `local@domain` for each address given. */
async function campaignTo(storage: Storage, addresses: string[]): Promise<string> {
  const db = storage.db;
  const slug = `t${newId().slice(0, 8)}`;
  await db.insertInto('topics').values({ id: slug, slug, name: slug, description: '', is_public: 1, created_at: T0.toISOString() }).execute();
  for (const address of addresses) {
    const id = address.replace(/[@.]/g, '-');
    await insertContact(db, { id, address, match_key: address, provider_key: null, locale: null, created_at: T0.toISOString(), erased_at: null });
    await withLedger(db, (_trx, ledger) =>
      ledger.append(['requested', 'confirmed'].map((type) => ({ id: newId(), contactId: id, topicId: slug, type: type as 'confirmed', occurredAt: T0, evidence: { method: 'test', actor: 'subject' } }))),
    );
  }
  const deps = { db, clock: fixedClock(T0), newId };
  const campaign = await createCampaign(deps, { topicSlug: slug, templateName: 't', subject: 's', fromAddress: 'news@assent.example.org' });
  await startCampaign(deps, campaign.id);
  return campaign.id;
}

/** Waits until nothing is claimed and nothing is due at the fake clock's time: the worker has done all it can. */
async function settle(db: Db, now: Date): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { n } = await db
      .selectFrom('deliveries')
      .select((eb) => eb.fn.countAll().as('n'))
      .where((w) => w.or([w('status', '=', 'claimed'), w.and([w('status', '=', 'queued'), w('next_attempt_at', '<=', now.toISOString())])]))
      .executeTakeFirstOrThrow();
    if (Number(n) === 0) return;
    if (Date.now() > deadline) throw new Error(`worker did not settle at ${now.toISOString()}`);
    await sleep(5);
  }
}

const rowsOf = async (db: Db, domain: string) =>
  (await db.selectFrom('deliveries').innerJoin('contacts', 'contacts.id', 'deliveries.contact_id').select(['contacts.address', 'deliveries.status', 'deliveries.attempts', 'deliveries.next_attempt_at', 'deliveries.lease_owner']).execute())
    .filter((r) => r.address!.endsWith(`@${domain}`))
    .sort((a, b) => a.next_attempt_at.localeCompare(b.next_attempt_at) || a.address!.localeCompare(b.address!));

/** Starts a worker on its own database with a fake clock shared with the throttle. */
async function startWorker(storage: Storage, options: { throttle: ThrottleOptions; script: (m: OutgoingMessage) => ScriptedAnswer; concurrency: number; clock: ReturnType<typeof fixedClock> }) {
  const transport = createMemoryTransport({ script: options.script });
  const controller = new AbortController();
  const deps = { db: storage.db, capabilities: storage.capabilities, suppressionKeys: keys, clock: options.clock, newId };
  const done = runWorker({
    deps,
    transport,
    throttle: createThrottle(options.throttle, options.clock),
    render: async (d) => ({ envelope: { from: 'bounce@assent.example.org', to: [d.address] }, messageId: `<${d.contactId}@test>`, raw: Buffer.from(`To: ${d.address}\r\n\r\nhi\r\n`) }),
    workerId: 'worker-1',
    batchSize: 10,
    leaseMs: 20_000,
    signal: controller.signal,
    concurrency: options.concurrency,
    idleMs: 5,
    retry: { baseMs: 1000, maxMs: 1000, maxAttempts: 5 },
  });
  const stop = async (): Promise<WorkerReport> => {
    controller.abort();
    return done;
  };
  return { transport, stop, deps };
}

for (const target of await databaseTargets()) {
  describe(`worker with a throttle (${target.name})`, { skip: target.skip }, () => {
    test('a per-domain cap defers deliveries: none lost, none sent twice, no attempt charged', async (t) => {
      const own = await target.open();
      t.after(() => own.cleanup());
      const slow = Array.from({ length: 5 }, (_, i) => `s${i}@slow.example`);
      const fast = Array.from({ length: 3 }, (_, i) => `f${i}@fast.example`);
      const campaignId = await campaignTo(own.storage, [...slow, ...fast]);
      const clock = fixedClock(T0);
      const slowSends: number[] = [];
      const script = (m: OutgoingMessage): ScriptedAnswer => {
        if (m.envelope.to[0]!.endsWith('@slow.example')) slowSends.push(clock.now().getTime() - T0.getTime());
        return 'sent';
      };
      const worker = await startWorker(own.storage, { throttle: { domainLimits: { 'slow.example': 2 } }, script, concurrency: 3, clock });

      await settle(own.storage.db, clock.now());
      assert.deepEqual(slowSends, [0, 0]);
      assert.equal((await rowsOf(own.storage.db, 'fast.example')).filter((r) => r.status === 'sent').length, 3, 'the other domain is not held up');
      const deferred = (await rowsOf(own.storage.db, 'slow.example')).filter((r) => r.status !== 'sent');
      assert.deepEqual(
        deferred.map((r) => [r.status, r.attempts, r.next_attempt_at, r.lease_owner]),
        [60_000, 90_000, 120_000].map((ms) => ['queued', 0, at(ms).toISOString(), null]),
        'handed back one slot apart, attempts unchanged',
      );

      for (let step = 1; step <= 8 && (await campaignStatus(worker.deps, campaignId)).status !== 'sent'; step++) {
        clock.set(at(step * 30_000));
        await settle(own.storage.db, clock.now());
        await sleep(20);
      }
      const report = await worker.stop();
      assert.deepEqual(slowSends, [0, 0, 60_000, 90_000, 120_000], 'never more than 2 in any minute');
      const ids = worker.transport.attempts.map((m) => m.messageId).sort();
      assert.deepEqual(ids, [...slow, ...fast].map((a) => `<${a.replace(/[@.]/g, '-')}@test>`).sort(), 'each message handed over exactly once');
      const rows = [...(await rowsOf(own.storage.db, 'slow.example')), ...(await rowsOf(own.storage.db, 'fast.example'))];
      assert.deepEqual(rows.map((r) => [r.status, r.attempts]), Array(8).fill(['sent', 1]));
      assert.deepEqual(report, { sent: 8, retried: 0, failed: 0, deferred: 3 });
      const status = await campaignStatus(worker.deps, campaignId);
      assert.deepEqual([status.status, status.sent, status.queued, status.failed], ['sent', 8, 0, 0]);
    });

    test('a 421 4.7.0 from one domain backs that domain off while another continues', async (t) => {
      const own = await target.open();
      t.after(() => own.cleanup());
      const busy = Array.from({ length: 3 }, (_, i) => `b${i}@busy.example`);
      const calm = Array.from({ length: 3 }, (_, i) => `c${i}@calm.example`);
      const campaignId = await campaignTo(own.storage, [...busy, ...calm]);
      // The calm domain's rows fall due a second later, so they are sent while busy.example is backed off.
      await own.storage.db.updateTable('deliveries').set({ next_attempt_at: at(1000).toISOString() }).where('contact_id', 'like', 'c%').execute();
      const clock = fixedClock(T0);
      let refusedOnce = false;
      const script = (m: OutgoingMessage): ScriptedAnswer => {
        if (!m.envelope.to[0]!.endsWith('@busy.example') || refusedOnce) return 'sent';
        refusedOnce = true;
        return { status: 'transient', code: 421, response: '421 4.7.0 Try again later, closing connection.' };
      };
      const worker = await startWorker(own.storage, { throttle: {}, script, concurrency: 1, clock });
      const busyAttempts = () => worker.transport.attempts.filter((m) => m.envelope.to[0]!.endsWith('@busy.example')).length;

      await settle(own.storage.db, clock.now());
      assert.equal(busyAttempts(), 1, 'one 421, then the rest of busy.example is held back');
      assert.deepEqual((await rowsOf(own.storage.db, 'busy.example')).map((r) => [r.status, r.attempts, r.next_attempt_at]), [
        ['queued', 1, at(1000).toISOString()],
        ['queued', 0, at(60_000).toISOString()],
        ['queued', 0, at(60_000).toISOString()],
      ]);

      clock.set(at(1000));
      await settle(own.storage.db, clock.now());
      assert.deepEqual((await rowsOf(own.storage.db, 'calm.example')).map((r) => [r.status, r.attempts]), Array(3).fill(['sent', 1]), 'calm.example continues');
      assert.equal(busyAttempts(), 1, 'the retry due at 1 s waits for the back-off too, without an attempt');
      assert.deepEqual((await rowsOf(own.storage.db, 'busy.example')).map((r) => [r.status, r.attempts, r.next_attempt_at]).sort(), [
        ['queued', 0, at(60_000).toISOString()],
        ['queued', 0, at(60_000).toISOString()],
        ['queued', 1, at(60_000).toISOString()],
      ]);

      clock.set(at(60_000));
      await settle(own.storage.db, clock.now());
      for (let i = 0; i < 200 && (await campaignStatus(worker.deps, campaignId)).status !== 'sent'; i++) await sleep(10);
      const report = await worker.stop();
      const sentIds = worker.transport.sent.map((m) => m.messageId);
      assert.equal(new Set(sentIds).size, 6, 'each message accepted once');
      assert.equal(busyAttempts(), 4, 'the 421 and three acceptances');
      assert.deepEqual((await rowsOf(own.storage.db, 'busy.example')).map((r) => [r.status, r.attempts]).sort(), [['sent', 1], ['sent', 1], ['sent', 2]]);
      assert.deepEqual(report, { sent: 6, retried: 1, failed: 0, deferred: 3 });
      assert.equal((await campaignStatus(worker.deps, campaignId)).status, 'sent');
    });
  });
}
