/**
 * Data-subject rights on every database, over contacts made by the real
 * sign-up flow: the Art. 15/20 export holds every consent event of one
 * person with its evidence opened and nothing of anyone else, and validates
 * against the published schema; Art. 17 erasure strips the contact, shreds
 * the evidence key, keeps the ledger verifying and the suppression in force.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { readContactEvents, verifyLedger } from '../src/consent/index.js';
import { findContactByMatchKey, findContactById, findContactKey, openPersonal, parseAddress, sealContactNames, unwrapContactKey } from '../src/contacts/index.js';
import { eraseContact, exportContactData, exportJsonSchema, renderExportJsonSchema, validateJson, type ContactExport, type DsrDeps } from '../src/dsr/index.js';
import { isAppError } from '../src/shared/errors.js';
import { newId } from '../src/shared/ids.js';
import type { ConsentEventRow, Contact } from '../src/storage/index.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { confirmLinkFrom, openConfirm, recordCounts, submitForm } from './support/http.js';

const START = new Date('2026-03-01T10:00:00.000Z');
const ALICE = { first: 'Jane', last: 'Doe-Ōtomo', address: 'Jane.Doe+news@gmail.com', ip: '203.0.113.7', ua: 'Mozilla/5.0 (AliceSignup)', confirmIp: '198.51.100.23', confirmUa: 'Mozilla/5.0 (AliceConfirm)' };
const BOB = { first: 'Robert', last: 'Quimby', address: 'bob@example.org', ip: '203.0.113.99', ua: 'Mozilla/5.0 (BobSignup)', confirmIp: '198.51.100.99', confirmUa: 'Mozilla/5.0 (BobConfirm)' };
type Person = typeof ALICE;

const evidenceOf = (row: ConsentEventRow) => JSON.parse(row.evidence) as Record<string, unknown>;

for (const target of await databaseTargets()) {
  describe(`data-subject rights (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    let deps: DsrDeps;
    let alice: Contact;
    let bob: Contact;
    let aliceEvents: ConsentEventRow[];
    let bobEvents: ConsentEventRow[];
    let exported: ContactExport;
    let ledgerBefore: number;

    const db = () => rt.runtime.storage.db;

    /** Sign-up and double opt-in through the public pages, as the person would. */
    async function signUpAndConfirm(person: Person): Promise<Contact> {
      const sent = rt.transport.sent.length;
      const response = await submitForm(rt.app, 'newsletter', { email: person.address, topics: 'newsletter' }, {
        remoteAddress: person.ip,
        headers: { 'user-agent': person.ua },
      });
      assert.equal(response.statusCode, 200);
      assert.equal(rt.transport.sent.length, sent + 1);
      const { token } = confirmLinkFrom(rt.transport.sent[sent]!);
      rt.clock.advance(60_000);
      const confirm = await openConfirm(rt.app, 'POST', token, { remoteAddress: person.confirmIp, headers: { 'user-agent': person.confirmUa } });
      assert.equal(confirm.statusCode, 200);
      assert.equal(rt.transport.sent.length, sent + 2, 'confirmation and receipt');
      const parsed = parseAddress(person.address);
      assert.ok(parsed.ok);
      return (await findContactByMatchKey(db(), parsed.matchKey))!;
    }

    /** A campaign and one delivery per contact, as the send worker leaves them. */
    async function addCampaignDeliveries(): Promise<void> {
      const topic = await db().selectFrom('topics').select('id').where('slug', '=', 'newsletter').executeTakeFirstOrThrow();
      const at = rt.clock.now().toISOString();
      await db()
        .insertInto('campaigns')
        .values({
          id: 'campaign-march', kind: 'regular', topic_id: topic.id, template_name: 'monthly', template_version: 1,
          subject: 'March news', from_address: 'news@example.org', status: 'sent', scheduled_at: null,
          created_at: at, started_at: at, finished_at: at, materialised_at: at,
        })
        .execute();
      for (const [contact, messageId] of [[alice, '<march.alice@example.org>'], [bob, '<march.bob@example.org>']] as const) {
        await db()
          .insertInto('deliveries')
          .values({
            campaign_id: 'campaign-march', contact_id: contact.id, status: 'sent', lease_owner: null, lease_until: null,
            attempts: 1, next_attempt_at: at, skip_reason: null, error: null, message_id: messageId, consent_event_seq: null,
            sent_at: at, updated_at: at,
          })
          .execute();
      }
    }

    /** Names as an import stores them: sealed under the contact's own key. */
    async function storeNames(contact: Contact, person: Person): Promise<void> {
      const key = unwrapContactKey(deps.keys.masterKeys, contact.id, (await findContactKey(db(), contact.id))!);
      const sealed = sealContactNames(key, { first_name: person.first, last_name: person.last });
      await db().insertInto('contact_names').values({ contact_id: contact.id, sealed, updated_at: rt.clock.now().toISOString() }).execute();
    }

    before(async () => {
      rt = await startTestRuntime(target, { start: START });
      const { keys } = rt.runtime.signup;
      deps = { db: db(), clock: rt.clock, newId, logger: rt.runtime.logger, keys: { masterKeys: keys.masterKeys, suppressionKeys: keys.suppressionKeys } };
      alice = await signUpAndConfirm(ALICE);
      bob = await signUpAndConfirm(BOB);
      await addCampaignDeliveries();
      await storeNames(alice, ALICE);
      await storeNames(bob, BOB);
      aliceEvents = await readContactEvents(db(), alice.id);
      bobEvents = await readContactEvents(db(), bob.id);
      assert.deepEqual(aliceEvents.map((e) => e.type), ['requested', 'confirmed']);
      assert.deepEqual(bobEvents.map((e) => e.type), ['requested', 'confirmed']);
    });
    after(async () => {
      await rt?.close();
    });

    test('GDPR-15/20: the export holds every consent event of the person, evidence opened', async () => {
      rt.clock.advance(60_000);
      exported = await exportContactData(deps, alice.id);
      assert.equal(exported.format, 'assent-export/1');
      assert.equal(exported.generated_at, rt.clock.now().toISOString());
      assert.equal(exported.personal_data, 'opened');
      assert.deepEqual(exported.profile, {
        id: alice.id, address: ALICE.address, first_name: ALICE.first, last_name: ALICE.last, locale: 'en', created_at: alice.created_at, erased_at: null,
      });
      assert.deepEqual(
        exported.consent_events.map((e) => ({ seq: e.seq, id: e.id, type: e.type, occurred_at: e.occurred_at, hash: e.hash })),
        aliceEvents.map((e) => ({ seq: Number(e.seq), id: e.id, type: e.type, occurred_at: e.occurred_at, hash: e.hash })),
      );
      const topic = await db().selectFrom('topics').selectAll().where('slug', '=', 'newsletter').executeTakeFirstOrThrow();
      const topicRef = { id: topic.id, slug: 'newsletter', name: topic.name };
      for (const [i, event] of exported.consent_events.entries()) {
        const { personal: _sealed, ...stored } = evidenceOf(aliceEvents[i]!);
        assert.deepEqual(event.topic, topicRef);
        const { personal, ...rest } = event.evidence;
        assert.deepEqual(rest, stored, 'every other evidence field as stored');
        assert.deepEqual(
          personal,
          i === 0
            ? { address: ALICE.address, ip: ALICE.ip, user_agent: ALICE.ua }
            : { address: null, ip: ALICE.confirmIp, user_agent: ALICE.confirmUa },
        );
      }
      assert.deepEqual(exported.consent_states, [{ topic: topicRef, state: 'confirmed', since: aliceEvents[1]!.occurred_at }]);
      assert.deepEqual(exported.suppressions, []);
      assert.deepEqual(exported.information.purposes, [{ topic: 'newsletter', name: topic.name, description: topic.description }]);
      assert.deepEqual(exported.information.source.map((s) => s.method), ['web_form', 'double_opt_in']);
    });

    test('GDPR-15: the export lists the messages sent to the person', async () => {
      const mailLog = await db().selectFrom('mail_log').select(['kind', 'message_id', 'created_at']).where('contact_id', '=', alice.id).orderBy('created_at').execute();
      assert.deepEqual(mailLog.map((m) => m.kind), ['confirmation', 'receipt']);
      assert.deepEqual(exported.messages.system, mailLog);
      const toAlice = rt.transport.sent.filter((m) => m.envelope.to.includes(ALICE.address)).map((m) => m.messageId);
      assert.deepEqual(exported.messages.system.map((m) => m.message_id), toAlice);
      assert.deepEqual(exported.messages.campaigns, [
        { campaign_id: 'campaign-march', subject: 'March news', status: 'sent', sent_at: exported.messages.campaigns[0]?.sent_at, message_id: '<march.alice@example.org>', skip_reason: null },
      ]);
      assert.ok(exported.messages.campaigns[0]?.sent_at);
    });

    test('GDPR-15/20: nothing of anyone else is in the export', async () => {
      const json = JSON.stringify(exported);
      const bobMail = await db().selectFrom('mail_log').select('message_id').where('contact_id', '=', bob.id).execute();
      const foreign = [bob.id, BOB.address, BOB.first, BOB.last, BOB.ip, BOB.ua, BOB.confirmIp, '<march.bob@example.org>', ...bobEvents.flatMap((e) => [e.id, e.hash]), ...bobMail.map((m) => m.message_id)];
      for (const value of foreign) assert.ok(!json.includes(value), `export must not contain ${value}`);
      for (const value of [alice.id, ALICE.address, ALICE.first, ALICE.last, ALICE.ip, ALICE.confirmIp]) assert.ok(json.includes(value));
    });

    test('GDPR-20: the export is plain JSON and validates against the published JSON Schema', () => {
      assert.deepEqual(JSON.parse(JSON.stringify(exported)), exported);
      const schema = exportJsonSchema();
      assert.deepEqual(JSON.parse(renderExportJsonSchema()), schema);
      assert.deepEqual(validateJson(schema, JSON.parse(JSON.stringify(exported))), []);
      // The validator can fail: a missing, an extra and a mistyped field are each caught.
      const { profile: _p, ...noProfile } = exported;
      assert.deepEqual(validateJson(schema, noProfile), ['/profile: is required']);
      assert.deepEqual(validateJson(schema, { ...exported, extra: 1 }), ['/extra: is not allowed']);
      const badSeq = { ...exported, consent_events: [{ ...exported.consent_events[0]!, seq: '1' }] };
      assert.deepEqual(validateJson(schema, badSeq), ['/consent_events/0/seq: must be integer']);
      assert.deepEqual(validateJson(schema, { ...exported, format: 'other/1' }), ['/format: must be "assent-export/1"']);
    });

    test('GDPR-15/17: an unknown contact is not_found for export and erasure', async () => {
      await assert.rejects(exportContactData(deps, 'no-such-contact'), (e) => isAppError(e, 'not_found'));
      await assert.rejects(eraseContact(deps, { contactId: 'no-such-contact', channel: 'api' }), (e) => isAppError(e, 'not_found'));
    });

    test('GDPR-17: erasure strips the contact, shreds its key and keeps the ledger verifying', async () => {
      const before = await verifyLedger(db());
      assert.equal(before.ok, true);
      ledgerBefore = before.events;
      assert.ok(await findContactKey(db(), alice.id));
      rt.clock.advance(60_000);
      assert.deepEqual(await eraseContact(deps, { contactId: alice.id, channel: 'preference_centre' }), { erased: true });
      const names = await db().selectFrom('contact_names').select('contact_id').orderBy('contact_id').execute();
      assert.deepEqual(names, [{ contact_id: bob.id }], 'the sealed names go with the key; the other person keeps theirs');

      const row = await findContactById(db(), alice.id);
      assert.deepEqual(row, { id: alice.id, address: null, match_key: null, provider_key: null, locale: null, created_at: alice.created_at, erased_at: rt.clock.now().toISOString() });
      assert.equal(await findContactKey(db(), alice.id), undefined);
      const tokens = await db().selectFrom('confirmation_tokens').select('id').where('contact_id', '=', alice.id).execute();
      assert.deepEqual(tokens, []);
      assert.equal((await db().selectFrom('mail_log').select('id').where('contact_id', '=', alice.id).execute()).length, 2, 'mail log kept (ids only)');

      const after = await verifyLedger(db());
      assert.equal(after.ok, true);
      assert.equal(after.events, ledgerBefore + 1);
      const events = await readContactEvents(db(), alice.id);
      assert.deepEqual(events.slice(0, 2), aliceEvents, 'history untouched');
      const erased = events[2]!;
      assert.equal(erased.type, 'erased');
      assert.equal(erased.topic_id, null);
      assert.deepEqual(evidenceOf(erased), { method: 'erasure_preference_centre', actor: 'subject', channel: 'preference_centre' });
      // Crypto-shredding: the ciphertext is still there, no key opens it any more.
      const sealed = evidenceOf(aliceEvents[0]!).personal as string;
      assert.match(sealed, /^enc:v1:/);
      assert.equal(openPersonal(null, sealed), null);
      assert.ok(await findContactKey(db(), bob.id), 'the other person keeps their key');
    });

    test('GDPR-17: the suppression survives, under every provider alias, and erasure logs only the id', async () => {
      const rows = await db().selectFrom('suppressions').selectAll().execute();
      const erasedSeq = (await readContactEvents(db(), alice.id))[2]!.seq;
      assert.equal(rows.length, 2, 'the address and its canonical Gmail mailbox');
      for (const r of rows) {
        assert.deepEqual({ scope: r.scope, reason: r.reason, event_seq: Number(r.event_seq) }, { scope: 'all', reason: 'erased', event_seq: Number(erasedSeq) });
        assert.match(r.key_hash, /^[0-9a-f]{64}$/);
      }
      const line = rt.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'contact erased');
      assert.equal(line?.contact, alice.id);
    });

    test('GDPR-17: the plain address is nowhere in the database or the logs', async () => {
      const needles = [ALICE.address, 'jane.doe+news@gmail.com', 'janedoe@gmail.com', ALICE.ip, ALICE.ua].map((n) => n.toLowerCase());
      const tables = await db().introspection.getTables();
      assert.ok(tables.length >= 15);
      for (const table of tables) {
        const rows = await (db() as unknown as Kysely<Record<string, Record<string, unknown>>>).selectFrom(table.name).selectAll().execute();
        const text = JSON.stringify(rows).toLowerCase();
        for (const needle of needles) assert.ok(!text.includes(needle), `${table.name} still holds ${needle}`);
      }
      const logs = rt.logs.join('\n').toLowerCase();
      for (const needle of needles) assert.ok(!logs.includes(needle), `logs hold ${needle}`);
      assert.ok(JSON.stringify(await db().selectFrom('contacts').selectAll().execute()).includes(BOB.address), 'the search can find an address');
    });

    test('GDPR-17: erasing again is a no-op', async () => {
      const counts = await recordCounts(db());
      assert.deepEqual(await eraseContact(deps, { contactId: alice.id, channel: 'operator', actor: 'admin' }), { erased: false });
      assert.deepEqual(await recordCounts(db()), counts);
      assert.equal((await verifyLedger(db())).events, ledgerBefore + 1);
    });

    test('GDPR-17: a new sign-up with the erased address, or a Gmail alias of it, sends nothing and creates no contact', async () => {
      const counts = await recordCounts(db());
      const sent = rt.transport.attempts.length;
      for (const [i, address] of [ALICE.address, 'janedoe@googlemail.com', 'J.A.N.E.D.O.E@gmail.com'].entries()) {
        const response = await submitForm(rt.app, 'newsletter', { email: address, topics: 'newsletter' }, { remoteAddress: `192.0.2.${10 + i}` });
        assert.equal(response.statusCode, 200);
      }
      assert.equal(rt.transport.attempts.length, sent);
      assert.deepEqual(await recordCounts(db()), counts);
    });

    test('GDPR-15/17: the export after erasure has no personal data left but still the history and suppression', async () => {
      const after = await exportContactData(deps, alice.id);
      assert.deepEqual(validateJson(exportJsonSchema(), after), []);
      assert.equal(after.personal_data, 'erased');
      assert.deepEqual(after.profile, {
        id: alice.id, address: null, first_name: null, last_name: null, locale: null, created_at: alice.created_at, erased_at: after.profile.erased_at,
      });
      assert.ok(after.profile.erased_at);
      assert.deepEqual(after.consent_events.map((e) => e.type), ['requested', 'confirmed', 'erased']);
      for (const event of after.consent_events) assert.equal(event.evidence.personal, null);
      assert.deepEqual(after.suppressions, [{ scope: 'all', topic: null, reason: 'erased', created_at: after.profile.erased_at }]);
      const json = JSON.stringify(after).toLowerCase();
      for (const needle of [ALICE.address.toLowerCase(), ALICE.first.toLowerCase(), ALICE.last.toLowerCase(), ALICE.ip, ALICE.confirmIp]) assert.ok(!json.includes(needle));
      // The other person's export is whole.
      const bobs = await exportContactData(deps, bob.id);
      assert.equal(bobs.personal_data, 'opened');
      assert.deepEqual([bobs.profile.first_name, bobs.profile.last_name], [BOB.first, BOB.last]);
      assert.equal(bobs.consent_events[0]?.evidence.personal?.address, BOB.address);
      assert.deepEqual(bobs.suppressions, []);
    });
  });
}
