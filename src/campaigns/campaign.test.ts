import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import { withLedger } from '../consent/index.js';
import { insertContact } from '../contacts/index.js';
import { fixedClock } from '../shared/clock.js';
import { isAppError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Db } from '../storage/index.js';
import { campaignStatuses, transition, transitions, type CampaignAction } from './campaign.js';
import {
  advanceCampaigns,
  campaignStatus,
  cancelCampaign,
  createCampaign,
  pauseCampaign,
  resumeCampaign,
  scheduleCampaign,
  startCampaign,
} from './campaign.service.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');

describe('campaign lifecycle table', () => {
  // Every (status, action) pair: the status it leads to, or '-' for a conflict.
  const expected: Record<string, Record<CampaignAction, string>> = {
    draft: { schedule: 'scheduled', start: 'sending', pause: '-', resume: '-', cancel: 'cancelled', finish: '-' },
    scheduled: { schedule: 'scheduled', start: 'sending', pause: '-', resume: '-', cancel: 'cancelled', finish: '-' },
    sending: { schedule: '-', start: '-', pause: 'paused', resume: '-', cancel: 'cancelled', finish: 'sent' },
    paused: { schedule: '-', start: '-', pause: '-', resume: 'sending', cancel: 'cancelled', finish: '-' },
    sent: { schedule: '-', start: '-', pause: '-', resume: '-', cancel: '-', finish: '-' },
    cancelled: { schedule: '-', start: '-', pause: '-', resume: '-', cancel: '-', finish: '-' },
  };
  for (const status of campaignStatuses) {
    test(`from ${status}`, () => {
      for (const action of Object.keys(transitions) as CampaignAction[]) {
        const want = expected[status]![action];
        if (want === '-') {
          assert.throws(() => transition(status, action), (e: unknown) => isAppError(e, 'conflict') && e.message.includes(`cannot ${action} a campaign that is ${status}`));
        } else {
          assert.equal(transition(status, action), want, `${status} --${action}-->`);
        }
      }
    });
  }
});

/** A topic, and contacts whose ledger holds the given event types for it. */
async function seed(db: Db, people: { id: string; events: ('requested' | 'confirmed' | 'withdrawn' | 'imported')[]; erased?: boolean }[]) {
  await db.insertInto('topics').values({ id: 'topic-news', slug: 'news', name: 'News', description: 'Monthly', is_public: 1, created_at: T0.toISOString() }).execute();
  for (const p of people) {
    const address = `${p.id}@example.org`;
    await insertContact(db, { id: p.id, address: p.erased ? null : address, match_key: p.erased ? null : address, provider_key: null, locale: null, created_at: T0.toISOString(), erased_at: p.erased ? T0.toISOString() : null });
    await withLedger(db, (_trx, ledger) =>
      ledger.append(p.events.map((type) => ({ id: newId(), contactId: p.id, topicId: 'topic-news', type, occurredAt: T0, evidence: { method: 'test', actor: 'subject' } }))),
    );
  }
}

for (const target of await databaseTargets()) {
  describe(`campaign service (${target.name})`, { skip: target.skip }, () => {
    let database: TestDatabase;
    let db: Db;
    const clock = fixedClock(T0);
    const deps = () => ({ db, clock, newId });
    before(async () => {
      database = await target.open();
      db = database.storage.db;
      await seed(db, [
        { id: 'c-confirmed-1', events: ['requested', 'confirmed'] },
        { id: 'c-confirmed-2', events: ['requested', 'confirmed'] },
        { id: 'c-requested', events: ['requested'] },
        { id: 'c-withdrawn', events: ['requested', 'confirmed', 'withdrawn'] },
        { id: 'c-imported', events: ['imported'] },
        { id: 'c-erased', events: ['requested', 'confirmed'], erased: true },
      ]);
    });
    after(() => database.cleanup());

    const input = { topicSlug: 'news', templateName: 'monthly', subject: 'March', fromAddress: 'News <news@assent.example.org>' };
    const audience = (campaignId: string) =>
      db.selectFrom('deliveries').select('contact_id').where('campaign_id', '=', campaignId).orderBy('contact_id').execute().then((r) => r.map((x) => x.contact_id));

    test('start materialises exactly the confirmed, not erased contacts of the topic; status counts them', async () => {
      const campaign = await createCampaign(deps(), input);
      assert.equal(campaign.status, 'draft');
      const started = await startCampaign(deps(), campaign.id);
      assert.equal(started.status, 'sending');
      assert.equal(started.materialised_at, T0.toISOString());
      assert.deepEqual(await audience(campaign.id), ['c-confirmed-1', 'c-confirmed-2']);
      assert.deepEqual(await campaignStatus(deps(), campaign.id), { id: campaign.id, status: 'sending', queued: 2, claimed: 0, sent: 0, failed: 0, skipped: 0, skipped_by_reason: {} });
      await assert.rejects(pauseCampaign(deps(), 'no-such-id'), (e: unknown) => isAppError(e, 'not_found'));
      assert.equal((await pauseCampaign(deps(), campaign.id)).status, 'paused');
      await assert.rejects(pauseCampaign(deps(), campaign.id), (e: unknown) => isAppError(e, 'conflict'));
      assert.equal((await resumeCampaign(deps(), campaign.id)).status, 'sending');
      assert.equal((await cancelCampaign(deps(), campaign.id)).status, 'cancelled');
      assert.deepEqual(await campaignStatus(deps(), campaign.id), { id: campaign.id, status: 'cancelled', queued: 0, claimed: 0, sent: 0, failed: 0, skipped: 2, skipped_by_reason: { cancelled: 2 } });
    });

    test('a re-permission campaign reaches only imported contacts', async () => {
      const campaign = await createCampaign(deps(), { ...input, kind: 'repermission' });
      await startCampaign(deps(), campaign.id);
      assert.deepEqual(await audience(campaign.id), ['c-imported']);
    });

    test('materialisation is idempotent: re-running after a crash adds nothing twice', async () => {
      const campaign = await createCampaign(deps(), input);
      await startCampaign(deps(), campaign.id);
      await db.updateTable('campaigns').set({ materialised_at: null }).where('id', '=', campaign.id).execute();
      await advanceCampaigns(deps());
      assert.deepEqual(await audience(campaign.id), ['c-confirmed-1', 'c-confirmed-2']);
      assert.equal((await campaignStatus(deps(), campaign.id)).queued, 2);
    });

    test('a scheduled campaign starts when its time has come, and is marked sent once drained', async () => {
      const campaign = await createCampaign(deps(), input);
      await scheduleCampaign(deps(), campaign.id, new Date(T0.getTime() + 60_000));
      assert.deepEqual((await advanceCampaigns(deps())).started, []);
      clock.advance(60_000);
      assert.deepEqual((await advanceCampaigns(deps())).started, [campaign.id]);
      assert.equal((await campaignStatus(deps(), campaign.id)).status, 'sending');
      await db.updateTable('deliveries').set({ status: 'sent' }).where('campaign_id', '=', campaign.id).execute();
      const { finished } = await advanceCampaigns(deps());
      assert.ok(finished.includes(campaign.id));
      assert.equal((await campaignStatus(deps(), campaign.id)).status, 'sent');
    });

    test('creation refuses an unknown topic and an empty subject', async () => {
      await assert.rejects(createCampaign(deps(), { ...input, topicSlug: 'nope' }), (e: unknown) => isAppError(e, 'not_found'));
      await assert.rejects(createCampaign(deps(), { ...input, subject: ' ' }), (e: unknown) => isAppError(e, 'validation_failed'));
    });
  });
}
