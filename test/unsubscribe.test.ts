/**
 * One-click unsubscribe on every database (issue 4, points 1, 2 and 4):
 * RFC 8058 POST in both encodings, the harmless GET, the neutral answer to
 * any bad token, and a withdrawal honoured by the next batch of a running
 * campaign.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { lookupHashes, verifyLedger, writeHashes } from '../src/consent/index.js';
import { openPersonal, unwrapContactKey } from '../src/contacts/index.js';
import { createCampaign, startCampaign } from '../src/campaigns/index.js';
import { claimBatch } from '../src/delivery/claim.service.js';
import { addForm } from '../src/forms/index.js';
import { signLinkToken, verifyLinkToken } from '../src/preferences/index.js';
import { addTopic, defaultConsentText } from '../src/topics/index.js';
import { newId } from '../src/shared/ids.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { confirmLinkFrom, openConfirm, recordCounts, submitForm } from './support/http.js';

const START = new Date('2026-03-01T10:00:00.000Z');
const MAILBOX_PROVIDER = { remoteAddress: '192.0.2.25', headers: { 'user-agent': 'MailboxProvider-OneClick/1.0' } };
const NEUTRAL_TITLE = '<h1>This link is not valid</h1>';

/** Signs up and confirms through the public pages; returns the contact's id. */
async function subscribed(rt: TestRuntime, address: string, formSlug = 'newsletter', topics = ['newsletter']): Promise<string> {
  const before = rt.transport.sent.length;
  await submitForm(rt.app, formSlug, { email: address, topics }, { remoteAddress: `198.51.100.${rt.transport.sent.length % 250}` });
  assert.equal(rt.transport.sent.length, before + 1, `no confirmation mail for ${address}`);
  const confirmed = await openConfirm(rt.app, 'POST', confirmLinkFrom(rt.transport.sent[before]!).token);
  assert.equal(confirmed.statusCode, 200);
  const contact = await rt.runtime.storage.db.selectFrom('contacts').select('id').where('match_key', '=', address.toLowerCase()).executeTakeFirstOrThrow();
  return contact.id;
}

async function topicId(rt: TestRuntime, slug: string): Promise<string> {
  return (await rt.runtime.storage.db.selectFrom('topics').select('id').where('slug', '=', slug).executeTakeFirstOrThrow()).id;
}

async function stateOf(rt: TestRuntime, contactId: string, slug: string): Promise<string | undefined> {
  const row = await rt.runtime.storage.db
    .selectFrom('consent_states')
    .select('state')
    .where('contact_id', '=', contactId)
    .where('topic_id', '=', await topicId(rt, slug))
    .executeTakeFirst();
  return row?.state;
}

const eventsOf = (rt: TestRuntime, contactId: string) =>
  rt.runtime.storage.db.selectFrom('consent_events').selectAll().where('contact_id', '=', contactId).orderBy('seq').execute();

function multipart(fields: Record<string, string>, boundary: string): string {
  return (
    Object.entries(fields)
      .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
      .join('') + `--${boundary}--\r\n`
  );
}

function assertOneClickAnswer(response: LightMyRequestResponse): void {
  assert.equal(response.statusCode, 200);
  assert.equal(response.headers['set-cookie'], undefined, 'RFC 8058: no cookie');
  assert.equal(response.headers.location, undefined, 'RFC 8058: no redirect');
  assert.equal(response.headers['content-type'], 'text/html');
  assert.equal(response.headers['cache-control'], 'no-store');
  assert.ok(response.body.includes('<h1>You are unsubscribed</h1>'));
  assert.ok(response.body.includes('<p role="status">You will no longer receive “Newsletter”. This took effect at once.</p>'));
}

for (const target of await databaseTargets()) {
  describe(`one-click unsubscribe (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    before(async () => {
      rt = await startTestRuntime(target, { start: START });
    });
    after(async () => {
      await rt?.close();
    });
    const db = () => rt.runtime.storage.db;
    const linkKeys = () => rt.runtime.secrets.linkKeys;
    const unsubscribeToken = async (contactId: string, campaignId?: string) =>
      signLinkToken(linkKeys(), { purpose: 'unsubscribe', contactId, topicId: await topicId(rt, 'newsletter'), ...(campaignId ? { campaignId } : {}) });

    const suppressionRows = async (address: string) =>
      (
        await db()
          .selectFrom('suppressions')
          .select(['key_hash', 'scope', 'reason', 'event_seq'])
          .where('key_hash', 'in', lookupHashes(rt.runtime.secrets.suppressionKeys, address))
          .orderBy('scope')
          .execute()
      ).map((r) => ({ ...r, event_seq: r.event_seq === null ? null : Number(r.event_seq) }));

    /** The one withdrawal event recorded, with its evidence opened. */
    async function withdrawal(contactId: string) {
      const events = (await eventsOf(rt, contactId)).filter((e) => e.type === 'withdrawn');
      assert.equal(events.length, 1);
      const { personal, ...evidence } = JSON.parse(events[0]!.evidence) as Record<string, unknown>;
      const wrapped = await db().selectFrom('contact_keys').select('wrapped_key').where('contact_id', '=', contactId).executeTakeFirstOrThrow();
      const key = unwrapContactKey(rt.runtime.secrets.masterKeys, contactId, wrapped.wrapped_key);
      return { event: events[0]!, evidence, personal: openPersonal(key, String(personal)) };
    }

    for (const encoding of ['application/x-www-form-urlencoded', 'multipart/form-data'] as const) {
      test(`EML-04/05/06, EML-10/EML-12, GDPR-06 b, US-02: RFC 8058 POST (${encoding}) withdraws at once: 200, no cookie, no redirect; idempotent`, async () => {
        const contactId = await subscribed(rt, `oneclick-${encoding.length}@example.org`);
        const campaignId = newId();
        const token = await unsubscribeToken(contactId, campaignId);
        const boundary = '----AssentBoundary7MA4YWxkTrZu0gW';
        const request = {
          method: 'POST' as const,
          url: `/u/${token}`,
          ...MAILBOX_PROVIDER,
          headers: {
            ...MAILBOX_PROVIDER.headers,
            'content-type': encoding === 'multipart/form-data' ? `multipart/form-data; boundary=${boundary}` : encoding,
          },
          payload: encoding === 'multipart/form-data' ? multipart({ 'List-Unsubscribe': 'One-Click' }, boundary) : 'List-Unsubscribe=One-Click',
        };
        const first = await rt.app.inject(request);
        assertOneClickAnswer(first);
        assert.equal(await stateOf(rt, contactId, 'newsletter'), 'withdrawn');
        const { event, evidence, personal } = await withdrawal(contactId);
        assert.equal(event.topic_id, await topicId(rt, 'newsletter'));
        assert.equal(event.occurred_at, START.toISOString());
        assert.deepEqual(evidence, { method: 'one_click_header', actor: 'subject', campaign_id: campaignId });
        assert.deepEqual(personal, { ip: '192.0.2.25', user_agent: 'MailboxProvider-OneClick/1.0' });
        // EML-04, GDPR-21: suppressed for the list's scope in the same transaction.
        const address = `oneclick-${encoding.length}@example.org`;
        assert.deepEqual(await suppressionRows(address), [
          { key_hash: writeHashes(rt.runtime.secrets.suppressionKeys, address)[0]!.key_hash, scope: event.topic_id, reason: 'unsubscribed', event_seq: Number(event.seq) },
        ]);

        const counts = await recordCounts(db());
        const second = await rt.app.inject(request);
        assertOneClickAnswer(second);
        assert.equal(second.body, first.body);
        assert.deepEqual(await recordCounts(db()), counts, 'a second one-click changes nothing');
        assert.deepEqual((await verifyLedger(db())).ok, true);
      });
    }

    test('EML-07, US-02: 100 GETs change nothing (link scanners); the page\'s one button POSTs without the header field, recorded as footer_page', async () => {
      const contactId = await subscribed(rt, 'scanner@example.org');
      const token = await unsubscribeToken(contactId);
      const before = await recordCounts(db());
      for (let i = 0; i < 100; i += 1) {
        const page = await rt.app.inject({ method: 'GET', url: `/u/${token}` });
        assert.equal(page.statusCode, 200);
        assert.equal(page.headers['set-cookie'], undefined);
        assert.equal(page.headers['cache-control'], 'no-store');
        assert.equal((page.body.match(/<h1>/g) ?? []).length, 1);
        assert.ok(page.body.includes('<h1>Unsubscribe</h1>'));
        assert.ok(page.body.includes('<p>Press the button to stop receiving “Newsletter” from Example Ltd.</p>'));
        assert.ok(page.body.includes(`<form method="post" action="/u/${token}">\n<button type="submit">Unsubscribe</button>\n</form>`));
        assert.equal((page.body.match(/<button/g) ?? []).length, 1);
        const centre = /<a href="https:\/\/assent\.example\.org\/p\/([^"]+)">Manage all your subscriptions and your data<\/a>/.exec(page.body);
        assert.ok(centre, 'a link to the preference centre');
        assert.deepEqual(verifyLinkToken(linkKeys(), centre[1], 'preferences'), { ok: true, claims: { purpose: 'preferences', contactId } });
      }
      assert.deepEqual(await recordCounts(db()), before);
      assert.equal(await stateOf(rt, contactId, 'newsletter'), 'confirmed');

      // The page's button: a plain form POST with an empty body.
      const pressed = await rt.app.inject({
        method: 'POST',
        url: `/u/${token}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Browser/1.0' },
        payload: '',
      });
      assertOneClickAnswer(pressed);
      assert.equal(await stateOf(rt, contactId, 'newsletter'), 'withdrawn');
      const counts = await recordCounts(db());
      for (const headers of [{}, { 'content-type': 'text/plain' }, { 'content-type': 'multipart/form-data' }]) {
        const odd = await rt.app.inject({ method: 'POST', url: `/u/${token}`, headers, payload: 'List-Unsubscribe=One-Click' });
        assertOneClickAnswer(odd);
      }
      assert.deepEqual(await recordCounts(db()), counts, 'odd encodings are answered, and idempotent');
      const { evidence, personal } = await withdrawal(contactId);
      assert.deepEqual(evidence, { method: 'footer_page', actor: 'subject' });
      assert.deepEqual(personal, { ip: '127.0.0.1', user_agent: 'Browser/1.0' });

      // ABU-04: the sign-up form cannot subscribe the address to that topic again; it answers as ever and sends nothing.
      const mails = rt.transport.attempts.length;
      const again = await submitForm(rt.app, 'newsletter', { email: 'scanner@example.org', topics: 'newsletter' }, { remoteAddress: '203.0.113.99' });
      assert.equal(again.statusCode, 200);
      assert.ok(again.body.includes('<h1>Check your inbox</h1>'));
      assert.equal(rt.transport.attempts.length, mails);
      assert.equal(await stateOf(rt, contactId, 'newsletter'), 'withdrawn');
    });

    test('EML-06: tampered, truncated, foreign or misused tokens get the same neutral 404 page, byte for byte, and change nothing', async () => {
      const contactId = await subscribed(rt, 'victim@example.org');
      const token = await unsubscribeToken(contactId);
      const [version, payload, mac] = token.split('.') as [string, string, string];
      const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      const foreignKey = [{ version: 1, key: Buffer.alloc(32, 9) }];
      const bad = {
        'tampered MAC': `${version}.${payload}.${flip(mac, 3)}`,
        'tampered payload': `${version}.${flip(payload, 2)}.${mac}`,
        truncated: token.slice(0, -4),
        'MAC cut off': `${version}.${payload}`,
        'unknown key version': `v7.${payload}.${mac}`,
        'foreign key': signLinkToken(foreignKey, { purpose: 'unsubscribe', contactId, topicId: await topicId(rt, 'newsletter') }),
        'preferences token on /u': signLinkToken(linkKeys(), { purpose: 'preferences', contactId }),
        'no topic': signLinkToken(linkKeys(), { purpose: 'unsubscribe', contactId }),
        'unknown contact, valid MAC': signLinkToken(linkKeys(), { purpose: 'unsubscribe', contactId: newId(), topicId: await topicId(rt, 'newsletter') }),
        garbage: 'not-a-token',
      };
      const counts = await recordCounts(db());
      const reference = await rt.app.inject({ method: 'GET', url: '/u/not-a-token' });
      assert.equal(reference.statusCode, 404);
      assert.ok(reference.body.includes(NEUTRAL_TITLE));
      for (const [name, value] of Object.entries(bad)) {
        for (const method of ['GET', 'POST'] as const) {
          const response = await rt.app.inject({
            method,
            url: `/u/${value}`,
            ...(method === 'POST' ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' } : {}),
          });
          assert.equal(response.statusCode, 404, `${method} ${name}`);
          assert.equal(response.body, reference.body, `${method} ${name}: the neutral page, byte for byte`);
          assert.equal(response.headers['set-cookie'], undefined);
          assert.ok(!response.body.includes(contactId) && !response.body.includes('victim'), `${name} hints at the owner`);
        }
      }
      assert.deepEqual(await recordCounts(db()), counts);
      assert.equal(await stateOf(rt, contactId, 'newsletter'), 'confirmed');
    });

    test('GDPR-06 c / GDPR-21 / EML-12: a one-click unsubscribe during a running campaign is skipped by the next claimed batch', async () => {
      const deps = { db: db(), clock: rt.clock, newId };
      await addTopic(deps, { slug: 'weekly', name: 'Weekly', description: 'Weekly.', consentText: defaultConsentText({ controllerName: 'Example Ltd', topicName: 'Weekly' }), locale: 'en' });
      await addForm(deps, { slug: 'weekly', title: 'Weekly', topics: [{ slug: 'weekly' }] });
      const contacts = [];
      for (const name of ['ana', 'ben', 'cai', 'dee']) contacts.push(await subscribed(rt, `${name}@weekly.example.org`, 'weekly', ['weekly']));
      const campaign = await createCampaign(deps, { topicSlug: 'weekly', templateName: 't', subject: 'Week 10', fromAddress: 'news@assent.example.org' });
      await startCampaign(deps, campaign.id);
      const claimDeps = { db: db(), capabilities: rt.runtime.storage.capabilities, suppressionKeys: rt.runtime.secrets.suppressionKeys };
      const claim = (batchSize: number) => claimBatch(claimDeps, { campaignId: campaign.id, workerId: 'w1', batchSize, leaseMs: 60_000, now: rt.clock.now() });
      const first = await claim(1);
      assert.equal(first.length, 1);
      const leaver = contacts.find((c) => c !== first[0]!.contactId)!;
      const token = signLinkToken(linkKeys(), { purpose: 'unsubscribe', contactId: leaver, topicId: await topicId(rt, 'weekly'), campaignId: campaign.id });
      const response = await rt.app.inject({
        method: 'POST',
        url: `/u/${token}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'List-Unsubscribe=One-Click',
      });
      assert.equal(response.statusCode, 200);
      const next = await claim(10);
      const expected = contacts.filter((c) => c !== first[0]!.contactId && c !== leaver).sort();
      assert.deepEqual(next.map((d) => d.contactId).sort(), expected);
      const row = await db()
        .selectFrom('deliveries')
        .select(['status', 'skip_reason'])
        .where('campaign_id', '=', campaign.id)
        .where('contact_id', '=', leaver)
        .executeTakeFirstOrThrow();
      assert.deepEqual(row, { status: 'skipped', skip_reason: 'suppressed' });
      const evidence = JSON.parse((await eventsOf(rt, leaver)).at(-1)!.evidence) as Record<string, unknown>;
      assert.equal(evidence.campaign_id, campaign.id);
      assert.equal(evidence.method, 'one_click_header');
    });

    test('the ledger still verifies after every withdrawal', async () => {
      const report = await verifyLedger(db());
      assert.equal(report.ok, true);
      assert.equal(report.events, Number((await db().selectFrom('consent_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n));
    });
  });
}
