/**
 * The re-permission campaign end to end, on every database (issue 5 point 4;
 * DESIGN.md flow 3): imported contacts, one of them suppressed, are asked by
 * the worker; the mail carries only the confirm link and the mandatory
 * links; a click records `confirmed` with evidence and mails a signed
 * receipt; one reminder reaches only those who have not answered; at the
 * deadline the job lapses the rest, the link dies, and a lapsed person can
 * come back only through the sign-up form.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { simpleParser, type ParsedMail } from 'mailparser';
import { ALL_SCOPE, insertSuppressions, publicKeySet, verifyLedger, verifyReceipt, withLedger, writeHashes } from '../src/consent/index.js';
import { createContactKey, insertContact, insertContactKey, openPersonal, parseAddress, unwrapContactKey } from '../src/contacts/index.js';
import { createRepermissionCampaign, findCampaign, repermissionStatus, startRepermissionCampaign } from '../src/campaigns/index.js';
import type { OutgoingMessage } from '../src/delivery/transport.js';
import { sha256Hex } from '../src/shared/crypto.js';
import { newId } from '../src/shared/ids.js';
import { startWorker } from '../src/worker-root.js';
import { runCli } from '../src/cli/main.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { confirmLinkFrom, headerOf, openConfirm, submitForm } from './support/http.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const DAY = 86_400_000;
const BASE = 'https://assent.example.org';
const BROWSER = { remoteAddress: '203.0.113.9', headers: { 'user-agent': 'Browser/1.0 (test)' } };
const people = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina'] as const;
type Person = (typeof people)[number];
const address = (p: Person) => `${p}@example.org`;

/** Runs the real worker (memory transport, the test's clock) until `done` holds, then stops it. */
async function runWorkerUntil(rt: TestRuntime, done: () => Promise<boolean>): Promise<void> {
  const worker = startWorker(rt.runtime, { idleMs: 5 });
  try {
    const deadline = Date.now() + 20_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error('the worker did not finish in time');
      await sleep(10);
    }
  } finally {
    await worker.stop();
  }
}

const parse = (m: OutgoingMessage): Promise<ParsedMail> => simpleParser(m.raw);
const linksIn = (mail: ParsedMail) => new Set([...`${mail.text ?? ''}\n${mail.html || ''}`.matchAll(/https?:\/\/[^\s"<>]+/g)].map((m) => m[0]));

for (const target of await databaseTargets()) {
  describe(`re-permission flow (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    let topicId: string;
    let campaignId: string;
    const ids = {} as Record<Person, string>;
    const db = () => rt.runtime.storage.db;
    const stateOf = async (p: Person) =>
      (await db().selectFrom('consent_states').select('state').where('contact_id', '=', ids[p]).where('topic_id', '=', topicId).executeTakeFirst())?.state;
    const mailsTo = (p: Person) => rt.transport.sent.filter((m) => m.envelope.to.includes(address(p)));
    const confirmTokenOf = async (m: OutgoingMessage) => [...linksIn(await parse(m))].find((u) => u.startsWith(`${BASE}/r/`))!.slice(`${BASE}/r/`.length);

    before(async () => {
      rt = await startTestRuntime(target, { start: T0 });
      topicId = (await db().selectFrom('topics').select('id').where('slug', '=', 'newsletter').executeTakeFirstOrThrow()).id;
      // As an import leaves them: contacts with keys, `imported` (or other) events, a suppression for dave.
      const events = { alice: 'imported', bob: 'imported', carol: 'imported', dave: 'imported', erin: 'confirmed', frank: 'withdrawn', gina: 'imported' } as const;
      await withLedger(db(), async (trx, ledger) => {
        for (const p of people) {
          const parsed = parseAddress(address(p));
          assert.ok(parsed.ok);
          ids[p] = newId();
          await insertContact(trx, { id: ids[p], address: parsed.address, match_key: parsed.matchKey, provider_key: parsed.providerKey, locale: 'en', created_at: T0.toISOString(), erased_at: null });
          await insertContactKey(trx, { contact_id: ids[p], wrapped_key: createContactKey(rt.runtime.secrets.masterKeys, ids[p]).wrapped, created_at: T0.toISOString() });
          await ledger.append([{ id: newId(), contactId: ids[p], topicId, type: events[p], occurredAt: T0, evidence: { method: 'import', actor: 'operator', source: 'legacy.csv' } }]);
        }
        const rows = writeHashes(rt.runtime.secrets.suppressionKeys, address('dave')).map((h) => ({ ...h, scope: ALL_SCOPE, reason: 'unsubscribed', created_at: T0.toISOString(), event_seq: null }));
        await insertSuppressions(trx, rows);
      });
      const deps = { db: db(), clock: rt.clock, newId };
      const created = await createRepermissionCampaign(deps, { topicSlug: 'newsletter', deadline: new Date(T0.getTime() + 14 * DAY), reminderAt: new Date(T0.getTime() + 7 * DAY), fromAddress: 'Example Ltd <news@assent.example.org>' });
      campaignId = created.campaign.id;
      await startRepermissionCampaign(deps, campaignId);
      await runWorkerUntil(rt, async () => (await findCampaign(db(), campaignId))?.status === 'sent');
    });
    after(async () => {
      await rt?.close();
    });

    test('EPR-04, ABU-01: exactly the imported, unsuppressed contacts get the request; the suppressed one is skipped with the reason', async () => {
      assert.deepEqual(rt.transport.sent.map((m) => m.envelope.to[0]).sort(), ['alice@example.org', 'bob@example.org', 'carol@example.org', 'gina@example.org']);
      const rows = await db().selectFrom('deliveries').select(['contact_id', 'status', 'skip_reason']).where('campaign_id', '=', campaignId).execute();
      const byId = new Map(rows.map((r) => [r.contact_id, [r.status, r.skip_reason]]));
      assert.deepEqual(
        people.map((p) => byId.get(ids[p]) ?? null),
        [['sent', null], ['sent', null], ['sent', null], ['skipped', 'suppressed'], null, null, ['sent', null]],
      );
    });

    test('EPR-04 (ICO Honda, Flybe), EML-01..03: the request holds the confirm link and the unsubscribe and preference links only, with RFC 8058 headers', async () => {
      const [message] = mailsTo('alice');
      const mail = await parse(message!);
      assert.equal(mail.subject, 'Do you still want to receive “Newsletter” from Example Ltd?');
      const links = [...linksIn(mail)].sort();
      assert.equal(links.length, 3, links.join(' '));
      assert.deepEqual(links.map((l) => l.slice(0, BASE.length + 3)), [`${BASE}/p/`, `${BASE}/r/`, `${BASE}/u/`]);
      const unsubscribe = links.find((l) => l.startsWith(`${BASE}/u/`))!;
      assert.equal(headerOf(message!, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
      assert.equal(headerOf(message!, 'List-Unsubscribe'), `<${unsubscribe}>`);
      assert.equal(headerOf(message!, 'List-Id'), 'Newsletter <newsletter.assent.example.org>');
      assert.ok(!/unsubscribe|preferences/i.test((mail.text ?? '').split('--')[0]!), 'nothing but the question above the footer');
    });

    test('GDPR-04, ABU-01: GET shows the page and changes nothing; POST records `confirmed` with its evidence and mails a signed receipt', async () => {
      const [request] = mailsTo('alice');
      const token = await confirmTokenOf(request!);
      const page = await rt.app.inject({ method: 'GET', url: `/r/${token}`, ...BROWSER });
      assert.equal(page.statusCode, 200);
      assert.equal(page.headers['cache-control'], 'no-store');
      assert.ok(page.body.includes('I would like to receive &quot;Newsletter&quot; emails from Example Ltd.'));
      assert.equal(await stateOf('alice'), 'imported', 'a GET (or a link scanner) changes nothing');
      const version = /name="text_version" value="(\d+)"/.exec(page.body)![1]!;
      const sentBefore = rt.transport.sent.length;
      const post = await rt.app.inject({ method: 'POST', url: `/r/${token}`, payload: `text_version=${version}`, ...BROWSER, headers: { ...BROWSER.headers, 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(post.statusCode, 200);
      assert.ok(post.body.includes('<h1>Thank you, you are subscribed</h1>'));
      assert.equal(await stateOf('alice'), 'confirmed');

      const event = await db().selectFrom('consent_events').selectAll().where('contact_id', '=', ids.alice).where('type', '=', 'confirmed').executeTakeFirstOrThrow();
      const { personal, ...evidence } = JSON.parse(event.evidence) as Record<string, unknown>;
      const delivery = await db().selectFrom('deliveries').select('message_id').where('campaign_id', '=', campaignId).where('contact_id', '=', ids.alice).executeTakeFirstOrThrow();
      const text = await db().selectFrom('consent_texts').selectAll().where('topic_id', '=', topicId).where('version', '=', Number(version)).executeTakeFirstOrThrow();
      const imported = await db().selectFrom('consent_events').select(['id', 'hash']).where('contact_id', '=', ids.alice).where('type', '=', 'imported').executeTakeFirstOrThrow();
      assert.deepEqual(evidence, {
        method: 're_permission',
        actor: 'subject',
        campaign_id: campaignId,
        consent_text_id: text.id,
        consent_text_version: text.version,
        consent_text_sha256: text.sha256,
        token_sha256: sha256Hex(token),
        message_id: delivery.message_id,
        imported_event: imported.id,
        imported_event_hash: imported.hash,
        deadline_at: new Date(T0.getTime() + 14 * DAY).toISOString(),
      });
      const wrapped = await db().selectFrom('contact_keys').select('wrapped_key').where('contact_id', '=', ids.alice).executeTakeFirstOrThrow();
      const key = unwrapContactKey(rt.runtime.secrets.masterKeys, ids.alice, wrapped.wrapped_key);
      assert.deepEqual(openPersonal(key, String(personal)), { ip: '203.0.113.9', user_agent: 'Browser/1.0 (test)' });

      assert.equal(rt.transport.sent.length, sentBefore + 1, 'one receipt');
      const receiptMail = await parse(rt.transport.sent[sentBefore]!);
      assert.equal(receiptMail.subject, 'Your consent receipt for Newsletter');
      assert.deepEqual(receiptMail.to && 'text' in receiptMail.to ? receiptMail.to.text : null, 'alice@example.org');
      const jws = receiptMail.attachments.find((a) => a.filename === 'consent-receipt.jws')!.content.toString('utf8');
      const verified = await verifyReceipt(jws, publicKeySet(rt.runtime.secrets.receiptKeys).keys);
      assert.ok(verified.ok);
      assert.deepEqual(
        [verified.claims.collectionMethod, verified.claims.piiPrincipalId, verified.claims.assent.ledgerEventHash, verified.claims.assent.consentTextSha256],
        ['re_permission_email_confirmation', ids.alice, event.hash, text.sha256],
      );

      const again = await rt.app.inject({ method: 'POST', url: `/r/${token}`, payload: `text_version=${version}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(again.statusCode, 200);
      assert.ok(again.body.includes('<h1>You have already confirmed</h1>'));
      assert.equal(rt.transport.sent.length, sentBefore + 1, 'no second receipt, no second event');
    });

    test('GDPR-21, EML-04: the request’s one-click unsubscribe withdraws an imported contact', async () => {
      const [request] = mailsTo('bob');
      const unsubscribe = [...linksIn(await parse(request!))].find((u) => u.startsWith(`${BASE}/u/`))!;
      const response = await rt.app.inject({ method: 'POST', url: unsubscribe.slice(BASE.length), payload: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(response.statusCode, 200);
      assert.equal(await stateOf('bob'), 'withdrawn');
    });

    test('the one reminder reaches only those who have not answered, and its own link confirms', async () => {
      rt.clock.set(new Date(T0.getTime() + 7 * DAY));
      const sentBefore = rt.transport.sent.length;
      await runWorkerUntil(rt, async () => {
        const status = await repermissionStatus({ db: db() }, campaignId);
        return status.reminder?.status === 'sent';
      });
      const reminders = rt.transport.sent.slice(sentBefore);
      assert.deepEqual(reminders.map((m) => m.envelope.to[0]).sort(), ['carol@example.org', 'gina@example.org'], 'not alice (confirmed), bob (withdrew), dave (suppressed)');
      for (const reminder of reminders) {
        assert.equal((await parse(reminder)).subject, 'Reminder: do you still want to receive “Newsletter” from Example Ltd?');
      }
      const status = await repermissionStatus({ db: db() }, campaignId);
      const ginas = reminders.find((m) => m.envelope.to[0] === 'gina@example.org')!;
      const post = await rt.app.inject({ method: 'POST', url: `/r/${await confirmTokenOf(ginas)}`, payload: 'text_version=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(post.statusCode, 200);
      assert.equal(await stateOf('gina'), 'confirmed');
      const event = await db().selectFrom('consent_events').select('evidence').where('contact_id', '=', ids.gina).where('type', '=', 'confirmed').executeTakeFirstOrThrow();
      const evidence = JSON.parse(event.evidence) as Record<string, unknown>;
      assert.deepEqual([evidence.method, evidence.campaign_id, evidence.message_id], ['re_permission', status.reminder!.id, ginas.messageId]);
      assert.equal(await stateOf('carol'), 'imported');
    });

    test('at the deadline every contact still imported lapses (exactly carol and dave), and the link is dead (404)', async () => {
      rt.clock.set(new Date(T0.getTime() + 14 * DAY));
      const sentBefore = rt.transport.sent.length;
      await runWorkerUntil(rt, async () => (await repermissionStatus({ db: db() }, campaignId)).closed_at !== null);
      assert.equal(rt.transport.sent.length, sentBefore, 'nothing more is sent');
      const lapsed = await db().selectFrom('consent_events').select('contact_id').where('type', '=', 'lapsed').where('topic_id', '=', topicId).execute();
      assert.deepEqual(lapsed.map((r) => r.contact_id).sort(), [ids.carol, ids.dave].sort());
      assert.deepEqual(
        await Promise.all(people.map(stateOf)),
        ['confirmed', 'withdrawn', 'lapsed', 'lapsed', 'confirmed', 'withdrawn', 'confirmed'],
      );
      const status = await repermissionStatus({ db: db() }, campaignId);
      assert.deepEqual(status.audience, { confirmed: 2, withdrawn: 1, lapsed: 2 });
      const [first, reminder] = mailsTo('carol');
      for (const message of [first!, reminder!]) {
        const token = await confirmTokenOf(message);
        assert.equal((await rt.app.inject({ method: 'GET', url: `/r/${token}` })).statusCode, 404);
        const post = await rt.app.inject({ method: 'POST', url: `/r/${token}`, payload: 'text_version=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        assert.equal(post.statusCode, 404);
        assert.ok(post.body.includes('<h1>This link is not valid</h1>'));
      }
      assert.equal(await stateOf('carol'), 'lapsed');
      // Tokens are capabilities: request logs name the route, never the token.
      const token = await confirmTokenOf(first!);
      assert.ok(rt.logs.some((line) => line.includes('"url":"/r/[token]"')));
      assert.ok(rt.logs.every((line) => !line.includes(token)));
    });

    test('a lapsed contact comes back only through a new sign-up, which works; the ledger verifies', async () => {
      const sentBefore = rt.transport.sent.length;
      const submitted = await submitForm(rt.app, 'newsletter', { email: 'carol@example.org', topics: ['newsletter'] }, { remoteAddress: '198.51.100.7' });
      assert.equal(submitted.statusCode, 200);
      assert.equal(await stateOf('carol'), 'requested');
      assert.equal(rt.transport.sent.length, sentBefore + 1);
      const confirmed = await openConfirm(rt.app, 'POST', confirmLinkFrom(rt.transport.sent[sentBefore]!).token);
      assert.equal(confirmed.statusCode, 200);
      assert.equal(await stateOf('carol'), 'confirmed');
      const report = await verifyLedger(db());
      assert.equal(report.ok, true);
    });

    test('CLI: `assent repermission status` reports the campaign; `create` refuses a deadline in the past (exit 2)', async () => {
      const cli = async (...args: string[]) => {
        const out: string[] = [];
        const err: string[] = [];
        const code = await runCli(['node', 'assent', ...args], { out: (l) => out.push(l), err: (l) => err.push(l), env: { ...rt.env, ASSENT_LOG_LEVEL: 'warn' }, cwd: rt.dataDir });
        return { code, out, err };
      };
      const status = await cli('repermission', 'status', campaignId, '--json');
      assert.equal(status.code, 0, status.err.join('\n'));
      assert.deepEqual(JSON.parse(status.out.at(-1)!), await repermissionStatus({ db: db() }, campaignId));
      const text = await cli('repermission', 'status', campaignId);
      assert.equal(text.out[0], `re-permission campaign ${campaignId}: sent, deadline ${new Date(T0.getTime() + 14 * DAY).toISOString()} (closed ${new Date(T0.getTime() + 14 * DAY).toISOString()})`);
      // carol signed up again since the deadline: the audience now counts her as confirmed.
      const audienceLine = /^ {2}audience now: (.*)$/.exec(text.out.at(-1)!)![1]!;
      assert.deepEqual(audienceLine.split(', ').sort(), ['confirmed 3', 'lapsed 1', 'withdrawn 1']);
      const refused = await cli('repermission', 'create', '--topic', 'newsletter', '--deadline', '2020-01-01T00:00:00Z', '--from', 'news@assent.example.org');
      assert.deepEqual([refused.code, refused.err], [2, ['error: the deadline must be in the future']]);
    });
  });
}
