/**
 * What the public form refuses or quietly drops, on every database: invalid
 * input (GDPR-01, GDPR-03), CSRF, honeypot (ABU-05), identical answers
 * whatever the address's state (ABU-04), per-address and per-IP limits
 * (ABU-03), and no user text in the confirmation mail (ABU-06).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { ALL_SCOPE, insertSuppressions, writeHashes } from '../src/consent/index.js';
import { addForm } from '../src/forms/index.js';
import { addTopic, defaultConsentText } from '../src/topics/index.js';
import { escapeHtml } from '../src/shared/html.js';
import { newId } from '../src/shared/ids.js';
import type { LightMyRequestResponse } from 'fastify';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import {
  confirmLinkFrom,
  decodedMessage,
  getForm,
  openConfirm,
  recordCounts,
  submitForm,
  type FormFields,
} from './support/http.js';

const DAY_MS = 86_400_000;
const ADDRESS_ERROR = '<li>Enter a valid email address, like name@example.com.</li>';
const TOPICS_ERROR = '<li>Tick at least one box to say what you would like to receive.</li>';
const CSRF_ERROR = '<p>This form has expired. Please submit it again.</p>';
const UNTICKED_BOX = '<input type="checkbox" id="topic-newsletter" name="topics" value="newsletter">';
const TICKED_BOX = '<input type="checkbox" id="topic-newsletter" name="topics" value="newsletter" checked>';

async function topicWithForm(rt: TestRuntime, slug: string, name: string): Promise<void> {
  const deps = { db: rt.runtime.storage.db, clock: rt.clock, newId };
  await addTopic(deps, {
    slug,
    name,
    description: `${name}, by email.`,
    consentText: defaultConsentText({ controllerName: 'Example Ltd', topicName: name }),
    locale: 'en',
  });
  await addForm(deps, { slug: `${slug}-form`, title: name, topics: [{ slug }] });
}

/** Runs a request and asserts it left every table and the transport as they were. */
async function expectNothingRecorded(rt: TestRuntime, action: () => Promise<void>): Promise<void> {
  const before = await recordCounts(rt.runtime.storage.db);
  const attempts = rt.transport.attempts.length;
  await action();
  assert.deepEqual(await recordCounts(rt.runtime.storage.db), before);
  assert.equal(rt.transport.attempts.length, attempts, 'a mail was handed to the transport');
}

for (const target of await databaseTargets()) {
  describe(`sign-up abuse and invalid input (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    /** The page every accepted (or silently dropped) submission gets. */
    let inboxPage: LightMyRequestResponse;

    before(async () => {
      rt = await startTestRuntime(target, { env: { ASSENT_SIGNUP_LIMIT_PER_IP: '1000' } });
      // A topic that exists but that /f/newsletter does not offer, and three more forms.
      await topicWithForm(rt, 'partners', 'Partner offers');
      await topicWithForm(rt, 'events', 'Event invitations');
      await topicWithForm(rt, 'releases', 'New releases');
      inboxPage = await submitForm(rt.app, 'newsletter', { email: 'first@example.com', topics: 'newsletter' });
      assert.equal(inboxPage.statusCode, 200);
      assert.match(inboxPage.body, /<h1>Check your inbox<\/h1>/);
    });
    after(async () => {
      await rt?.close();
    });

    const db = () => rt.runtime.storage.db;
    const mailsTo = (address: string) => rt.transport.sent.filter((m) => m.envelope.to.includes(address));

    /** Same status, type and bytes as a brand-new address gets (ABU-04). */
    function assertInboxPage(response: LightMyRequestResponse): void {
      assert.equal(response.statusCode, inboxPage.statusCode);
      assert.equal(response.headers['content-type'], inboxPage.headers['content-type']);
      assert.equal(response.body, inboxPage.body);
    }

    test('an invalid address re-renders the form with 422, the message and the escaped input; nothing recorded', async () => {
      for (const email of ['', 'not-an-address', 'bob@', '@example.com', 'Bob <bob@example.com>', 'bob@example', 'bob@@example.com', 'bob@localhost', '"><script>alert(1)</script>@example.com']) {
        await expectNothingRecorded(rt, async () => {
          const response = await submitForm(rt.app, 'newsletter', { email, topics: 'newsletter' });
          assert.equal(response.statusCode, 422, email);
          assert.equal(response.headers['content-type'], 'text/html');
          assert.ok(response.body.includes(ADDRESS_ERROR), email);
          assert.ok(response.body.includes(`value="${escapeHtml(email)}" aria-invalid="true" aria-describedby="email-error">`), email);
          assert.equal(response.body.includes('<script>'), false);
          // The person's own tick is kept; the page still offers one box.
          assert.ok(response.body.includes(TICKED_BOX));
          assert.equal(response.body.includes(TOPICS_ERROR), false);
        });
      }
    });

    test('the re-rendered form works: corrected and submitted again, it is accepted', async () => {
      const first = await getForm(rt.app, 'newsletter');
      const rejected = await submitForm(rt.app, 'newsletter', { email: 'fix-me@', topics: 'newsletter' }, { session: first });
      assert.equal(rejected.statusCode, 422);
      const csrf = /name="_csrf" value="([^"]+)"/.exec(rejected.body)?.[1] ?? '';
      const accepted = await submitForm(rt.app, 'newsletter', { email: 'fix-me@example.com', topics: 'newsletter' }, { session: { csrf, cookie: first.cookie } });
      assertInboxPage(accepted);
      assert.equal(mailsTo('fix-me@example.com').length, 1);
    });

    test('no box ticked: 422 with the message, nothing ticked for the person, nothing recorded (GDPR-01)', async () => {
      await expectNothingRecorded(rt, async () => {
        const response = await submitForm(rt.app, 'newsletter', { email: 'nobox@example.com' });
        assert.equal(response.statusCode, 422);
        assert.ok(response.body.includes(TOPICS_ERROR));
        assert.equal(response.body.includes(ADDRESS_ERROR), false);
        assert.ok(response.body.includes(UNTICKED_BOX));
        assert.ok(response.body.includes('value="nobox@example.com"'));
        assert.ok(response.body.includes('<fieldset aria-describedby="topics-error">'));
      });
    });

    test('a topic the form does not offer: 422, nothing recorded, not even for the offered one (GDPR-08)', async () => {
      for (const topics of [['newsletter', 'partners'], ['partners'], ['bogus'], ['newsletter', '../admin'], ['']]) {
        await expectNothingRecorded(rt, async () => {
          const response = await submitForm(rt.app, 'newsletter', { email: 'sly@example.com', topics });
          assert.equal(response.statusCode, 422, topics.join());
          assert.ok(response.body.includes(TOPICS_ERROR), topics.join());
        });
      }
    });

    test('client-sent default or pre-ticked flags are ignored (GDPR-03 b)', async () => {
      const flags: FormFields = {
        default: 'newsletter',
        'consent[newsletter]': 'true',
        'consent[partners]': 'true',
        topics_default: 'newsletter',
        checked: 'newsletter',
        prechecked: '1',
        'topics[]': 'partners',
      };
      await expectNothingRecorded(rt, async () => {
        const response = await submitForm(rt.app, 'newsletter', { email: 'flags@example.com', ...flags });
        assert.equal(response.statusCode, 422);
        assert.ok(response.body.includes(TOPICS_ERROR));
        assert.ok(response.body.includes(UNTICKED_BOX));
      });
      // With the box really ticked, only that purpose is requested.
      const response = await submitForm(rt.app, 'newsletter', { email: 'flags@example.com', topics: 'newsletter', ...flags });
      assertInboxPage(response);
      const states = await db()
        .selectFrom('consent_states')
        .innerJoin('contacts', 'contacts.id', 'consent_states.contact_id')
        .innerJoin('topics', 'topics.id', 'consent_states.topic_id')
        .select(['topics.slug', 'consent_states.state'])
        .where('contacts.match_key', '=', 'flags@example.com')
        .execute();
      assert.deepEqual(states, [{ slug: 'newsletter', state: 'requested' }]);
    });

    test('a filled honeypot gets the usual page and nothing happens (ABU-05)', async () => {
      const submissions: FormFields[] = [
        { email: 'bot@example.com', topics: 'newsletter', website: 'https://spam.example' },
        { email: 'not-an-address', website: 'x' },
      ];
      for (const fields of submissions) {
        await expectNothingRecorded(rt, async () => {
          assertInboxPage(await submitForm(rt.app, 'newsletter', fields));
        });
      }
    });

    test('missing or invalid CSRF: 403, nothing recorded', async () => {
      const fields = { email: 'csrf@example.com', topics: 'newsletter' };
      const a = await getForm(rt.app, 'newsletter');
      const b = await getForm(rt.app, 'newsletter');
      assert.notEqual(a.cookie, b.cookie);
      const cases: [string, Parameters<typeof submitForm>[3]][] = [
        ['neither token nor cookie', { csrf: false }],
        ['cookie without token', { csrf: false, headers: { cookie: a.cookie } }],
        ['token without cookie', { session: { csrf: a.csrf, cookie: '' } }],
        ["another session's token", { session: { csrf: b.csrf, cookie: a.cookie } }],
        ['a forged token', { session: { csrf: `${a.csrf.slice(0, -2)}xx`, cookie: a.cookie } }],
      ];
      for (const [name, options] of cases) {
        await expectNothingRecorded(rt, async () => {
          const response = await submitForm(rt.app, 'newsletter', fields, options);
          assert.equal(response.statusCode, 403, name);
          assert.ok(response.body.includes(CSRF_ERROR), name);
        });
      }
    });

    test('an unknown form: 404 on GET and on POST, nothing recorded', async () => {
      const session = await getForm(rt.app, 'newsletter');
      await expectNothingRecorded(rt, async () => {
        const page = await rt.app.inject({ method: 'GET', url: '/f/no-such-form' });
        assert.equal(page.statusCode, 404);
        assert.ok(page.body.includes('<h1>Form not found</h1>'));
        const post = await submitForm(rt.app, 'no-such-form', { email: 'lost@example.com', topics: 'newsletter' }, { session });
        assert.equal(post.statusCode, 404);
        assert.equal(post.body, page.body);
      });
    });

    test('the confirmation mail carries nothing the submitter typed (ABU-06)', async () => {
      const spam = '<a href="https://spam.example/win">Claim your prize</a>';
      const response = await submitForm(rt.app, 'newsletter', {
        email: 'victim@example.com',
        topics: 'newsletter',
        name: spam,
        first_name: spam,
        last_name: 'https://spam.example/x',
        comment: `Visit ${spam} now`,
      });
      assertInboxPage(response);
      const [mail, ...more] = mailsTo('victim@example.com');
      assert.ok(mail);
      assert.equal(more.length, 0);
      const decoded = decodedMessage(mail).toLowerCase();
      for (const piece of ['spam.example', 'claim your prize', '<a href="https://spam', '&lt;a href']) {
        assert.equal(decoded.includes(piece), false, `the mail carries ${piece}`);
      }
      const parsed = await simpleParser(mail.raw);
      const { url } = confirmLinkFrom(mail);
      assert.deepEqual([...(parsed.html || '').matchAll(/href="([^"]*)"/g)].map((m) => m[1]), [url]);
      assert.deepEqual((parsed.text ?? '').match(/https?:\/\/\S+/g), [url]);
      const stored = JSON.stringify(await db().selectFrom('consent_events').selectAll().execute()) + JSON.stringify(await db().selectFrom('contacts').selectAll().execute());
      assert.equal(stored.includes('spam.example'), false);
    });

    test('identical answers for a pending, a confirmed and a suppressed address; nothing sent (ABU-04)', async () => {
      // Brand new: one mail. The reference page came from another brand-new address.
      assertInboxPage(await submitForm(rt.app, 'newsletter', { email: 'pending@example.com', topics: 'newsletter' }));
      assert.equal(mailsTo('pending@example.com').length, 1);

      // Pending (also as typed differently): at most one outstanding confirmation per address and topic.
      for (const email of ['pending@example.com', 'PENDING@Example.COM']) {
        await expectNothingRecorded(rt, async () => {
          assertInboxPage(await submitForm(rt.app, 'newsletter', { email, topics: 'newsletter' }));
        });
      }

      // Confirmed.
      assertInboxPage(await submitForm(rt.app, 'newsletter', { email: 'confirmed@example.com', topics: 'newsletter' }));
      const [confirmation] = mailsTo('confirmed@example.com');
      assert.equal((await openConfirm(rt.app, 'POST', confirmLinkFrom(confirmation!).token)).statusCode, 200);
      assert.equal(mailsTo('confirmed@example.com').length, 2);
      await expectNothingRecorded(rt, async () => {
        assertInboxPage(await submitForm(rt.app, 'newsletter', { email: 'confirmed@example.com', topics: 'newsletter' }));
      });

      // Suppressed (objected), never seen as a contact here: not even a contact row is created.
      const keys = rt.runtime.secrets.suppressionKeys;
      const now = rt.clock.now().toISOString();
      const suppress = (matchKey: string) =>
        insertSuppressions(
          db(),
          writeHashes(keys, matchKey).map((h) => ({ ...h, scope: ALL_SCOPE, reason: 'objected', created_at: now, event_seq: null })),
        );
      await suppress('suppressed@example.com');
      await suppress('ab@gmail.com');
      for (const email of ['suppressed@example.com', 'Suppressed@EXAMPLE.com', 'a.b+x@gmail.com', 'AB@googlemail.com', 'a.b@gmail.com']) {
        await expectNothingRecorded(rt, async () => {
          assertInboxPage(await submitForm(rt.app, 'newsletter', { email, topics: 'newsletter' }));
        });
      }
      const addresses = (await db().selectFrom('contacts').select('match_key').execute()).map((c) => c.match_key ?? '');
      assert.equal(addresses.some((a) => a.includes('suppressed') || a.endsWith('gmail.com')), false);
    });

    test('a suppression that arrives while a link is outstanding wins over the click', async () => {
      assertInboxPage(await submitForm(rt.app, 'newsletter', { email: 'late@example.com', topics: 'newsletter' }));
      const [mail] = mailsTo('late@example.com');
      const keys = rt.runtime.secrets.suppressionKeys;
      await insertSuppressions(
        db(),
        writeHashes(keys, 'late@example.com').map((h) => ({ ...h, scope: ALL_SCOPE, reason: 'objected', created_at: rt.clock.now().toISOString(), event_seq: null })),
      );
      const before = await recordCounts(db());
      const response = await openConfirm(rt.app, 'POST', confirmLinkFrom(mail!).token);
      assert.equal(response.statusCode, 404);
      const after = await recordCounts(db());
      assert.deepEqual({ ...after, used_tokens: before.used_tokens }, before);
      assert.equal(mailsTo('late@example.com').length, 1);
    });

    test('concurrent submissions for one new address produce one confirmation (ABU-03, ABU-04)', async () => {
      const session = await getForm(rt.app, 'newsletter');
      const before = await recordCounts(db());
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => submitForm(rt.app, 'newsletter', { email: 'race@example.com', topics: 'newsletter' }, { session })),
      );
      for (const response of responses) assertInboxPage(response);
      assert.equal(mailsTo('race@example.com').length, 1);
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

    test('Gmail aliases share one per-address budget of 3 confirmations a day (ABU-03, ADR-07)', async () => {
      const aliases = ['g.one+1@gmail.com', 'gone+2@gmail.com', 'G.O.N.E@googlemail.com'];
      for (const email of aliases) assertInboxPage(await submitForm(rt.app, 'newsletter', { email, topics: 'newsletter' }));
      assert.deepEqual(
        rt.transport.sent.filter((m) => /gone|g\.one|g\.o\.n\.e/i.test(m.envelope.to[0] ?? '')).map((m) => m.envelope.to[0]),
        ['g.one+1@gmail.com', 'gone+2@gmail.com', 'G.O.N.E@googlemail.com'],
      );
      await expectNothingRecorded(rt, async () => {
        assertInboxPage(await submitForm(rt.app, 'newsletter', { email: 'gone+4@gmail.com', topics: 'newsletter' }));
      });
      // Another mailbox at the same provider has its own budget.
      assertInboxPage(await submitForm(rt.app, 'newsletter', { email: 'other@gmail.com', topics: 'newsletter' }));
      assert.equal(mailsTo('other@gmail.com').length, 1);
    });

    test('more than 3 confirmation mails a day to one address, across topics and forms: the 4th sends nothing', async () => {
      const forms = ['newsletter', 'partners-form', 'events-form'];
      const topics = ['newsletter', 'partners', 'events'];
      for (const [i, form] of forms.entries()) {
        assertInboxPage(await submitForm(rt.app, form, { email: 'dave@example.com', topics: topics[i]! }));
      }
      assert.equal(mailsTo('dave@example.com').length, 3);
      await expectNothingRecorded(rt, async () => {
        assertInboxPage(await submitForm(rt.app, 'releases-form', { email: 'Dave@example.com', topics: 'releases' }));
      });
      // The window is a rolling day: a day later the budget is back.
      rt.clock.advance(DAY_MS + 1);
      assertInboxPage(await submitForm(rt.app, 'releases-form', { email: 'dave@example.com', topics: 'releases' }));
      assert.equal(mailsTo('dave@example.com').length, 4);
    });

    test('after all of that, no log line holds an address or a submitted value', () => {
      assert.ok(rt.logs.length > 50);
      const all = rt.logs.join('');
      for (const piece of ['@', 'spam.example', 'script', 'fix-me']) assert.equal(all.includes(piece), false, `logs hold ${piece}`);
    });
  });

  describe(`per-IP rate limit (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    before(async () => {
      rt = await startTestRuntime(target, { env: { ASSENT_SIGNUP_LIMIT_PER_IP: '3' } });
    });
    after(async () => {
      await rt?.close();
    });

    test('the 4th POST from one IP within the hour is 429 and records nothing; other IPs and GETs still work', async () => {
      const ip = { remoteAddress: '192.0.2.10' };
      // Every POST counts, whatever its outcome.
      assert.equal((await submitForm(rt.app, 'newsletter', { email: 'r1@example.com', topics: 'newsletter' }, ip)).statusCode, 200);
      assert.equal((await submitForm(rt.app, 'newsletter', { email: 'r2@', topics: 'newsletter' }, ip)).statusCode, 422);
      assert.equal((await submitForm(rt.app, 'newsletter', { email: 'r3@example.com', topics: 'newsletter' }, { ...ip, csrf: false })).statusCode, 403);
      const session = await getForm(rt.app, 'newsletter', ip);
      assert.equal(session.response.statusCode, 200);
      const before = await recordCounts(rt.runtime.storage.db);
      const limited = await submitForm(rt.app, 'newsletter', { email: 'r4@example.com', topics: 'newsletter' }, { ...ip, session });
      assert.equal(limited.statusCode, 429);
      assert.equal(limited.headers['content-type'], 'text/html');
      assert.equal(limited.headers['retry-after'], '3600');
      assert.ok(limited.body.includes('<p>Too many attempts from your connection. Please wait a few minutes and try again.</p>'));
      assert.deepEqual(await recordCounts(rt.runtime.storage.db), before);
      assert.deepEqual(rt.transport.sent.map((m) => m.envelope.to[0]), ['r1@example.com']);
      const elsewhere = await submitForm(rt.app, 'newsletter', { email: 'r5@example.com', topics: 'newsletter' }, { remoteAddress: '192.0.2.11' });
      assert.equal(elsewhere.statusCode, 200);
      assert.equal(rt.transport.sent.length, 2);
      for (const piece of ['192.0.2.', '@']) assert.equal(rt.logs.join('').includes(piece), false, `logs hold ${piece}`);
    });
  });
}
