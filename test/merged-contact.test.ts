/**
 * After an operator merges a probable duplicate B into A (issue 5 point 3),
 * everything the person does through B's address or B's old links acts on
 * A, where their states now are, and B is never revived beside it: a
 * sign-up, a confirmation link mailed before the merge, the preference
 * centre and its unsubscribe, a subscription from the centre, and erasure
 * (one person, every record). On every database.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { confirmRepermission, createRepermissionCampaign, inspectRepermission, mergeProbableDuplicates, runRepermissionJobs } from '../src/campaigns/index.js';
import { findSuppressions, lookupHashes, readContactEvents, verifyLedger, withLedger } from '../src/consent/index.js';
import { createContactKey, findContactByMatchKey, findContactById, findMergedInto, insertContact, insertContactKey, keptContactOf, parseAddress } from '../src/contacts/index.js';
import { importContacts } from '../src/contacts/import.service.js';
import { AppError } from '../src/shared/errors.js';
import { eraseContact, exportContactData, exportJsonSchema, validateJson } from '../src/dsr/index.js';
import { addForm, requestTopicSubscription } from '../src/forms/index.js';
import { loadCentre, objectToAll, resolveLink, signLinkToken, unsubscribeByLink, type PreferenceDeps } from '../src/preferences/index.js';
import { addTopic, defaultConsentText } from '../src/topics/index.js';
import { newId } from '../src/shared/ids.js';
import type { Contact } from '../src/storage/index.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { confirmLinkFrom, openConfirm, submitForm } from './support/http.js';

const START = new Date('2026-03-01T10:00:00.000Z');
const DAY_MS = 86_400_000;
// Probable duplicates: one Gmail mailbox under two match keys (ADR-07).
const KEPT = 'janedoe@gmail.com';
const OTHER = 'jane.doe+news@gmail.com';

for (const target of await databaseTargets()) {
  describe(`a merged-away contact acts through the kept one (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    let kept: Contact;
    let other: Contact;
    let pendingToken: string;
    const db = () => rt.runtime.storage.db;
    const prefs = (): PreferenceDeps => ({ ...rt.runtime.signup, linkKeys: rt.runtime.secrets.linkKeys });
    const contactOf = async (address: string) => {
      const parsed = parseAddress(address);
      assert.ok(parsed.ok);
      return (await findContactByMatchKey(db(), parsed.matchKey))!;
    };
    const statesOf = async (contactId: string) =>
      Object.fromEntries(
        (await db().selectFrom('consent_states').innerJoin('topics', 'topics.id', 'consent_states.topic_id').select(['topics.slug', 'consent_states.state']).where('contact_id', '=', contactId).execute())
          .map((s) => [s.slug, s.state]),
      );
    const typesOf = async (contactId: string) => (await readContactEvents(db(), contactId)).map((e) => e.type);
    const sign = async (address: string, topics: string | string[]) => {
      const sent = rt.transport.sent.length;
      const response = await submitForm(rt.app, 'all', { email: address, topics }, { remoteAddress: '203.0.113.7' });
      assert.equal(response.statusCode, 200);
      return rt.transport.sent.slice(sent);
    };

    before(async () => {
      rt = await startTestRuntime(target, { start: START });
      const deps = { db: db(), clock: rt.clock, newId };
      for (const [slug, name] of [['offers', 'Offers'], ['events', 'Events']] as const) {
        await addTopic(deps, { slug, name, description: `${name} by mail.`, consentText: defaultConsentText({ controllerName: 'Example Ltd', topicName: name }), locale: 'en' });
      }
      await addForm(deps, { slug: 'all', title: 'All', topics: [{ slug: 'newsletter' }, { slug: 'offers' }, { slug: 'events' }] });

      // A confirms the newsletter; B asks for offers and has not confirmed yet.
      const [confirmA] = await sign(KEPT, 'newsletter');
      assert.equal((await openConfirm(rt.app, 'POST', confirmLinkFrom(confirmA!).token)).statusCode, 200);
      const [confirmB] = await sign(OTHER, 'offers');
      pendingToken = confirmLinkFrom(confirmB!).token;
      kept = await contactOf(KEPT);
      other = await contactOf(OTHER);
      assert.notEqual(kept.id, other.id);
      await mergeProbableDuplicates(deps, { keepId: kept.id, otherId: other.id });
      assert.deepEqual(await statesOf(kept.id), { newsletter: 'confirmed', offers: 'requested' });
      assert.deepEqual(await statesOf(other.id), {});
    });
    after(async () => {
      await rt?.close();
    });

    test('a confirmation link mailed to B before the merge confirms on A, with B\'s request as its evidence', async () => {
      const otherEvents = await readContactEvents(db(), other.id);
      const request = otherEvents.find((e) => e.type === 'requested')!;
      const sent = rt.transport.sent.length;
      rt.clock.advance(60_000);
      assert.equal((await openConfirm(rt.app, 'POST', pendingToken)).statusCode, 200);
      assert.deepEqual(await statesOf(kept.id), { newsletter: 'confirmed', offers: 'confirmed' });
      assert.deepEqual(await statesOf(other.id), {});
      assert.deepEqual((await readContactEvents(db(), other.id)).map((e) => e.id), otherEvents.map((e) => e.id), 'nothing new on B');
      const confirmed = (await readContactEvents(db(), kept.id)).at(-1)!;
      assert.equal(confirmed.type, 'confirmed');
      const evidence = JSON.parse(confirmed.evidence) as Record<string, unknown>;
      assert.equal(evidence.requested_event, request.id);
      assert.equal(evidence.form_slug, 'all');
      // The receipt goes to the kept contact's address.
      assert.deepEqual(rt.transport.sent.slice(sent).map((m) => m.envelope.to), [[KEPT]]);
    });

    test('a sign-up with B\'s address records the request on A and mails A; a topic A holds is nothing new', async () => {
      const counts = await db().selectFrom('contacts').select('id').execute();
      assert.deepEqual(await sign(OTHER, ['newsletter', 'offers']), [], 'both already confirmed on A');
      const mails = await sign(OTHER, 'events');
      assert.deepEqual(mails.map((m) => m.envelope.to), [[KEPT]]);
      assert.equal((await db().selectFrom('contacts').select('id').execute()).length, counts.length, 'no new contact');
      assert.deepEqual(await statesOf(other.id), {});
      assert.equal((await typesOf(other.id)).includes('confirmed'), false);
      const token = await db().selectFrom('confirmation_tokens').select('contact_id').orderBy('created_at', 'desc').executeTakeFirstOrThrow();
      assert.equal(token.contact_id, kept.id);
      assert.equal((await openConfirm(rt.app, 'POST', confirmLinkFrom(mails[0]!).token)).statusCode, 200);
      assert.deepEqual(await statesOf(kept.id), { newsletter: 'confirmed', offers: 'confirmed', events: 'confirmed' });
      assert.deepEqual(await statesOf(other.id), {});
    });

    test('B\'s old preference link shows A\'s centre, and B\'s old unsubscribe link withdraws A\'s consent', async () => {
      const centre = await resolveLink(prefs(), signLinkToken(prefs().linkKeys, { purpose: 'preferences', contactId: other.id }), 'preferences');
      assert.equal(centre?.contact.id, kept.id);
      const view = await loadCentre(prefs(), centre!.contact);
      assert.deepEqual(view.topics.filter((t) => t.status !== 'none').map((t) => [t.slug, t.status]).sort(), [['events', 'confirmed'], ['newsletter', 'confirmed'], ['offers', 'confirmed']]);

      const newsletter = await db().selectFrom('topics').select('id').where('slug', '=', 'newsletter').executeTakeFirstOrThrow();
      const token = signLinkToken(prefs().linkKeys, { purpose: 'unsubscribe', contactId: other.id, topicId: newsletter.id });
      const result = await unsubscribeByLink(prefs(), { token, channel: 'one_click_header', ip: '198.51.100.1', userAgent: 'Mail client' });
      assert.equal(result?.outcome, 'withdrawn');
      assert.equal((await statesOf(kept.id)).newsletter, 'withdrawn');
      assert.deepEqual(await statesOf(other.id), {});
    });

    test('a subscription asked from B\'s centre is a double opt-in on A', async () => {
      rt.clock.advance(DAY_MS + 1);
      const offers = await db().selectFrom('topics').select('id').where('slug', '=', 'offers').executeTakeFirstOrThrow();
      await unsubscribeByLink(prefs(), {
        token: signLinkToken(prefs().linkKeys, { purpose: 'unsubscribe', contactId: kept.id, topicId: offers.id }),
        channel: 'one_click_header',
        ip: '198.51.100.1',
        userAgent: 'Mail client',
      });
      const sent = rt.transport.sent.length;
      const result = await requestTopicSubscription(rt.runtime.signup, { contactId: other.id, topicIds: [offers.id], ip: '198.51.100.2', userAgent: 'Browser', locale: 'en' });
      assert.deepEqual(result, { sent: true, topicIds: [offers.id] });
      assert.deepEqual(rt.transport.sent.slice(sent).map((m) => m.envelope.to), [[KEPT]]);
      assert.equal((await statesOf(kept.id)).offers, 'requested');
      assert.deepEqual(await statesOf(other.id), {});
    });

    test('GDPR-15/20: the export asked through either record is the person\'s: the kept contact with every record merged into it, each record\'s evidence opened with its own key', async () => {
      const deps = rt.runtime.signup;
      const viaKept = await exportContactData(deps, kept.id);
      const viaOther = await exportContactData(deps, other.id);
      assert.deepEqual({ ...viaOther, generated_at: '' }, { ...viaKept, generated_at: '' });
      assert.deepEqual(validateJson(exportJsonSchema(), viaKept), []);
      assert.equal(viaKept.profile.id, kept.id);
      assert.equal(viaKept.merged_records.length, 1);
      const record = viaKept.merged_records[0]!;
      const merge = await db().selectFrom('contact_merges').selectAll().where('contact_id', '=', other.id).executeTakeFirstOrThrow();
      assert.deepEqual(
        { id: record.profile.id, address: record.profile.address, merged_into: record.profile.merged_into, merged_at: record.profile.merged_at, personal_data: record.personal_data },
        { id: other.id, address: other.address, merged_into: kept.id, merged_at: merge.merged_at, personal_data: 'opened' },
      );
      const stored = await readContactEvents(db(), other.id);
      assert.deepEqual(record.consent_events.map((e) => [e.id, e.type, e.hash]), stored.map((e) => [e.id, e.type, e.hash]));
      const request = record.consent_events.find((e) => e.type === 'requested')!;
      assert.equal(request.evidence.personal?.ip, '203.0.113.7', 'B\'s sign-up evidence, opened with B\'s key');
      assert.ok(record.messages.system.some((m) => m.kind === 'confirmation'), 'the confirmation mail sent to B');
      assert.ok(!viaKept.consent_events.some((e) => stored.some((s) => s.id === e.id)), 'B\'s events are under B, not repeated under A');
    });

    test('GDPR-21: an objection named with B\'s id (a link read just before the merge names B) lands on A, resolved in the objection\'s own transaction', async () => {
      assert.equal(await objectToAll(prefs(), { contactId: other.id, channel: 'preference_centre', ip: '198.51.100.4', userAgent: 'Browser' }), 'objected');
      assert.deepEqual((await typesOf(kept.id)).filter((t) => t === 'objected'), ['objected']);
      assert.deepEqual((await typesOf(other.id)).filter((t) => t === 'objected'), [], 'the merged-away record is not revived');
      const hashes = lookupHashes(rt.runtime.secrets.suppressionKeys, kept.match_key!);
      assert.ok((await findSuppressions(db(), hashes, [])).some((x) => x.scope === 'all' && x.reason === 'objected'));
      for (const topic of Object.values(await statesOf(kept.id))) assert.notEqual(topic, 'confirmed');
    });

    test('GDPR-17: erasure asked through the merged-away record erases the person: the kept contact and every record merged into it; the ledger verifies', async () => {
      assert.deepEqual(await eraseContact(rt.runtime.signup, { contactId: other.id, channel: 'operator', actor: 'admin' }), { erased: true });
      for (const id of [kept.id, other.id]) {
        const row = await findContactById(db(), id);
        assert.deepEqual([row?.address, row?.match_key, row?.erased_at], [null, null, rt.clock.now().toISOString()]);
        assert.equal((await typesOf(id)).at(-1), 'erased');
      }
      const erasedB = (await readContactEvents(db(), other.id)).at(-1)!;
      assert.equal((JSON.parse(erasedB.evidence) as Record<string, unknown>).erased_with, kept.id);
      assert.equal((await db().selectFrom('contact_keys').select('contact_id').where('contact_id', 'in', [kept.id, other.id]).execute()).length, 0);
      assert.equal((await db().selectFrom('contact_names').select('contact_id').where('contact_id', 'in', [kept.id, other.id]).execute()).length, 0);
      assert.equal((await verifyLedger(db())).ok, true);
      // Either address signing up again sends nothing.
      assert.deepEqual(await sign(OTHER, 'events'), []);
      assert.deepEqual(await sign(KEPT, 'events'), []);
      assert.deepEqual(await eraseContact(rt.runtime.signup, { contactId: kept.id, channel: 'operator' }), { erased: false });
    });
  });
}

for (const target of await databaseTargets()) {
  describe(`a re-permission request mailed before a merge (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    const db = () => rt.runtime.storage.db;
    const ids = { kept: newId(), other: newId() };
    /** Contacts as an import leaves them: each with its key; `imported` for the newsletter on `importedIds`. */
    const seedImported = async (addresses: readonly (readonly [string, string])[], importedIds: readonly string[], at: Date) => {
      const topic = await db().selectFrom('topics').select('id').where('slug', '=', 'newsletter').executeTakeFirstOrThrow();
      await withLedger(db(), async (trx, ledger) => {
        for (const [id, address] of addresses) {
          const parsed = parseAddress(address);
          assert.ok(parsed.ok);
          await insertContact(trx, { id, address: parsed.address, match_key: parsed.matchKey, provider_key: parsed.providerKey, locale: 'en', created_at: at.toISOString(), erased_at: null });
          await insertContactKey(trx, { contact_id: id, wrapped_key: createContactKey(rt.runtime.secrets.masterKeys, id).wrapped, created_at: at.toISOString() });
        }
        await ledger.append(importedIds.map((id) => ({ id: newId(), contactId: id, topicId: topic.id, type: 'imported' as const, occurredAt: at, evidence: { method: 'import', actor: 'operator', source: 'legacy.csv' } })));
      });
    };
    /** The contact's state for the newsletter, if any. */
    const stateOf = async (id: string) =>
      (
        await db()
          .selectFrom('consent_states as s')
          .innerJoin('topics as t', 't.id', 's.topic_id')
          .select('s.state')
          .where('s.contact_id', '=', id)
          .where('t.slug', '=', 'newsletter')
          .executeTakeFirst()
      )?.state;
    /** The request recorded as sent to the contact, as the worker records it. */
    const recordSent = async (campaignId: string, contactId: string, at: Date) => {
      await db().insertInto('deliveries').values({
        campaign_id: campaignId, contact_id: contactId, status: 'sent', attempts: 1, next_attempt_at: at.toISOString(), updated_at: at.toISOString(),
        sent_at: at.toISOString(), message_id: `<c.${campaignId}.${contactId}@test>`, consent_event_seq: null, lease_owner: null, lease_until: null, skip_reason: null, error: null,
      }).execute();
    };

    before(async () => {
      rt = await startTestRuntime(target, { start: START });
      // As an import leaves them: B imported for the newsletter, A with no state yet.
      await seedImported([[ids.kept, KEPT], [ids.other, OTHER]], [ids.other], START);
    });
    after(async () => {
      await rt?.close();
    });

    test('the link confirms on the kept contact; the merged-away one stays without states', async () => {
      const topic = await db().selectFrom('topics').select('id').where('slug', '=', 'newsletter').executeTakeFirstOrThrow();
      const deps = { db: db(), clock: rt.clock, newId };
      const { campaign } = await createRepermissionCampaign(deps, { topicSlug: 'newsletter', deadline: new Date(START.getTime() + 14 * DAY_MS), fromAddress: 'Example Ltd <news@assent.example.org>' });
      const token = signLinkToken(rt.runtime.secrets.linkKeys, { purpose: 'repermission', contactId: ids.other, topicId: topic.id, campaignId: campaign.id });
      await mergeProbableDuplicates(deps, { keepId: ids.kept, otherId: ids.other });
      const repermission = { ...rt.runtime.signup, linkKeys: rt.runtime.secrets.linkKeys };
      assert.equal((await inspectRepermission(repermission, token)).valid, true);
      const sent = rt.transport.sent.length;
      rt.clock.advance(60_000);
      assert.deepEqual(await confirmRepermission(repermission, { token, textVersion: 1, ip: '203.0.113.9', userAgent: 'Browser' }), { kind: 'confirmed', locale: 'en', receiptSent: true });
      const states = await db().selectFrom('consent_states').select(['contact_id', 'state']).where('topic_id', '=', topic.id).execute();
      assert.deepEqual(states, [{ contact_id: ids.kept, state: 'confirmed' }]);
      assert.deepEqual((await readContactEvents(db(), ids.other)).map((e) => e.type), ['imported', 'merged']);
      assert.deepEqual(rt.transport.sent.slice(sent).map((m) => m.envelope.to), [[KEPT]], 'the receipt goes to the kept address');
      assert.equal((await verifyLedger(db())).ok, true);
    });

    test('unanswered until the deadline: the kept contact lapses, though the request went to the merged-away record', async () => {
      const deps = { db: db(), clock: rt.clock, newId };
      const pair = { kept: newId(), other: newId() };
      const now = rt.clock.now();
      await seedImported([[pair.kept, 'mary.jones@gmail.com'], [pair.other, 'maryjones+news@gmail.com']], [pair.other], now);
      const deadline = new Date(now.getTime() + 14 * DAY_MS);
      const { campaign } = await createRepermissionCampaign(deps, { topicSlug: 'newsletter', deadline, fromAddress: 'Example Ltd <news@assent.example.org>' });
      // The request went out to B, as the worker records it.
      await recordSent(campaign.id, pair.other, now);
      await mergeProbableDuplicates(deps, { keepId: pair.kept, otherId: pair.other });
      assert.equal(await stateOf(pair.kept), 'imported');
      rt.clock.set(new Date(deadline.getTime() + 1000));
      const report = await runRepermissionJobs(deps, rt.clock.now());
      assert.ok(report.lapsed >= 1);
      assert.equal(await stateOf(pair.kept), 'lapsed');
      assert.equal(await stateOf(pair.other), undefined);
      assert.equal((await verifyLedger(db())).ok, true);
    });

    test('unanswered until the deadline along a chain of merges (B into A, then A into C): C lapses', async () => {
      const deps = { db: db(), clock: rt.clock, newId };
      const now = rt.clock.now();
      const ids = { c: newId(), a: newId(), b: newId() };
      const addresses: [string, string][] = [[ids.c, 'chain.end@gmail.com'], [ids.a, 'chainend+a@gmail.com'], [ids.b, 'chain.end+b@gmail.com']];
      await seedImported(addresses, [ids.b], now);
      const deadline = new Date(now.getTime() + 14 * DAY_MS);
      const { campaign } = await createRepermissionCampaign(deps, { topicSlug: 'newsletter', deadline, fromAddress: 'Example Ltd <news@assent.example.org>' });
      await recordSent(campaign.id, ids.b, now);
      await mergeProbableDuplicates(deps, { keepId: ids.a, otherId: ids.b });
      await mergeProbableDuplicates(deps, { keepId: ids.c, otherId: ids.a });
      assert.equal(await stateOf(ids.c), 'imported');
      rt.clock.set(new Date(deadline.getTime() + 1000));
      await runRepermissionJobs(deps, rt.clock.now());
      assert.deepEqual([await stateOf(ids.c), await stateOf(ids.a), await stateOf(ids.b)], ['lapsed', undefined, undefined]);
      assert.equal((await verifyLedger(db())).ok, true);
    });

    test('the lapse goes on past a batch that found one person through two records: everyone unanswered lapses', async () => {
      const deps = { db: db(), clock: rt.clock, newId };
      const now = rt.clock.now();
      // X and Y are kept records (X sorts first); B1 was merged into X, B2 into Y. Requests went to X, B1 and B2.
      const ids = { x: `a${newId()}`, b1: newId(), y: `b${newId()}`, b2: newId() };
      const addresses: [string, string][] = [[ids.x, 'lapse.x@gmail.com'], [ids.b1, 'lapsex+one@gmail.com'], [ids.y, 'lapse.y@gmail.com'], [ids.b2, 'lapsey+two@gmail.com']];
      await seedImported(addresses, addresses.map(([id]) => id), now);
      const deadline = new Date(now.getTime() + 14 * DAY_MS);
      const { campaign } = await createRepermissionCampaign(deps, { topicSlug: 'newsletter', deadline, fromAddress: 'Example Ltd <news@assent.example.org>' });
      for (const id of [ids.x, ids.b1, ids.b2]) await recordSent(campaign.id, id, now);
      await mergeProbableDuplicates(deps, { keepId: ids.x, otherId: ids.b1 });
      await mergeProbableDuplicates(deps, { keepId: ids.y, otherId: ids.b2 });
      rt.clock.set(new Date(deadline.getTime() + 1000));
      // Batches of two: the first finds X directly and again through B1, so it holds one person, not two.
      const report = await runRepermissionJobs(deps, rt.clock.now(), { lapseBatch: 2 });
      assert.deepEqual([await stateOf(ids.x), await stateOf(ids.y)], ['lapsed', 'lapsed']);
      assert.ok(report.closed.includes(campaign.id));
      assert.equal((await verifyLedger(db())).ok, true);
    });
  });
}

for (const target of await databaseTargets()) {
  describe(`a merge record that leads nowhere stops what would revive the merged-away contact (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    const db = () => rt.runtime.storage.db;
    const address = 'orphan.merge@example.com';
    let orphan: Contact;
    let dir: string;

    before(async () => {
      rt = await startTestRuntime(target, { start: START });
      dir = mkdtempSync(join(tmpdir(), 'assent-merge-'));
      const parsed = parseAddress(address);
      assert.ok(parsed.ok);
      orphan = { id: newId(), address: parsed.address, match_key: parsed.matchKey, provider_key: parsed.providerKey, locale: 'en', created_at: START.toISOString(), erased_at: null };
      await insertContact(db(), orphan);
      await insertContactKey(db(), { contact_id: orphan.id, wrapped_key: createContactKey(rt.runtime.secrets.masterKeys, orphan.id).wrapped, created_at: START.toISOString() });
      // Changed by hand: the merge names a contact that is not stored.
      await db().insertInto('contact_merges').values({ contact_id: orphan.id, merged_into: newId(), merged_at: START.toISOString(), event_seq: 0 }).execute();
    });
    after(async () => {
      await rt?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test('keptContactOf and findMergedInto fail with a clear error instead of answering with the merged-away record', async () => {
      await assert.rejects(keptContactOf(db(), orphan), (e: unknown) => e instanceof AppError && e.code === 'conflict' && /not stored/.test(e.message));
      await assert.rejects(findMergedInto(db(), orphan.id), (e: unknown) => e instanceof AppError && /contact_merges/.test(e.message));
    });

    test('a subscription asked for through the record changes nothing', async () => {
      const before = await db().selectFrom('consent_events').select('seq').execute();
      const topic = await db().selectFrom('topics').select('id').where('slug', '=', 'newsletter').executeTakeFirstOrThrow();
      await assert.rejects(
        requestTopicSubscription(rt.runtime.signup, { contactId: orphan.id, topicIds: [topic.id], ip: '203.0.113.7', userAgent: 'Browser', locale: 'en' }),
        (e: unknown) => e instanceof AppError && e.code === 'conflict',
      );
      assert.equal((await db().selectFrom('consent_events').select('seq').execute()).length, before.length);
    });

    test('an import of the address fails whole: no event, no state, no progress', async () => {
      const file = join(dir, 'orphan.csv');
      writeFileSync(file, `email,status\nsomeone.else@example.com,subscribed\n${address},subscribed\n`);
      const deps = { db: db(), clock: rt.clock, newId, keys: { masterKeys: rt.runtime.secrets.masterKeys, suppressionKeys: rt.runtime.secrets.suppressionKeys } };
      await assert.rejects(importContacts(deps, { path: file, topicSlug: 'newsletter' }), (e: unknown) => e instanceof AppError && e.code === 'conflict' && e.message.includes(orphan.id));
      assert.deepEqual(await readContactEvents(db(), orphan.id), []);
      assert.equal((await db().selectFrom('contacts').select('id').where('match_key', '=', 'someone.else@example.com').execute()).length, 0, 'the batch rolled back whole');
      assert.equal((await db().selectFrom('consent_states').select('contact_id').execute()).length, 0);
      const runs = await db().selectFrom('imports').select('rows_done').execute();
      assert.deepEqual(runs.map((r) => Number(r.rows_done)), [0]);
    });
  });
}
