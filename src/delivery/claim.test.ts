import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import { insertSuppressions, withLedger, writeHashes, type SuppressionKey } from '../consent/index.js';
import { insertContact } from '../contacts/index.js';
import { campaignStatus, createCampaign, pauseCampaign, resumeCampaign, startCampaign } from '../campaigns/index.js';
import { fixedClock, systemClock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import { openStorage, type Db, type Storage } from '../storage/index.js';
import { claimBatch, markPermanent, markSentMany, markTransient, type ClaimDeps, type ClaimedDelivery } from './claim.service.js';
import { claimRows, findClaimableCampaignIds } from './claim.repository.js';
import { createMemoryTransport } from './memory-transport.js';
import { runWorker } from './worker.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const keys: SuppressionKey[] = [{ version: 1, key: Buffer.alloc(32, 7) }];
const evidence = { method: 'test', actor: 'subject' };

/** Appends one ledger event for a contact and topic, as the consent core would. */
async function record(db: Db, contactId: string, topicId: string, type: 'requested' | 'confirmed' | 'withdrawn') {
  await withLedger(db, (_trx, ledger) => ledger.append([{ id: newId(), contactId, topicId, type, occurredAt: T0, evidence }]));
}

async function addContact(db: Db, id: string, topicId: string, events: ('requested' | 'confirmed')[]) {
  await insertContact(db, { id, address: `${id}@example.org`, match_key: `${id}@example.org`, provider_key: null, locale: null, created_at: T0.toISOString(), erased_at: null });
  for (const type of events) await record(db, id, topicId, type);
}

async function suppress(db: Db, contactId: string) {
  const rows = writeHashes(keys, `${contactId}@example.org`).map((h) => ({ ...h, scope: 'all', reason: 'unsubscribed', created_at: T0.toISOString(), event_seq: null }));
  await insertSuppressions(db, rows);
}

/** A started campaign on a new topic with `confirmed` confirmed contacts, plus one only requested and one confirmed elsewhere. */
async function campaignWith(storage: Storage, confirmed: number): Promise<{ id: string; contacts: string[] }> {
  const db = storage.db;
  const slug = `t${newId().slice(0, 8)}`;
  const topicId = `topic-${slug}`;
  await db.insertInto('topics').values({ id: topicId, slug, name: slug, description: '', is_public: 1, created_at: T0.toISOString() }).execute();
  await db.insertInto('topics').values({ id: `${topicId}-other`, slug: `${slug}-other`, name: 'other', description: '', is_public: 1, created_at: T0.toISOString() }).execute();
  const contacts = Array.from({ length: confirmed }, (_, i) => `${slug}-c${String(i).padStart(3, '0')}`);
  for (const id of contacts) await addContact(db, id, topicId, ['requested', 'confirmed']);
  await addContact(db, `${slug}-pending`, topicId, ['requested']);
  await addContact(db, `${slug}-elsewhere`, `${topicId}-other`, ['requested', 'confirmed']);
  const deps = { db, clock: fixedClock(T0), newId };
  const campaign = await createCampaign(deps, { topicSlug: slug, templateName: 't', subject: 's', fromAddress: 'news@assent.example.org' });
  await startCampaign(deps, campaign.id);
  return { id: campaign.id, contacts };
}

const rowsOf = (db: Db, campaignId: string) =>
  db.selectFrom('deliveries').selectAll().where('campaign_id', '=', campaignId).orderBy('contact_id').execute();
const ids = (batch: ClaimedDelivery[]) => batch.map((d) => d.contactId).sort();

for (const target of await databaseTargets()) {
  describe(`delivery claims (${target.name})`, { skip: target.skip }, () => {
    let database: TestDatabase;
    let deps: ClaimDeps;
    let db: Db;
    before(async () => {
      database = await target.open();
      db = database.storage.db;
      deps = { db, capabilities: database.storage.capabilities, suppressionKeys: keys };
    });
    after(() => database.cleanup());

    test('reaches exactly the confirmed contacts; a withdrawal, suppression or erasure between batches is honoured (GDPR-06 c, GDPR-21)', async () => {
      const campaign = await campaignWith(database.storage, 6);
      const first = await claimBatch(deps, { campaignId: campaign.id, workerId: 'w1', batchSize: 2, leaseMs: 60_000, now: at(0) });
      assert.equal(first.length, 2);
      for (const d of first) assert.equal(d.address, `${d.contactId}@example.org`);
      assert.deepEqual(await markSentMany(deps, { marks: first.map((d) => ({ delivery: d, messageId: `<${d.contactId}@test>`, sentAt: at(1) })), now: at(1) }), first.map(() => true));
      const rest = campaign.contacts.filter((c) => !ids(first).includes(c));
      const [withdrawn, suppressed] = [rest[0]!, rest[1]!];
      await record(db, withdrawn, (await db.selectFrom('campaigns').select('topic_id').where('id', '=', campaign.id).executeTakeFirstOrThrow()).topic_id, 'withdrawn');
      await suppress(db, suppressed);
      await db.updateTable('contacts').set({ address: null, match_key: null, erased_at: at(1).toISOString() }).where('id', '=', rest[3]!).execute();
      const later = await claimBatch(deps, { campaignId: campaign.id, workerId: 'w1', batchSize: 10, leaseMs: 60_000, now: at(2) });
      assert.deepEqual(ids(later), [rest[2]!]);
      await markSentMany(deps, { marks: [{ delivery: later[0]!, messageId: '<late@test>', sentAt: at(3) }], now: at(3) });
      const rows = await rowsOf(db, campaign.id);
      assert.deepEqual(rows.map((r) => r.contact_id), campaign.contacts, 'one delivery per confirmed contact, nobody else');
      const byId = new Map(rows.map((r) => [r.contact_id, r]));
      assert.deepEqual([byId.get(withdrawn)!.status, byId.get(withdrawn)!.skip_reason], ['skipped', 'state_withdrawn']);
      assert.deepEqual([byId.get(suppressed)!.status, byId.get(suppressed)!.skip_reason], ['skipped', 'suppressed']);
      assert.deepEqual([byId.get(rest[3]!)!.status, byId.get(rest[3]!)!.skip_reason], ['skipped', 'erased']);
      const sent = rows.filter((r) => r.status === 'sent');
      assert.deepEqual(sent.map((r) => r.contact_id), [...ids(first), rest[2]!].sort());
      const confirmedSeqs = await db.selectFrom('consent_events').select(['contact_id', 'seq']).where('type', '=', 'confirmed').execute();
      for (const r of sent) assert.equal(Number(r.consent_event_seq), Number(confirmedSeqs.find((e) => e.contact_id === r.contact_id)!.seq));
      const status = await campaignStatus(deps, campaign.id);
      assert.deepEqual([status.sent, status.skipped, status.skipped_by_reason], [3, 3, { state_withdrawn: 1, suppressed: 1, erased: 1 }]);
    });

    test('a paused campaign is not claimable; resumed, it is', async () => {
      const campaign = await campaignWith(database.storage, 2);
      const cdeps = { db, clock: fixedClock(T0), newId };
      await pauseCampaign(cdeps, campaign.id);
      assert.deepEqual(await claimBatch(deps, { campaignId: campaign.id, workerId: 'w', batchSize: 10, leaseMs: 1000, now: at(0) }), []);
      await resumeCampaign(cdeps, campaign.id);
      assert.equal((await claimBatch(deps, { campaignId: campaign.id, workerId: 'w', batchSize: 10, leaseMs: 1000, now: at(0) })).length, 2);
    });

    test('the claiming statement itself re-reads the status: a pause after the campaign list was read still holds', async () => {
      const campaign = await campaignWith(database.storage, 2);
      const cdeps = { db, clock: fixedClock(T0), newId };
      // As if the claimer listed the campaign as sending, then the pause committed.
      assert.deepEqual(await findClaimableCampaignIds(db, campaign.id), [campaign.id]);
      await pauseCampaign(cdeps, campaign.id);
      const claim = { capabilities: database.storage.capabilities, campaignId: campaign.id, which: 'due' as const, workerId: 'w', batchSize: 10, leaseUntil: at(1000).toISOString(), now: at(0).toISOString() };
      assert.deepEqual(await claimRows(db, claim), []);
      await resumeCampaign(cdeps, campaign.id);
      assert.equal((await claimRows(db, claim)).length, 2);
    });

    test('two concurrent claimers never get the same row', async () => {
      const campaign = await campaignWith(database.storage, 40);
      // PostgreSQL: a second pool on the same database, claiming in parallel.
      // SQLite: writers serialise, so both claimers share the one connection.
      const other = target.name === 'postgres' ? openStorage(database.url) : database.storage;
      const depsB = { ...deps, db: other.db };
      const claimAll = async (d: ClaimDeps, workerId: string) => {
        const got: string[] = [];
        for (;;) {
          const batch = await claimBatch(d, { campaignId: campaign.id, workerId, batchSize: 3, leaseMs: 60_000, now: at(0) });
          if (batch.length === 0) return got;
          got.push(...batch.map((b) => b.contactId));
        }
      };
      const [a, b] = await Promise.all([claimAll(deps, 'A'), claimAll(depsB, 'B')]);
      if (other !== database.storage) await other.close();
      assert.equal(new Set([...a, ...b]).size, a.length + b.length, 'no row claimed twice');
      assert.deepEqual([...a, ...b].sort(), campaign.contacts);
      const owners = await rowsOf(db, campaign.id);
      for (const r of owners) assert.equal(r.lease_owner, a.includes(r.contact_id) ? 'A' : 'B');
    });

    test('an expired lease is re-claimable by another worker, not before', async () => {
      const campaign = await campaignWith(database.storage, 2);
      const held = await claimBatch(deps, { campaignId: campaign.id, workerId: 'dead', batchSize: 10, leaseMs: 1000, now: at(0) });
      assert.equal(held.length, 2);
      assert.deepEqual(await claimBatch(deps, { campaignId: campaign.id, workerId: 'live', batchSize: 10, leaseMs: 1000, now: at(999) }), []);
      const taken = await claimBatch(deps, { campaignId: campaign.id, workerId: 'live', batchSize: 10, leaseMs: 1000, now: at(1000) });
      assert.deepEqual(ids(taken), campaign.contacts);
      assert.deepEqual((await rowsOf(db, campaign.id)).map((r) => r.lease_owner), ['live', 'live']);
      // The dead worker's late report cannot requeue a row it no longer holds.
      assert.equal(await markTransient(deps, { delivery: held[0]!, workerId: 'dead', error: '451', now: at(1001) }), 'lease_lost');
      assert.deepEqual((await rowsOf(db, campaign.id)).map((r) => r.status), ['claimed', 'claimed']);
    });

    test('transient: retried after backoff, then sent once; permanent: only that delivery fails (EML-12 b)', async () => {
      const campaign = await campaignWith(database.storage, 2);
      const policy = { baseMs: 1000, maxMs: 10_000, maxAttempts: 3 };
      const [one, two] = await claimBatch(deps, { campaignId: campaign.id, workerId: 'w', batchSize: 10, leaseMs: 60_000, now: at(0) });
      assert.equal(await markTransient(deps, { delivery: one!, workerId: 'w', error: '451 later', now: at(0), policy }), 'queued');
      assert.deepEqual(await markPermanent(deps, { delivery: two!, workerId: 'w', error: '550 no such user', now: at(0) }), { contactId: two!.contactId });
      assert.deepEqual(await claimBatch(deps, { campaignId: campaign.id, workerId: 'w', batchSize: 10, leaseMs: 60_000, now: at(999) }), []);
      const retry = await claimBatch(deps, { campaignId: campaign.id, workerId: 'w', batchSize: 10, leaseMs: 60_000, now: at(1000) });
      assert.deepEqual(ids(retry), [one!.contactId]);
      assert.equal(retry[0]!.attempts, 1);
      await markSentMany(deps, { marks: [{ delivery: retry[0]!, messageId: '<m@test>', sentAt: at(1001) }], now: at(1001) });
      const rows = new Map((await rowsOf(db, campaign.id)).map((r) => [r.contact_id, r]));
      assert.deepEqual([rows.get(one!.contactId)!.status, rows.get(one!.contactId)!.attempts, rows.get(one!.contactId)!.message_id], ['sent', 2, '<m@test>']);
      assert.deepEqual([rows.get(two!.contactId)!.status, rows.get(two!.contactId)!.error], ['failed', '550 no such user']);
      assert.deepEqual(await claimBatch(deps, { campaignId: campaign.id, workerId: 'w', batchSize: 10, leaseMs: 60_000, now: at(99_000) }), []);
    });

    test('transient failures give up after maxAttempts', async () => {
      const campaign = await campaignWith(database.storage, 1);
      const policy = { baseMs: 1000, maxMs: 1500, maxAttempts: 3 };
      const outcomes: string[] = [];
      for (const now of [at(0), at(1000), at(2500)]) {
        const [d] = await claimBatch(deps, { campaignId: campaign.id, workerId: 'w', batchSize: 1, leaseMs: 60_000, now });
        outcomes.push(await markTransient(deps, { delivery: d!, workerId: 'w', error: '451', now, policy }));
      }
      assert.deepEqual(outcomes, ['queued', 'queued', 'failed']);
      assert.deepEqual((await rowsOf(db, campaign.id)).map((r) => [r.status, r.attempts]), [['failed', 3]]);
    });

    test('the worker sends each message exactly once through 451-then-250, and fails only the 550', async (t) => {
      // A database of its own: the worker claims from every sending campaign.
      const own = await target.open();
      t.after(() => own.cleanup());
      const deps = { db: own.storage.db, capabilities: own.storage.capabilities, suppressionKeys: keys };
      const campaign = await campaignWith(own.storage, 6);
      const bad = campaign.contacts[3]!;
      const transport = createMemoryTransport({
        script: (m, attempt) => (m.envelope.to[0] === `${bad}@example.org` ? 'permanent' : attempt === 1 ? 'transient' : 'sent'),
      });
      const permanent: string[] = [];
      const controller = new AbortController();
      const worker = runWorker({
        deps: { ...deps, clock: systemClock, newId },
        transport,
        render: async (d) => ({ envelope: { from: 'bounce@assent.example.org', to: [d.address] }, messageId: `<${d.campaignId}.${d.contactId}@test>`, raw: Buffer.from(`To: ${d.address}\r\n\r\nhi\r\n`) }),
        workerId: 'worker-1',
        batchSize: 4,
        leaseMs: 60_000,
        signal: controller.signal,
        concurrency: 3,
        idleMs: 5,
        retry: { baseMs: 1, maxMs: 5, maxAttempts: 5 },
        onPermanent: async ({ contactId }) => void permanent.push(contactId),
      });
      const deadline = Date.now() + 10_000;
      while ((await campaignStatus(deps, campaign.id)).status !== 'sent' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      controller.abort();
      const report = await worker;
      const sentIds = transport.sent.map((m) => m.messageId);
      assert.equal(new Set(sentIds).size, sentIds.length, 'no message sent twice');
      assert.deepEqual(sentIds.sort(), campaign.contacts.filter((c) => c !== bad).map((c) => `<${campaign.id}.${c}@test>`).sort());
      assert.deepEqual(permanent, [bad]);
      const status = await campaignStatus(deps, campaign.id);
      assert.deepEqual([status.status, status.sent, status.failed, status.queued, status.claimed], ['sent', 5, 1, 0, 0]);
      assert.deepEqual(report, { sent: 5, retried: 5, failed: 1 });
    });
  });
}
