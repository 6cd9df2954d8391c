/**
 * Re-permission campaigns (issue 5 point 4): the pure rules, the fixed
 * mail, and the worker jobs (reminder, deadline lapse) on every database.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import { withLedger } from '../consent/index.js';
import { fixedClock } from '../shared/clock.js';
import { isAppError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Db } from '../storage/index.js';
import { addTopic, defaultConsentText } from '../topics/index.js';
import { campaignStatus, scheduleCampaign, startCampaign } from './campaign.service.js';
import { findCampaign } from './campaign.repository.js';
import { checkRepermissionDates, deadlineAction, decideConfirm, LAPSE_BATCH, reminderDue, type RepermissionRow } from './repermission.js';
import { repermissionMail } from './repermission-mail.js';
import { runRepermissionJobs } from './repermission-jobs.service.js';
import { createRepermissionCampaign, repermissionStatus, startRepermissionCampaign } from './repermission.service.js';
import { findReminderOf } from './repermission.repository.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const DAY = 86_400_000;
const at = (days: number) => new Date(T0.getTime() + days * DAY);
const rejects = (fn: () => unknown, message: RegExp) => assert.throws(fn, (e: unknown) => isAppError(e, 'validation_failed') && message.test(e.message));

describe('re-permission rules (pure)', () => {
  test('dates: the deadline must be in the future, a reminder strictly between now and it', () => {
    rejects(() => checkRepermissionDates({ deadline: T0, reminderAt: null, now: T0 }), /deadline must be in the future/);
    rejects(() => checkRepermissionDates({ deadline: new Date('x'), reminderAt: null, now: T0 }), /not a valid date/);
    rejects(() => checkRepermissionDates({ deadline: at(10), reminderAt: at(10), now: T0 }), /before the deadline/);
    rejects(() => checkRepermissionDates({ deadline: at(10), reminderAt: at(-1), now: T0 }), /after now/);
    assert.doesNotThrow(() => checkRepermissionDates({ deadline: at(10), reminderAt: at(7), now: T0 }));
  });

  test('ABU-01, GDPR-04: a click confirms only a still-imported, unsuppressed contact before the deadline', () => {
    const base = { campaign: { kind: 'repermission', topic_id: 't' }, deadlineAt: at(10).toISOString(), tokenTopicId: 't', state: 'imported', suppressed: false, now: at(1) };
    assert.deepEqual(decideConfirm(base), { ok: true });
    assert.deepEqual(decideConfirm({ ...base, now: at(10) }), { ok: false, reason: 'deadline_passed' });
    assert.deepEqual(decideConfirm({ ...base, state: 'confirmed' }), { ok: false, reason: 'already_confirmed' });
    for (const state of ['lapsed', 'withdrawn', 'requested', null]) {
      assert.deepEqual(decideConfirm({ ...base, state }), { ok: false, reason: 'not_imported' }, String(state));
    }
    assert.deepEqual(decideConfirm({ ...base, suppressed: true }), { ok: false, reason: 'suppressed' });
    assert.deepEqual(decideConfirm({ ...base, campaign: { kind: 'regular', topic_id: 't' } }), { ok: false, reason: 'wrong_campaign' });
    assert.deepEqual(decideConfirm({ ...base, tokenTopicId: 'other' }), { ok: false, reason: 'wrong_campaign' });
    assert.deepEqual(decideConfirm({ ...base, campaign: undefined }), { ok: false, reason: 'wrong_campaign' });
  });

  test('at the deadline: not-yet-sending campaigns are cancelled, sending ones drained, finished ones left', () => {
    const got = Object.fromEntries(['draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled'].map((s) => [s, deadlineAction(s)]));
    assert.deepEqual(got, { draft: 'cancel', scheduled: 'cancel', sending: 'drain', paused: 'cancel', sent: 'none', cancelled: 'none' });
  });

  test('the reminder is due once, before the deadline, after the first wave started', () => {
    const row: RepermissionRow = { campaign_id: 'c', parent_id: null, deadline_at: at(10).toISOString(), reminder_at: at(7).toISOString(), reminder_sent_at: null, closed_at: null };
    assert.equal(reminderDue(row, { status: 'sending' }, at(7)), true);
    assert.equal(reminderDue(row, { status: 'sent' }, at(8)), true);
    assert.equal(reminderDue(row, { status: 'sending' }, at(6)), false);
    assert.equal(reminderDue(row, { status: 'sending' }, at(10)), false);
    assert.equal(reminderDue(row, { status: 'draft' }, at(8)), false);
    assert.equal(reminderDue({ ...row, reminder_sent_at: at(7).toISOString() }, { status: 'sent' }, at(8)), false);
    assert.equal(reminderDue({ ...row, parent_id: 'p' }, { status: 'sent' }, at(8)), false);
    assert.equal(reminderDue({ ...row, reminder_at: null }, { status: 'sent' }, at(8)), false);
  });

  test('EPR-04 (ICO Honda, Flybe): the mail holds the question, one confirm link and the two mandatory links, nothing else', () => {
    const links = { confirmUrl: 'https://a.example/r/C', unsubscribeUrl: 'https://a.example/u/U', preferencesUrl: 'https://a.example/p/P' };
    const mail = repermissionMail({ locale: 'en', controller: { name: 'Example Ltd', address: '1 Road, Town' }, topicName: 'News', deadline: at(10), reminder: false, ...links });
    assert.equal(mail.subject, 'Do you still want to receive “News” from Example Ltd?');
    for (const part of [mail.text, mail.html]) {
      const urls = [...part.matchAll(/https?:\/\/[^\s"<>]+/g)].map((m) => m[0]);
      assert.deepEqual([...new Set(urls)].sort(), [links.preferencesUrl, links.confirmUrl, links.unsubscribeUrl]);
      assert.ok(part.includes('March 11, 2026 at 10:00 AM UTC'), 'the deadline is stated');
    }
    assert.deepEqual([...mail.html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]), [links.confirmUrl, links.unsubscribeUrl, links.preferencesUrl]);
    const reminder = repermissionMail({ locale: 'en', controller: { name: 'Example Ltd' }, topicName: 'News', deadline: at(10), reminder: true, ...links });
    assert.equal(reminder.subject, 'Reminder: do you still want to receive “News” from Example Ltd?');
  });
});

/** Contacts whose ledger holds the given events for the topic, in one ledger transaction. */
async function seed(db: Db, topicId: string, people: { id: string; events: ('imported' | 'confirmed' | 'requested' | 'withdrawn')[] }[]) {
  const rows = people.map((p) => ({ id: p.id, address: `${p.id}@example.org`, match_key: `${p.id}@example.org`, provider_key: null, locale: null, created_at: T0.toISOString(), erased_at: null }));
  for (let i = 0; i < rows.length; i += 500) await db.insertInto('contacts').values(rows.slice(i, i + 500)).execute();
  await withLedger(db, (_trx, ledger) =>
    ledger.append(people.flatMap((p) => p.events.map((type) => ({ id: newId(), contactId: p.id, topicId, type, occurredAt: T0, evidence: { method: 'test', actor: 'test' } })))),
  );
}

const stateCounts = async (db: Db, topicId: string) =>
  Object.fromEntries(
    (await db.selectFrom('consent_states').select(({ fn }) => ['state', fn.countAll<number>().as('n')]).where('topic_id', '=', topicId).groupBy('state').execute()).map((r) => [r.state, Number(r.n)]),
  );

for (const target of await databaseTargets()) {
  describe(`re-permission jobs (${target.name})`, { skip: target.skip }, () => {
    let database: TestDatabase;
    let db: Db;
    const clock = fixedClock(T0);
    const deps = () => ({ db, clock, newId });
    before(async () => {
      database = await target.open();
      db = database.storage.db;
    });
    after(() => database.cleanup());

    async function topic(slug: string): Promise<string> {
      const { topic } = await addTopic(deps(), { slug, name: slug, description: 'd', consentText: defaultConsentText({ controllerName: 'Example Ltd', topicName: slug }), locale: 'en' });
      return topic.id;
    }

    test('creation checks the dates and the topic, and stores the deadline beside a draft campaign', async () => {
      clock.set(T0);
      await topic('create');
      const input = { topicSlug: 'create', deadline: at(10), reminderAt: at(7), fromAddress: 'News <news@example.org>' };
      await assert.rejects(createRepermissionCampaign(deps(), { ...input, deadline: at(-1) }), /deadline must be in the future/);
      await assert.rejects(createRepermissionCampaign(deps(), { ...input, reminderAt: at(11) }), /before the deadline/);
      await assert.rejects(createRepermissionCampaign(deps(), { ...input, topicSlug: 'nope' }), /no topic "nope"/);
      const { campaign, repermission } = await createRepermissionCampaign(deps(), input);
      assert.equal(campaign.kind, 'repermission');
      assert.equal(campaign.status, 'draft');
      assert.deepEqual(repermission, { campaign_id: campaign.id, parent_id: null, deadline_at: at(10).toISOString(), reminder_at: at(7).toISOString(), reminder_sent_at: null, closed_at: null });
      clock.set(at(10));
      await assert.rejects(startRepermissionCampaign(deps(), campaign.id), /deadline of campaign .* has passed/);
      // The deadline job cancels what can no longer be sent.
      const report = await runRepermissionJobs(deps(), clock.now());
      assert.deepEqual(report, { reminders: [], closed: [campaign.id], lapsed: 0, skipped: 0 });
      assert.equal((await findCampaign(db, campaign.id))!.status, 'cancelled');
    });

    test('the reminder goes only to those who were sent the request and have not answered; made once', async () => {
      clock.set(T0);
      const topicId = await topic('remind');
      await seed(db, topicId, [
        { id: 'rm-silent-1', events: ['imported'] },
        { id: 'rm-silent-2', events: ['imported'] },
        { id: 'rm-answered', events: ['imported'] },
        { id: 'rm-withdrew', events: ['imported'] },
        { id: 'rm-unsent', events: ['imported'] },
        { id: 'rm-confirmed', events: ['requested', 'confirmed'] },
      ]);
      const { campaign } = await createRepermissionCampaign(deps(), { topicSlug: 'remind', deadline: at(10), reminderAt: at(7), fromAddress: 'news@example.org' });
      await startRepermissionCampaign(deps(), campaign.id);
      // The first wave: everyone imported was sent the request but one, whose delivery is still queued.
      await db.updateTable('deliveries').set({ status: 'sent' }).where('campaign_id', '=', campaign.id).where('contact_id', '!=', 'rm-unsent').execute();
      await withLedger(db, (_trx, ledger) =>
        ledger.append([
          { id: newId(), contactId: 'rm-answered', topicId, type: 'confirmed', occurredAt: at(2), evidence: { method: 'test', actor: 'subject' } },
          { id: newId(), contactId: 'rm-withdrew', topicId, type: 'withdrawn', occurredAt: at(3), evidence: { method: 'test', actor: 'subject' } },
        ]),
      );
      clock.set(at(6));
      assert.deepEqual((await runRepermissionJobs(deps(), clock.now())).reminders, [], 'not before its time');
      clock.set(at(7));
      const first = await runRepermissionJobs(deps(), clock.now());
      assert.equal(first.reminders.length, 1);
      assert.deepEqual((await runRepermissionJobs(deps(), clock.now())).reminders, [], 'made once');
      const child = await findReminderOf(db, campaign.id);
      assert.equal(child?.campaign_id, first.reminders[0]);
      assert.equal(child?.deadline_at, at(10).toISOString());
      const reminded = await db.selectFrom('deliveries').select(['contact_id', 'status']).where('campaign_id', '=', first.reminders[0]!).orderBy('contact_id').execute();
      assert.deepEqual(reminded, [{ contact_id: 'rm-silent-1', status: 'queued' }, { contact_id: 'rm-silent-2', status: 'queued' }]);
      const childCampaign = (await findCampaign(db, first.reminders[0]!))!;
      assert.deepEqual([childCampaign.kind, childCampaign.status, childCampaign.topic_id], ['repermission', 'sending', topicId]);
      const status = await repermissionStatus(deps(), campaign.id);
      assert.equal(status.reminder?.id, childCampaign.id);
      assert.equal(status.reminder?.queued, 2);
      assert.deepEqual(status.audience, { imported: 3, confirmed: 1, withdrawn: 1 });
      // At the deadline both waves stop; the three who never answered lapse (once: the reminder's audience is the root's).
      clock.set(at(10));
      const closing = await runRepermissionJobs(deps(), clock.now());
      assert.deepEqual([closing.closed.sort(), closing.lapsed, closing.skipped], [[campaign.id, childCampaign.id].sort(), 3, 3]);
      assert.deepEqual((await repermissionStatus(deps(), campaign.id)).audience, { lapsed: 3, confirmed: 1, withdrawn: 1 });
    });

    test(`the deadline stops sending and lapses the unanswered in batches of ${LAPSE_BATCH}; exact, idempotent`, async () => {
      clock.set(T0);
      const topicId = await topic('lapse');
      const silent = Array.from({ length: 2 * LAPSE_BATCH + 345 }, (_, i) => ({ id: `lp-${String(i).padStart(5, '0')}`, events: ['imported' as const] }));
      await seed(db, topicId, [...silent, { id: 'lp-yes', events: ['imported'] }, { id: 'lp-fan', events: ['requested', 'confirmed'] }]);
      const { campaign } = await createRepermissionCampaign(deps(), { topicSlug: 'lapse', deadline: at(10), fromAddress: 'news@example.org' });
      await startRepermissionCampaign(deps(), campaign.id);
      await db.updateTable('deliveries').set({ status: 'sent' }).where('campaign_id', '=', campaign.id).where('contact_id', '<', 'lp-00100').execute();
      await withLedger(db, (_trx, ledger) => ledger.append([{ id: newId(), contactId: 'lp-yes', topicId, type: 'confirmed', occurredAt: at(1), evidence: { method: 'test', actor: 'subject' } }]));
      // Imported after the campaign started: not its audience, so not lapsed by it.
      await seed(db, topicId, [{ id: 'lp-late', events: ['imported'] }]);
      clock.set(at(10));
      const report = await runRepermissionJobs(deps(), clock.now());
      assert.deepEqual(report, { reminders: [], closed: [campaign.id], lapsed: silent.length, skipped: silent.length - 100 + 1 });
      assert.deepEqual(await stateCounts(db, topicId), { lapsed: silent.length, confirmed: 2, imported: 1 });
      const counts = await campaignStatus(deps(), campaign.id);
      assert.deepEqual([counts.sent, counts.skipped_by_reason], [100, { deadline_passed: silent.length - 100 + 1 }]);
      assert.deepEqual(await runRepermissionJobs(deps(), clock.now()), { reminders: [], closed: [], lapsed: 0, skipped: 0 }, 'idempotent');
      const events = await db.selectFrom('consent_events').select(['evidence']).where('type', '=', 'lapsed').where('topic_id', '=', topicId).execute();
      assert.equal(events.length, silent.length);
      const evidence = JSON.parse(events[0]!.evidence) as Record<string, unknown>;
      assert.deepEqual([evidence.method, evidence.actor, evidence.campaign_id, evidence.deadline_at], ['re_permission_deadline', 'system', campaign.id, at(10).toISOString()]);
    });

    test('a scheduled re-permission campaign whose deadline passed is cancelled, never started', async () => {
      clock.set(T0);
      await topic('sched');
      const { campaign } = await createRepermissionCampaign(deps(), { topicSlug: 'sched', deadline: at(2), fromAddress: 'news@example.org' });
      await scheduleCampaign(deps(), campaign.id, at(1));
      clock.set(at(3));
      await runRepermissionJobs(deps(), clock.now());
      assert.equal((await findCampaign(db, campaign.id))!.status, 'cancelled');
      await assert.rejects(startCampaign(deps(), campaign.id), /cannot start a campaign that is cancelled/);
    });
  });
}
