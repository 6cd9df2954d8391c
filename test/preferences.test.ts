/**
 * The preference centre on every database (issue 4, point 3): state and
 * proof of every topic, receipts, withdrawal, objection, subscribing only by
 * double opt-in, the one path that lifts an objection, "send me my link",
 * and the rights pages (export, erasure).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkGate, insertSuppressions, lookupHashes, publicKeySet, verifyLedger, verifyReceipt, writeHashes } from '../src/consent/index.js';
import { addForm } from '../src/forms/index.js';
import { signLinkToken, verifyLinkToken } from '../src/preferences/index.js';
import { addTopic, defaultConsentText } from '../src/topics/index.js';
import { newId } from '../src/shared/ids.js';
import type { Contact } from '../src/storage/index.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { confirmLinkFrom, decodedMessage, encodeForm, openConfirm, recordCounts, submitForm, type FormFields } from './support/http.js';

const START = new Date('2026-03-01T10:00:00.000Z');
const WHEN = 'March 1, 2026 at 10:00 AM UTC';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

for (const target of await databaseTargets()) {
  describe(`preference centre (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    let ip = 0;
    before(async () => {
      rt = await startTestRuntime(target, { start: START });
      const deps = { db: rt.runtime.storage.db, clock: rt.clock, newId };
      await addTopic(deps, { slug: 'offers', name: 'Offers', description: 'Special offers.', consentText: defaultConsentText({ controllerName: 'Example Ltd', topicName: 'Offers' }), locale: 'en' });
      await addTopic(deps, { slug: 'staff', name: 'Staff notes', description: 'Internal.', consentText: defaultConsentText({ controllerName: 'Example Ltd', topicName: 'Staff notes' }), locale: 'en', isPublic: false });
      await addForm(deps, { slug: 'both', title: 'Both', topics: [{ slug: 'newsletter' }, { slug: 'offers' }] });
    });
    after(async () => {
      await rt?.close();
    });
    const db = () => rt.runtime.storage.db;
    const client = () => ({ remoteAddress: `203.0.113.${(ip += 1)}` });
    const topicId = async (slug: string) => (await db().selectFrom('topics').select('id').where('slug', '=', slug).executeTakeFirstOrThrow()).id;
    const contactOf = (address: string): Promise<Contact> => db().selectFrom('contacts').selectAll().where('match_key', '=', address).executeTakeFirstOrThrow();
    const centreToken = (contactId: string) => signLinkToken(rt.runtime.secrets.linkKeys, { purpose: 'preferences', contactId });
    const eventsOf = (contactId: string) => db().selectFrom('consent_events').selectAll().where('contact_id', '=', contactId).orderBy('seq').execute();
    const evidence = (row: { evidence: string }) => JSON.parse(row.evidence) as Record<string, unknown>;
    const states = async (contactId: string) =>
      Object.fromEntries(
        (await db().selectFrom('consent_states').innerJoin('topics', 'topics.id', 'consent_states.topic_id').select(['topics.slug', 'consent_states.state']).where('contact_id', '=', contactId).execute()).map((r) => [r.slug, r.state]),
      );
    const suppressions = async (address: string) =>
      (await db().selectFrom('suppressions').select(['scope', 'reason']).where('key_hash', 'in', lookupHashes(rt.runtime.secrets.suppressionKeys, address)).orderBy('scope').execute()).map((r) => `${r.scope}:${r.reason}`);
    const post = (url: string, fields: FormFields = {}) => rt.app.inject({ method: 'POST', url, headers: FORM, payload: encodeForm(fields), ...client() });
    const lastMail = () => rt.transport.sent.at(-1)!;

    /** Signs up through a form and confirms; returns the contact. */
    async function subscribed(address: string, topics: string[], formSlug = topics.length > 1 ? 'both' : 'newsletter'): Promise<Contact> {
      const sent = rt.transport.sent.length;
      await submitForm(rt.app, formSlug, { email: address, topics }, client());
      assert.equal(rt.transport.sent.length, sent + 1);
      assert.equal((await openConfirm(rt.app, 'POST', confirmLinkFrom(lastMail()).token)).statusCode, 200);
      return contactOf(address);
    }

    test('US-02: the centre lists every public topic with the person\'s state, and when and how each consent was given', async () => {
      const ann = await subscribed('ann@example.org', ['newsletter']);
      const token = centreToken(ann.id);
      const page = await rt.app.inject({ method: 'GET', url: `/p/${token}` });
      assert.equal(page.statusCode, 200);
      assert.equal(page.headers['cache-control'], 'no-store');
      assert.equal(page.headers['set-cookie'], undefined);
      assert.equal((page.body.match(/<h1>/g) ?? []).length, 1);
      assert.ok(page.body.includes('<h1>Your subscriptions</h1>'));
      const confirmed = (await eventsOf(ann.id)).find((e) => e.type === 'confirmed')!;
      assert.ok(page.body.includes(`<h2 id="topic-newsletter">Newsletter</h2>`));
      assert.ok(page.body.includes(`<p>Status: <strong>Subscribed</strong> <time datetime="${START.toISOString()}">since ${WHEN}</time></p>`));
      assert.ok(
        page.body.includes(
          `<li><time datetime="${START.toISOString()}">Confirmed on ${WHEN}</time>, through the sign-up form “newsletter” (version 1), confirmed by email, consent text version 1. ` +
            `<a href="/p/${token}/receipts/${confirmed.id}" download>Download the signed receipt (Newsletter, ${WHEN})</a></li>`,
        ),
      );
      assert.ok(page.body.includes(`<form method="post" action="/p/${token}/withdraw"><input type="hidden" name="topic" value="newsletter"><button type="submit">Unsubscribe from Newsletter</button></form>`));
      assert.ok(page.body.includes('<h2 id="topic-offers">Offers</h2>\n<p>Special offers.</p>\n<p>Status: <strong>Not subscribed</strong></p>'));
      // Only offered topics can be chosen, each box unticked and labelled with its exact consent text.
      assert.deepEqual([...page.body.matchAll(/<input type="checkbox"[^>]*>/g)].map((m) => m[0]), ['<input type="checkbox" id="subscribe-offers" name="topics" value="offers">']);
      assert.ok(page.body.includes(`<label for="subscribe-offers"><strong>Offers</strong><br><span class="consent-text">${defaultConsentText({ controllerName: 'Example Ltd', topicName: 'Offers' }).replaceAll('"', '&quot;')}</span></label>`));
      assert.ok(!page.body.includes('Staff notes'), 'a non-public topic the person never had is not shown');
      assert.ok(page.body.includes(`<a href="/p/${token}/export.json" download>Download all your data (JSON)</a>`));
      assert.ok(page.body.includes(`<a href="/p/${token}/erase">Erase all your data</a>`));
      assert.ok(page.body.includes(`<form method="post" action="/p/${token}/object"><button type="submit">Unsubscribe from everything</button></form>`));
    });

    test('the receipt download re-issues the signed receipt of that confirmation; another person\'s event is the neutral 404', async () => {
      const ann = await contactOf('ann@example.org');
      const confirmed = (await eventsOf(ann.id)).find((e) => e.type === 'confirmed')!;
      rt.clock.advance(3_600_000);
      const response = await rt.app.inject({ method: 'GET', url: `/p/${centreToken(ann.id)}/receipts/${confirmed.id}` });
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers['content-type'], 'application/jose');
      assert.equal(response.headers['content-disposition'], 'attachment; filename="consent-receipt.jws"');
      const verified = await verifyReceipt(response.body, publicKeySet(rt.runtime.signup.keys.receiptKeys).keys);
      assert.ok(verified.ok);
      assert.equal(verified.claims.consentReceiptID, confirmed.id);
      assert.equal(verified.claims.piiPrincipalId, ann.id);
      assert.equal(verified.claims.collectionMethod, 'web_form_double_opt_in');
      assert.equal(verified.claims.assent.ledgerEventHash, confirmed.hash);
      assert.equal(verified.claims.iat, Math.floor(rt.clock.now().getTime() / 1000));
      const bob = await subscribed('bob@example.org', ['newsletter']);
      const foreign = await rt.app.inject({ method: 'GET', url: `/p/${centreToken(bob.id)}/receipts/${confirmed.id}` });
      const invalid = await rt.app.inject({ method: 'GET', url: '/p/nonsense' });
      assert.equal(foreign.statusCode, 404);
      assert.equal(foreign.body, invalid.body);
    });

    test('GDPR-06: withdrawing one topic from the centre acts at once and is recorded as preference_centre; again changes nothing', async () => {
      const cat = await subscribed('cat@example.org', ['newsletter', 'offers']);
      const response = await post(`/p/${centreToken(cat.id)}/withdraw`, { topic: 'offers' });
      assert.equal(response.statusCode, 200);
      assert.ok(response.body.includes('<p class="notice" role="status">You are unsubscribed from “Offers”.</p>'));
      assert.ok(response.body.includes('<h2 id="topic-offers">Offers</h2>\n<p>Special offers.</p>\n<p>Status: <strong>Unsubscribed</strong>'));
      assert.deepEqual(await states(cat.id), { newsletter: 'confirmed', offers: 'withdrawn' });
      const last = (await eventsOf(cat.id)).at(-1)!;
      assert.equal(last.type, 'withdrawn');
      assert.equal(last.topic_id, await topicId('offers'));
      const { personal, ...rest } = evidence(last);
      assert.deepEqual(rest, { method: 'preference_centre', actor: 'subject' });
      assert.match(String(personal), /^enc:v1:/);
      assert.deepEqual(await suppressions('cat@example.org'), [`${await topicId('offers')}:unsubscribed`]);
      const counts = await recordCounts(db());
      const again = await post(`/p/${centreToken(cat.id)}/withdraw`, { topic: 'offers' });
      assert.ok(again.body.includes('<p class="notice" role="status">Nothing changed: you were not subscribed to that.</p>'));
      assert.deepEqual(await recordCounts(db()), counts);

      // Changing one's mind from the centre: a double opt-in lifts the topic's own 'unsubscribed' entry, nothing else.
      await post(`/p/${centreToken(cat.id)}/subscribe`, { topics: 'offers' });
      assert.equal((await openConfirm(rt.app, 'POST', confirmLinkFrom(lastMail()).token)).statusCode, 200);
      assert.deepEqual(await states(cat.id), { newsletter: 'confirmed', offers: 'confirmed' });
      assert.deepEqual(await suppressions('cat@example.org'), []);
      const lifted = evidence((await eventsOf(cat.id)).at(-1)!).lifted_suppressions as { scope: string; reason: string }[];
      assert.deepEqual(lifted.map((x) => `${x.scope}:${x.reason}`), [`${await topicId('offers')}:unsubscribed`]);
    });

    test('subscribing to another topic only sends a double opt-in mail and records only `requested`; a forged topic records nothing', async () => {
      const dan = await subscribed('dan@example.org', ['newsletter']);
      const token = centreToken(dan.id);
      const counts = await recordCounts(db());
      for (const topics of [[], ['staff'], ['offers', 'nope']]) {
        const refused = await post(`/p/${token}/subscribe`, { topics });
        assert.equal(refused.statusCode, 422, JSON.stringify(topics));
        assert.ok(refused.body.includes('<div class="errors" role="alert"><p>Tick at least one topic to subscribe to.</p></div>'));
      }
      assert.deepEqual(await recordCounts(db()), counts);
      const sent = rt.transport.sent.length;
      const response = await post(`/p/${token}/subscribe`, { topics: 'offers' });
      assert.equal(response.statusCode, 200);
      assert.ok(response.body.includes('<h1>Check your inbox</h1>'));
      assert.equal(rt.transport.sent.length, sent + 1);
      assert.ok(decodedMessage(lastMail()).includes('  - Offers'));
      assert.deepEqual(await states(dan.id), { newsletter: 'confirmed', offers: 'requested' });
      const newEvents = (await eventsOf(dan.id)).slice(-1);
      assert.deepEqual(newEvents.map((e) => e.type), ['requested']);
      const text = await db().selectFrom('consent_texts').selectAll().where('topic_id', '=', await topicId('offers')).executeTakeFirstOrThrow();
      const { personal, token_id, message_id, ...rest } = evidence(newEvents[0]!);
      assert.deepEqual(rest, { method: 'preference_centre', actor: 'subject', consent_text_id: text.id, consent_text_version: 1, consent_text_sha256: text.sha256 });
      assert.equal(message_id, lastMail().messageId);
      assert.match(String(personal), /^enc:v1:/);
      assert.equal(typeof token_id, 'string');
      assert.deepEqual(await recordCounts(db()), { ...counts, consent_events: counts.consent_events + 1, consent_states: counts.consent_states + 1, confirmation_tokens: counts.confirmation_tokens + 1, mail_log: counts.mail_log + 1 });

      assert.equal((await openConfirm(rt.app, 'POST', confirmLinkFrom(lastMail()).token)).statusCode, 200);
      assert.deepEqual(await states(dan.id), { newsletter: 'confirmed', offers: 'confirmed' });
      const confirmed = (await eventsOf(dan.id)).at(-1)!;
      assert.equal(evidence(confirmed).requested_via, 'preference_centre');
      assert.equal(evidence(confirmed).lifted_suppressions, undefined);
    });

    test('GDPR-21: unsubscribing from everything records an objection, suppresses scope all, withdraws every topic; the sign-up form then sends nothing', async () => {
      const eve = await subscribed('eve@example.org', ['newsletter', 'offers']);
      const response = await post(`/p/${centreToken(eve.id)}/object`);
      assert.equal(response.statusCode, 200);
      assert.ok(response.body.includes('<p class="notice" role="status">You are unsubscribed from everything.</p>'));
      assert.ok(response.body.includes('<strong>You are unsubscribed from everything: we send you no marketing messages.</strong>'));
      assert.ok(!response.body.includes('/object"'), 'no second objection button');
      const events = (await eventsOf(eve.id)).slice(-3);
      assert.deepEqual([events[0]!.type, events[0]!.topic_id], ['objected', null]);
      assert.deepEqual(events.slice(1).map((e) => e.type), ['withdrawn', 'withdrawn']);
      assert.deepEqual(events.slice(1).map((e) => e.topic_id).sort(), [await topicId('newsletter'), await topicId('offers')].sort());
      for (const withdrawn of events.slice(1)) {
        const { personal, ...rest } = evidence(withdrawn);
        assert.deepEqual(rest, { method: 'preference_centre', actor: 'subject', reason: 'objected', objection_event: events[0]!.id });
        assert.equal(personal, evidence(events[0]!).personal);
      }
      assert.equal(evidence(events[0]!).method, 'preference_centre');
      const rows = await db().selectFrom('suppressions').selectAll().where('key_hash', 'in', lookupHashes(rt.runtime.secrets.suppressionKeys, 'eve@example.org')).execute();
      assert.deepEqual(
        rows.map((r) => ({ key_hash: r.key_hash, scope: r.scope, reason: r.reason, event_seq: Number(r.event_seq) })),
        [{ key_hash: writeHashes(rt.runtime.secrets.suppressionKeys, 'eve@example.org')[0]!.key_hash, scope: 'all', reason: 'objected', event_seq: Number(events[0]!.seq) }],
      );
      assert.deepEqual(await states(eve.id), { newsletter: 'withdrawn', offers: 'withdrawn' });
      const counts = await recordCounts(db());
      const mails = rt.transport.attempts.length;
      const again = await submitForm(rt.app, 'newsletter', { email: 'eve@example.org', topics: 'newsletter' }, client());
      assert.ok(again.body.includes('<h1>Check your inbox</h1>'));
      assert.equal(rt.transport.attempts.length, mails);
      assert.deepEqual(await recordCounts(db()), counts);
      await post(`/p/${centreToken(eve.id)}/object`);
      assert.deepEqual(await recordCounts(db()), counts, 'a second objection changes nothing');
    });

    test('GDPR-21: only a confirmed double opt-in from the person\'s own centre lifts their objection; a complaint is never lifted', async () => {
      const eve = await contactOf('eve@example.org');
      const sent = rt.transport.sent.length;
      const response = await post(`/p/${centreToken(eve.id)}/subscribe`, { topics: 'newsletter' });
      assert.ok(response.body.includes('<h1>Check your inbox</h1>'));
      assert.equal(rt.transport.sent.length, sent + 1, 'the confirmation goes despite the objection (self_service)');
      assert.deepEqual(await states(eve.id), { newsletter: 'requested', offers: 'withdrawn' });
      assert.deepEqual(await suppressions('eve@example.org'), ['all:objected'], 'nothing is lifted before the click');
      const newsletter = await topicId('newsletter');
      const gate = () => checkGate(db(), rt.runtime.secrets.suppressionKeys, { contact: eve, topicId: newsletter, purpose: 'campaign' });
      assert.deepEqual(await gate(), { allowed: false, reason: 'suppressed' });

      assert.equal((await openConfirm(rt.app, 'POST', confirmLinkFrom(lastMail()).token)).statusCode, 200);
      assert.deepEqual(await suppressions('eve@example.org'), []);
      assert.deepEqual(await states(eve.id), { newsletter: 'confirmed', offers: 'withdrawn' });
      const confirmed = (await eventsOf(eve.id)).at(-1)!;
      const objected = (await eventsOf(eve.id)).find((e) => e.type === 'objected')!;
      assert.deepEqual(evidence(confirmed).lifted_suppressions, [{ scope: 'all', reason: 'objected', created_at: objected.occurred_at, event_seq: Number(objected.seq) }]);
      assert.deepEqual(await gate(), { allowed: true });

      const fay = await subscribed('fay@example.org', ['newsletter']);
      await post(`/p/${centreToken(fay.id)}/object`);
      const offers = await topicId('offers');
      await insertSuppressions(
        db(),
        writeHashes(rt.runtime.secrets.suppressionKeys, 'fay@example.org').map((h) => ({ ...h, scope: offers, reason: 'complained', created_at: START.toISOString(), event_seq: null })),
      );
      const counts = await recordCounts(db());
      const mails = rt.transport.attempts.length;
      const refused = await post(`/p/${centreToken(fay.id)}/subscribe`, { topics: 'offers' });
      assert.ok(refused.body.includes('<h1>Check your inbox</h1>'));
      assert.equal(rt.transport.attempts.length, mails);
      assert.deepEqual(await recordCounts(db()), counts);
    });

    test('/p answers identically for known and unknown addresses and mails a fresh link only to the known one', async () => {
      const get = await rt.app.inject({ method: 'GET', url: '/p' });
      assert.equal(get.statusCode, 200);
      assert.ok(get.body.includes('<label for="email">Email address</label>'));
      const csrf = /name="_csrf" value="([^"]+)"/.exec(get.body)![1]!;
      const cookie = get.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
      const ask = (email: string, withCsrf = true) =>
        rt.app.inject({ method: 'POST', url: '/p', headers: { ...FORM, ...(withCsrf ? { cookie } : {}) }, payload: encodeForm({ email, ...(withCsrf ? { _csrf: csrf } : {}) }), ...client() });
      const mails = rt.transport.attempts.length;
      const unknown = await ask('nobody@example.org');
      assert.equal(rt.transport.attempts.length, mails);
      const known = await ask('ANN@example.org');
      assert.equal(known.statusCode, 200);
      assert.equal(unknown.statusCode, 200);
      assert.equal(known.body, unknown.body);
      assert.ok(known.body.includes('<h1>Check your inbox</h1>'));
      assert.equal(rt.transport.attempts.length, mails + 1);
      assert.deepEqual(lastMail().envelope.to, ['ann@example.org']);
      const link = /https:\/\/assent\.example\.org\/p\/([A-Za-z0-9._-]+)/.exec(decodedMessage(lastMail()))![1];
      assert.deepEqual(verifyLinkToken(rt.runtime.secrets.linkKeys, link, 'preferences'), { ok: true, claims: { purpose: 'preferences', contactId: (await contactOf('ann@example.org')).id } });
      assert.equal((await ask('ann@example.org', false)).statusCode, 403, 'CSRF');
      assert.equal((await ask('not an address')).statusCode, 422);
    });

    test('GDPR-15/17/20: export from the centre; erasure asks first, then erases, and the link names no one afterwards', async () => {
      const gus = await subscribed('gus@example.org', ['newsletter']);
      const token = centreToken(gus.id);
      const exported = await rt.app.inject({ method: 'GET', url: `/p/${token}/export.json` });
      assert.equal(exported.statusCode, 200);
      assert.equal(exported.headers['content-disposition'], 'attachment; filename="my-data.json"');
      const data = JSON.parse(exported.body) as { profile: { id: string; address: string } };
      assert.deepEqual([data.profile.id, data.profile.address], [gus.id, 'gus@example.org']);
      const counts = await recordCounts(db());
      const confirmStep = await rt.app.inject({ method: 'GET', url: `/p/${token}/erase` });
      assert.ok(confirmStep.body.includes(`<form method="post" action="/p/${token}/erase">\n<button type="submit">Erase my data</button>`));
      assert.deepEqual(await recordCounts(db()), counts);
      const erased = await post(`/p/${token}/erase`);
      assert.equal(erased.statusCode, 200);
      assert.ok(erased.body.includes('<h1>Your data is erased</h1>'));
      const row = await db().selectFrom('contacts').selectAll().where('id', '=', gus.id).executeTakeFirstOrThrow();
      assert.deepEqual([row.address, row.match_key, row.erased_at], [null, null, new Date(START.getTime() + 3_600_000).toISOString()]);
      const after = await rt.app.inject({ method: 'GET', url: `/p/${token}` });
      assert.equal(after.statusCode, 404);
      assert.equal(after.body, (await rt.app.inject({ method: 'GET', url: '/p/nonsense' })).body);
    });

    test('the ledger verifies after every change made from the centre', async () => {
      assert.equal((await verifyLedger(db())).ok, true);
    });
  });
}
