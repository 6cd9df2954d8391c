/**
 * The whole sign-up and double opt-in flow over in-process HTTP, on every
 * database: form → `requested` with its evidence → confirmation mail → GET
 * (changes nothing) → POST → `confirmed` → signed receipt, verified in
 * process and with the CLI; single use, expiry, logs and headers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import type { JWK } from 'jose';
import { extractReceiptJws, GENESIS_HASH, verifyLedger, verifyReceipt, withLedger } from '../src/consent/index.js';
import { openPersonal, unwrapContactKey } from '../src/contacts/index.js';
import { addForm } from '../src/forms/index.js';
import { addTopic, defaultConsentText } from '../src/topics/index.js';
import { createMemoryTransport } from '../src/delivery/memory-transport.js';
import { newId } from '../src/shared/ids.js';
import type { OutgoingMessage } from '../src/delivery/transport.js';
import type { ConsentEventRow } from '../src/storage/index.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { confirmLinkFrom, getForm, headerOf, openConfirm, recordCounts, submitForm } from './support/http.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const DAY_MS = 86_400_000;
const START = new Date('2026-03-01T10:00:00.000Z');
const SIGNUP_IP = '203.0.113.7';
const CONFIRM_IP = '198.51.100.23';
const SIGNUP_UA = 'Mozilla/5.0 (SignupAgent 1.0)';
const CONFIRM_UA = 'Mozilla/5.0 (ConfirmAgent 2.0)';

const expectedConfirmationText = (token: string) =>
  [
    'Hello,',
    '',
    'Someone, hopefully you, asked to receive the following from Example Ltd:',
    '  - Newsletter',
    '',
    'To confirm, open this link:',
    `https://assent.example.org/confirm/${token}`,
    '',
    'The link works once and expires in 7 days.',
    'If you did not ask for this, ignore this message: you will not be subscribed and we will not write again.',
  ].join('\n');

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function evidenceOf(row: ConsentEventRow): Record<string, unknown> {
  return JSON.parse(row.evidence) as Record<string, unknown>;
}

function inputTags(body: string, pattern: RegExp): string[] {
  return [...body.matchAll(/<input\b[^>]*>/g)].map((m) => m[0]).filter((tag) => pattern.test(tag));
}

async function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/assent.mjs', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  return { code, stdout, stderr };
}

/** One character changed: a different base64url character, or a letter in place of a dot. */
function flipAt(text: string, index: number): string {
  const replacement = text[index] === 'A' ? 'B' : 'A';
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

for (const target of await databaseTargets()) {
  describe(`sign-up and double opt-in (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    // State carried through the flow, step by step.
    let confirmationMail: OutgoingMessage;
    let token: string;
    let requested: ConsentEventRow;
    let confirmed: ConsentEventRow;
    let receiptMail: OutgoingMessage;
    let jws: string;
    let publicKeys: JWK[];
    const tokens: string[] = [];

    before(async () => {
      rt = await startTestRuntime(target, { start: START });
    });
    after(async () => {
      await rt?.close();
    });

    const db = () => rt.runtime.storage.db;
    const client = { remoteAddress: SIGNUP_IP, headers: { 'user-agent': SIGNUP_UA } };
    const confirmer = { remoteAddress: CONFIRM_IP, headers: { 'user-agent': CONFIRM_UA } };

    test('/healthz answers {"status":"ok"} after a real query', async () => {
      const response = await rt.app.inject({ method: 'GET', url: '/healthz' });
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(response.body, '{"status":"ok"}');
    });

    test('an unknown form is a 404 page', async () => {
      const response = await rt.app.inject({ method: 'GET', url: '/f/no-such-form' });
      assert.equal(response.statusCode, 404);
      assert.equal(response.headers['content-type'], 'text/html');
      assert.ok(response.body.includes('<h1>Form not found</h1>'));
      assert.ok(response.body.includes('<p>There is no sign-up form at this address.</p>'));
      const elsewhere = await rt.app.inject({ method: 'GET', url: '/nowhere' });
      assert.equal(elsewhere.statusCode, 404);
      assert.equal(elsewhere.body, response.body);
    });

    test('public pages carry a strict CSP and the other security headers', async () => {
      for (const url of ['/f/newsletter', '/f/no-such-form', '/confirm/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', '/healthz']) {
        const { headers } = await rt.app.inject({ method: 'GET', url });
        const csp = String(headers['content-security-policy']);
        const directives = new Map(csp.split(';').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
        assert.equal(directives.get('default-src'), "'self'", url);
        assert.equal(directives.get('script-src'), "'none'", url);
        assert.equal(directives.get('form-action'), "'self'", url);
        assert.equal(directives.get('object-src'), "'none'", url);
        assert.equal(directives.get('frame-ancestors'), "'self'", url);
        assert.equal(headers['referrer-policy'], 'no-referrer', url);
        assert.equal(headers['x-content-type-options'], 'nosniff', url);
        assert.equal(headers['x-frame-options'], 'SAMEORIGIN', url);
        assert.equal(headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', url);
      }
    });

    test('the stylesheet is served from our origin (no inline styles needed)', async () => {
      const response = await rt.app.inject({ method: 'GET', url: '/assets/assent.css' });
      assert.equal(response.statusCode, 200);
      assert.match(String(response.headers['content-type']), /^text\/css/);
    });

    test('GET /f/newsletter: one labelled, unticked box per topic, the exact consent text, no script (GDPR-03 a)', async () => {
      const { response, csrf, cookie } = await getForm(rt.app, 'newsletter', client);
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers['content-type'], 'text/html');
      const boxes = inputTags(response.body, /type="checkbox"/);
      assert.deepEqual(boxes, ['<input type="checkbox" id="topic-newsletter" name="topics" value="newsletter">']);
      for (const box of boxes) assert.doesNotMatch(box, /\bchecked\b/);
      // No other control can carry a topic, checked or hidden.
      assert.deepEqual(inputTags(response.body, /name="topics"/), boxes);
      assert.doesNotMatch(response.body, /\bchecked\b/);
      assert.doesNotMatch(response.body, /<script/i);
      assert.ok(response.body.includes('<label for="topic-newsletter"><strong>Newsletter</strong>'));
      const text = defaultConsentText({ controllerName: 'Example Ltd', topicName: 'Newsletter' }).replaceAll('"', '&quot;');
      assert.ok(response.body.includes(`<span class="consent-text">${text}</span>`));
      assert.match(csrf, /^[A-Za-z0-9_-]{20,}$/);
      assert.match(cookie, /^_csrf=[A-Za-z0-9_-]+$/);
      assert.match(String(response.headers['set-cookie']), /HttpOnly; Secure; SameSite=Lax/);
    });

    test('POST with CSRF: "Check your inbox", one confirmation mail to the address as entered', async () => {
      const before = await recordCounts(db());
      const response = await submitForm(rt.app, 'newsletter', { email: '  Bob@Example.com ', topics: 'newsletter' }, client);
      assert.equal(response.statusCode, 200);
      assert.match(response.body, /<h1>Check your inbox<\/h1>/);
      assert.ok(response.body.includes('Nothing is subscribed until you click that link.'));
      assert.equal(rt.transport.sent.length, 1);
      confirmationMail = rt.transport.sent[0]!;
      // Local part kept as typed (RFC 5321 §2.4), domain lower-cased.
      assert.deepEqual(confirmationMail.envelope, { from: 'no-reply@assent.example.org', to: ['Bob@example.com'] });
      assert.equal(headerOf(confirmationMail, 'To'), 'Bob@example.com');
      assert.equal(headerOf(confirmationMail, 'From'), 'Example Ltd <no-reply@assent.example.org>');
      assert.equal(headerOf(confirmationMail, 'Subject'), 'Please confirm your subscription to Example Ltd');
      assert.equal(headerOf(confirmationMail, 'Message-ID'), confirmationMail.messageId);
      assert.match(confirmationMail.messageId, /^<confirm\.[0-9a-f-]{36}@assent\.example\.org>$/);
      const link = confirmLinkFrom(confirmationMail);
      token = link.token;
      tokens.push(token);
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      const parsed = await simpleParser(confirmationMail.raw);
      assert.equal(parsed.text?.trimEnd(), expectedConfirmationText(token));
      assert.ok(parsed.html && parsed.html.includes(`<a href="https://assent.example.org/confirm/${token}">Confirm my subscription</a>`));
      assert.deepEqual(await recordCounts(db()), {
        ...before,
        contacts: before.contacts + 1,
        contact_keys: before.contact_keys + 1,
        consent_events: before.consent_events + 1,
        consent_states: before.consent_states + 1,
        confirmation_tokens: before.confirmation_tokens + 1,
        mail_log: before.mail_log + 1,
      });
    });

    test('one `requested` event with its evidence; personal data only sealed; the token only hashed', async () => {
      const form = await db().selectFrom('forms').selectAll().where('slug', '=', 'newsletter').executeTakeFirstOrThrow();
      const topic = await db().selectFrom('topics').selectAll().where('slug', '=', 'newsletter').executeTakeFirstOrThrow();
      const text = await db().selectFrom('consent_texts').selectAll().where('topic_id', '=', topic.id).executeTakeFirstOrThrow();
      const contact = await db().selectFrom('contacts').selectAll().executeTakeFirstOrThrow();
      const tokenRow = await db().selectFrom('confirmation_tokens').selectAll().executeTakeFirstOrThrow();
      const events = await db().selectFrom('consent_events').selectAll().orderBy('seq').execute();
      assert.equal(events.length, 1);
      requested = events[0]!;

      assert.deepEqual(contact, {
        id: contact.id,
        address: 'Bob@example.com',
        match_key: 'bob@example.com',
        provider_key: null,
        locale: 'en',
        created_at: START.toISOString(),
        erased_at: null,
      });
      assert.equal(text.sha256, sha256(text.body));
      assert.deepEqual(
        { ...requested, id: '', hash: '' },
        {
          seq: 1,
          id: '',
          contact_id: contact.id,
          topic_id: topic.id,
          type: 'requested',
          occurred_at: START.toISOString(),
          evidence: requested.evidence,
          prev_hash: GENESIS_HASH,
          hash: '',
        },
      );
      const { personal, ...evidence } = evidenceOf(requested);
      assert.deepEqual(evidence, {
        method: 'web_form',
        actor: 'subject',
        form_id: form.id,
        form_slug: 'newsletter',
        form_version: 1,
        consent_text_id: text.id,
        consent_text_version: 1,
        consent_text_sha256: text.sha256,
        token_id: tokenRow.id,
        message_id: confirmationMail.messageId,
      });
      assert.match(String(personal), /^enc:v1:[A-Za-z0-9_-]+$/);
      const wrapped = await db().selectFrom('contact_keys').select('wrapped_key').where('contact_id', '=', contact.id).executeTakeFirstOrThrow();
      const contactKey = unwrapContactKey(rt.runtime.secrets.masterKeys, contact.id, wrapped.wrapped_key);
      assert.deepEqual(openPersonal(contactKey, String(personal)), { address: 'Bob@example.com', ip: SIGNUP_IP, user_agent: SIGNUP_UA });

      // Nothing personal in the clear anywhere in the ledger rows (EDPB-02: proof without extra exposure).
      const rawEvents = JSON.stringify(await db().selectFrom('consent_events').selectAll().execute()).toLowerCase();
      for (const secret of ['bob@example.com', SIGNUP_IP, '203.0.113', SIGNUP_UA.toLowerCase()]) {
        assert.equal(rawEvents.includes(secret), false, `ledger holds ${secret}`);
      }
      // The bare local part as a word of its own: inside base64url ciphertext "bob" turns up by chance (about 1 run in 300).
      assert.doesNotMatch(rawEvents, /(?<![a-z0-9_-])bob(?![a-z0-9_-])/, 'ledger holds bob');

      assert.deepEqual(tokenRow, {
        id: tokenRow.id,
        token_hash: sha256(token),
        contact_id: contact.id,
        form_id: form.id,
        topic_ids: JSON.stringify([topic.id]),
        throttle_key: tokenRow.throttle_key,
        created_at: START.toISOString(),
        expires_at: new Date(START.getTime() + 7 * DAY_MS).toISOString(),
        used_at: null,
      });
      assert.match(tokenRow.throttle_key, /^[0-9a-f]{64}$/);
      const rawTokens = JSON.stringify(await db().selectFrom('confirmation_tokens').selectAll().execute());
      assert.equal(rawTokens.includes(token), false, 'the raw token is stored');
      assert.equal(rawTokens.toLowerCase().includes('bob'), false);

      assert.deepEqual(await db().selectFrom('consent_states').selectAll().execute(), [
        { contact_id: contact.id, topic_id: topic.id, state: 'requested', since: START.toISOString(), event_seq: 1 },
      ]);
      const mailLog = await db().selectFrom('mail_log').selectAll().execute();
      assert.deepEqual(
        mailLog.map((m) => [m.contact_id, m.kind, m.message_id]),
        [[contact.id, 'confirmation', confirmationMail.messageId]],
      );
    });

    test('GET /confirm/:token shows a page with a button and changes nothing', async () => {
      rt.clock.advance(60_000);
      const before = await recordCounts(db());
      const statesBefore = await db().selectFrom('consent_states').selectAll().execute();
      const response = await openConfirm(rt.app, 'GET', token, confirmer);
      assert.equal(response.statusCode, 200);
      assert.ok(response.body.includes('<h1>Confirm your subscription</h1>'));
      assert.ok(response.body.includes('<ul><li>Newsletter</li></ul>'));
      assert.ok(response.body.includes(`<form method="post" action="/confirm/${token}">\n<button type="submit">Confirm</button>\n</form>`));
      const head = await rt.app.inject({ method: 'HEAD', url: `/confirm/${token}` });
      assert.equal(head.statusCode, 200);
      assert.deepEqual(await recordCounts(db()), before);
      assert.deepEqual(await db().selectFrom('consent_states').selectAll().execute(), statesBefore);
      assert.equal(rt.transport.sent.length, 1);
    });

    test('POST /confirm/:token: `confirmed` with its own evidence, state confirmed, one receipt mail', async () => {
      const confirmedAt = rt.clock.now().toISOString();
      const before = await recordCounts(db());
      const response = await openConfirm(rt.app, 'POST', token, confirmer);
      assert.equal(response.statusCode, 200);
      assert.ok(response.body.includes('<h1>Thank you, you are subscribed</h1>'));
      assert.deepEqual(await recordCounts(db()), {
        ...before,
        consent_events: before.consent_events + 1,
        used_tokens: before.used_tokens + 1,
        mail_log: before.mail_log + 1,
      });
      const events = await db().selectFrom('consent_events').selectAll().orderBy('seq').execute();
      assert.equal(events.length, 2);
      confirmed = events[1]!;
      assert.equal(confirmed.type, 'confirmed');
      assert.equal(Number(confirmed.seq), 2);
      assert.equal(confirmed.prev_hash, requested.hash);
      assert.equal(confirmed.contact_id, requested.contact_id);
      assert.equal(confirmed.topic_id, requested.topic_id);
      assert.equal(confirmed.occurred_at, confirmedAt);
      const req = evidenceOf(requested);
      const { personal, ...evidence } = evidenceOf(confirmed);
      assert.deepEqual(evidence, {
        method: 'double_opt_in',
        actor: 'subject',
        form_id: req.form_id,
        form_slug: 'newsletter',
        form_version: 1,
        consent_text_id: req.consent_text_id,
        consent_text_version: 1,
        consent_text_sha256: req.consent_text_sha256,
        token_id: req.token_id,
        requested_event: requested.id,
        requested_event_hash: requested.hash,
        message_id: confirmationMail.messageId,
      });
      assert.notEqual(personal, req.personal);
      const wrapped = await db().selectFrom('contact_keys').select('wrapped_key').where('contact_id', '=', confirmed.contact_id).executeTakeFirstOrThrow();
      const contactKey = unwrapContactKey(rt.runtime.secrets.masterKeys, confirmed.contact_id, wrapped.wrapped_key);
      assert.deepEqual(openPersonal(contactKey, String(personal)), { ip: CONFIRM_IP, user_agent: CONFIRM_UA });
      const rawEvents = JSON.stringify(events).toLowerCase();
      for (const secret of ['bob@example.com', CONFIRM_IP, SIGNUP_IP, CONFIRM_UA.toLowerCase()]) assert.equal(rawEvents.includes(secret), false);

      assert.deepEqual(await db().selectFrom('consent_states').selectAll().execute(), [
        { contact_id: confirmed.contact_id, topic_id: confirmed.topic_id, state: 'confirmed', since: confirmedAt, event_seq: 2 },
      ]);
      const tokenRow = await db().selectFrom('confirmation_tokens').selectAll().executeTakeFirstOrThrow();
      assert.equal(tokenRow.used_at, confirmedAt);

      assert.equal(rt.transport.sent.length, 2);
      receiptMail = rt.transport.sent[1]!;
      assert.deepEqual(receiptMail.envelope, { from: 'no-reply@assent.example.org', to: ['Bob@example.com'] });
      assert.equal(headerOf(receiptMail, 'Subject'), 'Your consent receipt for Newsletter');
      assert.equal(receiptMail.messageId, `<receipt.${confirmed.id}@assent.example.org>`);
      const mailLog = await db().selectFrom('mail_log').select(['kind', 'message_id']).where('kind', '=', 'receipt').execute();
      assert.deepEqual(mailLog, [{ kind: 'receipt', message_id: receiptMail.messageId }]);
    });

    test('the receipt attachment verifies with the published key and names the confirmed event', async () => {
      const parsed = await simpleParser(receiptMail.raw);
      assert.equal(parsed.attachments.length, 1);
      const attachment = parsed.attachments[0]!;
      assert.equal(attachment.filename, 'consent-receipt.jws');
      assert.equal(attachment.contentType, 'application/jose');
      jws = attachment.content.toString('utf8');
      assert.equal(extractReceiptJws(receiptMail.raw.toString('utf8')), jws);

      const keyResponse = await rt.app.inject({ method: 'GET', url: '/.well-known/assent-receipt-key.json' });
      assert.equal(keyResponse.statusCode, 200);
      assert.equal(keyResponse.headers['cache-control'], 'public, max-age=3600');
      const keySet = keyResponse.json<{ keys: JWK[] }>();
      assert.equal(keySet.keys.length, 1);
      assert.deepEqual(Object.keys(keySet.keys[0]!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
      publicKeys = keySet.keys;

      const result = await verifyReceipt(jws, publicKeys);
      assert.ok(result.ok, result.ok ? '' : result.reason);
      const { claims } = result;
      const req = evidenceOf(requested);
      assert.equal(result.kid, publicKeys[0]!.kid);
      assert.equal(claims.consentReceiptID, confirmed.id);
      assert.equal(claims.piiPrincipalId, confirmed.contact_id);
      assert.equal(claims.consentTimestamp, Math.floor(Date.parse(requested.occurred_at) / 1000));
      assert.deepEqual(claims.assent, {
        topic: 'newsletter',
        consentTextId: req.consent_text_id,
        consentTextVersion: 1,
        consentTextSha256: req.consent_text_sha256,
        confirmedAt: Math.floor(Date.parse(confirmed.occurred_at) / 1000),
        method: 'web_form_double_opt_in',
        formId: req.form_id,
        ledgerEventHash: confirmed.hash,
        ledgerEventSeq: 2,
      });
      assert.equal(JSON.stringify(claims).toLowerCase().includes('bob'), false, 'the receipt holds the address');
    });

    // `receipt verify` never opens the database, and each spawn costs ~2 s of tsx start-up: once is enough.
    const cliSkip = target.name === 'sqlite' ? false : 'the CLI check is database-independent; it runs on sqlite';
    test('the CLI verifies the saved .eml and .jws (exit 0) and refuses changed ones (exit 1)', { skip: cliSkip }, async () => {
      const emlFile = join(rt.dataDir, 'receipt.eml');
      const jwsFile = join(rt.dataDir, 'consent-receipt.jws');
      writeFileSync(emlFile, receiptMail.raw);
      writeFileSync(jwsFile, jws);
      // The last signature character (its spare bits are the subtle case); every position is checked in process below.
      const positions = [jws.length - 1];
      const tampered = positions.map((i) => {
        const file = join(rt.dataDir, `tampered-${i}.jws`);
        writeFileSync(file, flipAt(jws, i));
        return file;
      });
      // One character of the base64 attachment body in the .eml.
      const eml = receiptMail.raw.toString('utf8');
      const bodyAt = eml.lastIndexOf('Content-Disposition: attachment');
      const emlIndex = eml.indexOf('\r\n\r\n', bodyAt) + 4 + 200;
      assert.match(eml[emlIndex]!, /^[A-Za-z0-9+/]$/);
      const tamperedEml = join(rt.dataDir, 'tampered.eml');
      writeFileSync(tamperedEml, flipAt(eml, emlIndex));

      const runs = await Promise.all([emlFile, jwsFile, tamperedEml, ...tampered].map((f) => runCli(['receipt', 'verify', f], rt.env)));
      const [fromEml, fromJws, ...refused] = runs;
      for (const run of [fromEml!, fromJws!]) {
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout.split('\n')[0], `receipt valid: ${confirmed.id} signed by key ${publicKeys[0]!.kid}`);
        assert.ok(run.stdout.includes(`ledger event 2 ${confirmed.hash}`));
      }
      for (const run of refused) {
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.match(run.stderr, /^receipt NOT valid: /);
      }
    });

    test('every single-character change anywhere in the JWS fails verification', async () => {
      for (let i = 0; i < jws.length; i += 1) {
        const result = await verifyReceipt(flipAt(jws, i), publicKeys);
        assert.equal(result.ok, false, `a change at ${i} of ${jws.length} still verifies`);
      }
      assert.ok((await verifyReceipt(jws, publicKeys)).ok);
    });

    test('a second POST of the same link: 404 "not valid", nothing changes (single use)', async () => {
      const before = await recordCounts(db());
      const states = await db().selectFrom('consent_states').selectAll().execute();
      for (const method of ['POST', 'GET'] as const) {
        const response = await openConfirm(rt.app, method, token, confirmer);
        assert.equal(response.statusCode, 404);
        assert.ok(response.body.includes('<h1>This link is not valid</h1>'));
      }
      assert.deepEqual(await recordCounts(db()), before);
      assert.deepEqual(await db().selectFrom('consent_states').selectAll().execute(), states);
      assert.equal(rt.transport.sent.length, 2);
    });

    test('unknown, malformed and altered tokens: 404, nothing recorded', async () => {
      const before = await recordCounts(db());
      for (const bad of [flipAt(token, 5), 'x'.repeat(43), 'short', `${token}extra`]) {
        for (const method of ['GET', 'POST'] as const) {
          const response = await openConfirm(rt.app, method, bad, confirmer);
          assert.equal(response.statusCode, 404, `${method} ${bad}`);
          assert.ok(response.body.includes('<h1>This link is not valid</h1>'));
        }
      }
      assert.deepEqual(await recordCounts(db()), before);
      assert.equal(rt.transport.sent.length, 2);
    });

    test('a link works until its 7 days are up; after that: 404 and nothing recorded', async () => {
      const response = await submitForm(rt.app, 'newsletter', { email: 'carol@example.com', topics: 'newsletter' }, client);
      assert.equal(response.statusCode, 200);
      assert.equal(rt.transport.sent.length, 3);
      const carolToken = confirmLinkFrom(rt.transport.sent[2]!).token;
      tokens.push(carolToken);
      rt.clock.advance(7 * DAY_MS - 1);
      assert.equal((await openConfirm(rt.app, 'GET', carolToken, confirmer)).statusCode, 200);
      rt.clock.advance(2);
      const before = await recordCounts(db());
      const states = await db().selectFrom('consent_states').selectAll().execute();
      for (const method of ['GET', 'POST'] as const) {
        const expired = await openConfirm(rt.app, method, carolToken, confirmer);
        assert.equal(expired.statusCode, 404);
        assert.ok(expired.body.includes('<h1>This link is not valid</h1>'));
      }
      assert.deepEqual(await recordCounts(db()), before);
      assert.deepEqual(await db().selectFrom('consent_states').selectAll().execute(), states);
      assert.deepEqual(states.map((s) => s.state).sort(), ['confirmed', 'requested']);
      assert.equal(rt.transport.sent.length, 3);
    });

    test('the ledger verifies', async () => {
      const rows = await db().selectFrom('consent_events').selectAll().orderBy('seq').execute();
      assert.deepEqual(rows.map((r) => r.type), ['requested', 'confirmed', 'requested']);
      const report = await verifyLedger(db());
      assert.deepEqual(report, { ok: true, events: 3, head: { seq: 3, hash: rows[2]!.hash } });
    });

    test('logs hold no address, IP, user agent or token; confirmation URLs show /confirm/[token]', () => {
      const all = rt.logs.join('').toLowerCase();
      for (const secret of ['bob@example.com', 'carol@example.com', SIGNUP_IP, CONFIRM_IP, SIGNUP_UA.toLowerCase(), CONFIRM_UA.toLowerCase()]) {
        assert.equal(all.includes(secret), false, `logs hold ${secret}`);
      }
      for (const t of tokens) assert.equal(rt.logs.join('').includes(t), false, 'logs hold a token');
      const lines = rt.logs.map((l) => JSON.parse(l) as { msg: string; level: number; url?: string; method?: string; status?: number });
      const confirmLines = lines.filter((l) => l.msg === 'request' && l.url?.startsWith('/confirm'));
      assert.ok(confirmLines.length >= 10);
      assert.deepEqual(new Set(confirmLines.map((l) => l.url)), new Set(['/confirm/[token]']));
      assert.ok(lines.some((l) => l.msg === 'request' && l.method === 'POST' && l.url === '/f/newsletter' && l.status === 200));
      assert.deepEqual(lines.filter((l) => l.level >= 50), []);
    });
  });

  describe(`one box per purpose (GDPR-08) (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    before(async () => {
      rt = await startTestRuntime(target, { start: START });
      const deps = { db: rt.runtime.storage.db, clock: rt.clock, newId };
      await addTopic(deps, {
        slug: 'partners',
        name: 'Partner offers',
        description: 'Offers from our partners, sent by us.',
        consentText: defaultConsentText({ controllerName: 'Example Ltd', topicName: 'Partner offers' }),
        locale: 'en',
      });
      await addForm(deps, { slug: 'both', title: 'Both', topics: [{ slug: 'newsletter' }, { slug: 'partners' }] });
    });
    after(async () => {
      await rt?.close();
    });

    test('two unticked boxes; ticking one records consent for that purpose only', async () => {
      const page = await getForm(rt.app, 'both');
      const boxes = inputTags(page.response.body, /type="checkbox"/);
      assert.deepEqual(boxes, [
        '<input type="checkbox" id="topic-newsletter" name="topics" value="newsletter">',
        '<input type="checkbox" id="topic-partners" name="topics" value="partners">',
      ]);
      const response = await submitForm(rt.app, 'both', { email: 'dora@example.com', topics: 'newsletter' }, { session: page });
      assert.equal(response.statusCode, 200);
      const rows = await rt.runtime.storage.db
        .selectFrom('consent_events')
        .innerJoin('topics', 'topics.id', 'consent_events.topic_id')
        .select(['topics.slug', 'consent_events.type'])
        .execute();
      assert.deepEqual(rows, [{ slug: 'newsletter', type: 'requested' }]);
      assert.equal(rt.transport.sent.length, 1);
      const text = (await simpleParser(rt.transport.sent[0]!.raw)).text ?? '';
      assert.ok(text.includes('  - Newsletter\n'));
      assert.equal(text.includes('Partner offers'), false);
      await openConfirm(rt.app, 'POST', confirmLinkFrom(rt.transport.sent[0]!).token);
      const states = await rt.runtime.storage.db
        .selectFrom('consent_states')
        .innerJoin('topics', 'topics.id', 'consent_states.topic_id')
        .select(['topics.slug', 'consent_states.state'])
        .execute();
      assert.deepEqual(states, [{ slug: 'newsletter', state: 'confirmed' }]);
    });

    test('a confirmation link confirms only the requests it was issued for, never another pending request of the same person', async () => {
      const db = rt.runtime.storage.db;
      const sentBefore = rt.transport.sent.length;
      assert.equal((await submitForm(rt.app, 'both', { email: 'two.requests@example.com', topics: 'partners' })).statusCode, 200);
      const token = confirmLinkFrom(rt.transport.sent[sentBefore]!).token;
      const contact = await db.selectFrom('contacts').select('id').where('match_key', '=', 'two.requests@example.com').executeTakeFirstOrThrow();
      const partners = await db.selectFrom('topics').select('id').where('slug', '=', 'partners').executeTakeFirstOrThrow();
      // A second request for the topic, issued with another token (no path does this today; the link must not cover it).
      await withLedger(db, (_trx, ledger) =>
        ledger.append([{ id: newId(), contactId: contact.id, topicId: partners.id, type: 'requested', occurredAt: rt.clock.now(), evidence: { method: 'web_form', actor: 'subject', token_id: 'another-token' } }]),
      );
      await openConfirm(rt.app, 'POST', token);
      const state = await db.selectFrom('consent_states').select('state').where('contact_id', '=', contact.id).where('topic_id', '=', partners.id).executeTakeFirstOrThrow();
      assert.equal(state.state, 'requested');
      const types = (await db.selectFrom('consent_events').select('type').where('contact_id', '=', contact.id).orderBy('seq').execute()).map((e) => e.type);
      assert.deepEqual(types, ['requested', 'requested']);
    });

    test('ticking both: an event per purpose, one confirmation, a receipt per purpose', async () => {
      const sentBefore = rt.transport.sent.length;
      const response = await submitForm(rt.app, 'both', { email: 'emil@example.com', topics: ['newsletter', 'partners'] });
      assert.equal(response.statusCode, 200);
      assert.equal(rt.transport.sent.length, sentBefore + 1);
      const mail = rt.transport.sent[sentBefore]!;
      const contact = await rt.runtime.storage.db.selectFrom('contacts').selectAll().where('match_key', '=', 'emil@example.com').executeTakeFirstOrThrow();
      const requested = await rt.runtime.storage.db.selectFrom('consent_events').selectAll().where('contact_id', '=', contact.id).orderBy('seq').execute();
      assert.equal(requested.length, 2);
      assert.notEqual(requested[0]!.topic_id, requested[1]!.topic_id);
      const [a, b] = requested.map(evidenceOf);
      assert.equal(a!.token_id, b!.token_id);
      assert.equal(a!.message_id, mail.messageId);
      assert.equal(b!.message_id, mail.messageId);
      assert.notEqual(a!.consent_text_id, b!.consent_text_id);

      const confirm = await openConfirm(rt.app, 'POST', confirmLinkFrom(mail).token);
      assert.equal(confirm.statusCode, 200);
      const events = await rt.runtime.storage.db.selectFrom('consent_events').selectAll().where('contact_id', '=', contact.id).orderBy('seq').execute();
      assert.deepEqual(events.map((e) => e.type), ['requested', 'requested', 'confirmed', 'confirmed']);
      const receipts = rt.transport.sent.slice(sentBefore + 1);
      assert.equal(receipts.length, 2);
      const keys = rt.app.inject({ method: 'GET', url: '/.well-known/assent-receipt-key.json' });
      const publicKeys = (await keys).json<{ keys: JWK[] }>().keys;
      const verified = await Promise.all(receipts.map((m) => verifyReceipt(extractReceiptJws(m.raw.toString('utf8')) ?? '', publicKeys)));
      const hashes = verified.map((v) => (v.ok ? v.claims.assent.ledgerEventHash : v.reason));
      assert.deepEqual(hashes.sort(), events.slice(2).map((e) => e.hash).sort());
      assert.deepEqual(verified.map((v) => (v.ok ? v.claims.assent.topic : '')).sort(), ['newsletter', 'partners']);
      assert.deepEqual(await verifyLedger(rt.runtime.storage.db).then((r) => r.ok), true);
    });
  });

  describe(`a mail server that refuses the recipient (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    const refusing = createMemoryTransport({
      // Real relays echo the recipient in their reply (Postfix, Exim, Exchange).
      script: (message) => ({ status: 'permanent', code: 550, response: `550 5.1.1 <${message.envelope.to[0]}>: Recipient address rejected` }),
    });
    before(async () => {
      rt = await startTestRuntime(target, { start: START, transport: refusing });
    });
    after(async () => {
      await rt?.close();
    });

    test('the page is the usual one, and the logged reply does not carry the address', async () => {
      const response = await submitForm(rt.app, 'newsletter', { email: 'Frank.Refused@example.com', topics: 'newsletter' }, { remoteAddress: SIGNUP_IP });
      assert.equal(response.statusCode, 200);
      assert.match(response.body, /<h1>Check your inbox<\/h1>/);
      assert.equal(refusing.attempts.length, 1);
      assert.equal(refusing.sent.length, 0);
      const warnings = rt.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'system mail not delivered');
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]!.response, '550 5.1.1 <[address]>: Recipient address rejected');
      assert.equal(rt.logs.join('').toLowerCase().includes('frank.refused'), false);
      assert.equal(rt.logs.join('').includes(SIGNUP_IP), false);
    });
  });
}
