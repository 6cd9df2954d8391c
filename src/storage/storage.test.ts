import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { sql } from 'kysely';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import {
  createContactKey,
  findContactByMatchKey,
  findContactKey,
  findContactsByProviderKey,
  insertContact,
  insertContactKey,
  openPersonal,
  parseAddress,
  sealPersonal,
  unwrapContactKey,
} from '../contacts/index.js';
import { decideSend, findSuppressions, insertSuppressions, lookupHashes, verifyLedger, withLedger, writeHashes, type SendPurpose } from '../consent/index.js';
import { migrateToLatest, type Contact, type Db } from './index.js';

const CREATED = '2026-03-01T10:00:00.000Z';
const master1 = { version: 1, key: Buffer.alloc(32, 1) };
const master2 = { version: 2, key: Buffer.alloc(32, 2) };
const supp1 = { version: 1, key: Buffer.alloc(32, 7) };
const supp2 = { version: 2, key: Buffer.alloc(32, 9) };
const hmac = (key: Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest('hex');

function matchKeyOf(address: string): string {
  const parsed = parseAddress(address);
  assert.equal(parsed.ok, true, address);
  return parsed.ok ? parsed.matchKey : '';
}

function contact(id: string, address: string): Contact {
  const parsed = parseAddress(address);
  if (!parsed.ok) throw new Error(`bad fixture ${address}`);
  return { id, address: parsed.address, match_key: parsed.matchKey, provider_key: parsed.providerKey, locale: 'en', created_at: CREATED, erased_at: null };
}

async function suppress(db: Db, options: { keys: typeof supp1[]; address: string; scope: string; reason: string }): Promise<void> {
  const rows = writeHashes(options.keys, matchKeyOf(options.address)).map((h) => ({ ...h, scope: options.scope, reason: options.reason, created_at: CREATED, event_seq: null }));
  await insertSuppressions(db, rows);
}

async function suppressionsFor(db: Db, options: { keys: typeof supp1[]; address: string; topics: string[] }) {
  return findSuppressions(db, lookupHashes(options.keys, matchKeyOf(options.address)), options.topics);
}

for (const target of await databaseTargets()) {
  describe(target.name, { skip: target.skip }, () => {
    let database: TestDatabase;
    let db: Db;
    before(async () => {
      database = await target.open({ migrate: false });
      db = database.storage.db;
    });
    after(() => database.cleanup());

    test('migrations apply once, in name order, and a second run applies nothing', async () => {
      const { applied } = await migrateToLatest(db);
      assert.equal(applied[0], '0001-initial');
      assert.deepEqual([...applied].sort(), applied);
      const recorded = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
      assert.deepEqual(recorded.rows.map((r) => r.name), applied);
      assert.deepEqual(await migrateToLatest(db), { applied: [] });
      const tables = new Set((await db.introspection.getTables()).map((t) => t.name));
      const core = ['confirmation_tokens', 'consent_events', 'consent_states', 'consent_texts', 'contact_keys', 'contacts', 'form_topics', 'forms', 'ledger_head', 'mail_log', 'suppressions', 'topics'];
      assert.deepEqual(core.filter((t) => !tables.has(t)), []);
      assert.deepEqual(await db.selectFrom('ledger_head').selectAll().execute(), [{ id: 1, seq: 0, hash: '0'.repeat(64) }]);
      assert.deepEqual(await verifyLedger(db), { ok: true, events: 0, head: { seq: 0, hash: '0'.repeat(64) } });
    });

    test('contacts are found by match key, and a match key belongs to one contact only', async () => {
      const jane = contact('contact-jane', 'Jane.Doe@Example.ORG');
      await insertContact(db, jane);
      assert.deepEqual(await findContactByMatchKey(db, 'jane.doe@example.org'), {
        id: 'contact-jane', address: 'Jane.Doe@example.org', match_key: 'jane.doe@example.org', provider_key: null, locale: 'en', created_at: CREATED, erased_at: null,
      });
      assert.equal(await findContactByMatchKey(db, 'jane.doe2@example.org'), undefined);
      const duplicate = insertContact(db, contact('contact-jane-2', 'JANE.DOE@example.org'));
      await assert.rejects(duplicate, target.name === 'sqlite' ? /UNIQUE constraint failed: contacts\.match_key/ : /duplicate key value violates unique constraint "contacts_match_key_key"/);
      assert.deepEqual(await db.selectFrom('contacts').select('id').where('match_key', '=', 'jane.doe@example.org').execute(), [{ id: 'contact-jane' }]);
    });

    test('erased contacts (null match key) do not collide, and provider aliases are found together but stay apart', async () => {
      for (const id of ['erased-1', 'erased-2']) {
        await insertContact(db, { id, address: null, match_key: null, provider_key: null, locale: null, created_at: CREATED, erased_at: CREATED });
      }
      await insertContact(db, contact('gmail-tagged', 'J.Doe+news@gmail.com'));
      await insertContact(db, contact('googlemail', 'jdoe@googlemail.com'));
      const found = await findContactsByProviderKey(db, 'jdoe@gmail.com');
      assert.deepEqual(found.map((c) => [c.id, c.match_key]).sort(), [['gmail-tagged', 'j.doe+news@gmail.com'], ['googlemail', 'jdoe@googlemail.com']]);
      assert.equal(await db.selectFrom('contacts').select('id').where('match_key', 'is', null).execute().then((r) => r.length), 2);
    });

    test('a contact key is wrapped by the master key, bound to its contact, and survives master key rotation', async () => {
      await insertContact(db, contact('contact-keyed', 'keyed@example.org'));
      const created = createContactKey([master1], 'contact-keyed');
      assert.match(created.wrapped, /^1:enc:v1:[A-Za-z0-9_-]+$/);
      await insertContactKey(db, { contact_id: 'contact-keyed', wrapped_key: created.wrapped, created_at: CREATED });
      const wrapped = await findContactKey(db, 'contact-keyed');
      assert.equal(wrapped, created.wrapped);
      assert.deepEqual(unwrapContactKey([master1], 'contact-keyed', wrapped!), created.key);
      assert.deepEqual(unwrapContactKey([master2, master1], 'contact-keyed', wrapped!), created.key);
      assert.throws(() => unwrapContactKey([master2], 'contact-keyed', wrapped!), /^Error: master key version 1 is not configured$/);
      assert.throws(() => unwrapContactKey([master1], 'contact-jane', wrapped!), /Unsupported state or unable to authenticate data/);
      const sealed = sealPersonal(created.key, { address: 'keyed@example.org', ip: '203.0.113.7', user_agent: 'Mail/1.0' });
      assert.deepEqual(openPersonal(created.key, sealed), { address: 'keyed@example.org', ip: '203.0.113.7', user_agent: 'Mail/1.0' });
      assert.equal(openPersonal(createContactKey([master1], 'contact-keyed').key, sealed), null);
    });

    test('GDPR-17 crypto-shredding: once the key row is deleted the sealed evidence cannot be opened and the chain still verifies', async () => {
      await insertContact(db, contact('contact-shred', 'shred@example.org'));
      const created = createContactKey([master1], 'contact-shred');
      await insertContactKey(db, { contact_id: 'contact-shred', wrapped_key: created.wrapped, created_at: CREATED });
      const personal = sealPersonal(created.key, { address: 'shred@example.org', ip: '198.51.100.4' });
      await withLedger(db, (_trx, ledger) =>
        ledger.append([{ id: 'evt-shred', contactId: 'contact-shred', topicId: 'topic-news', type: 'requested', occurredAt: new Date(CREATED), evidence: { method: 'web_form', actor: 'subject', personal } }]),
      );
      await db.deleteFrom('contact_keys').where('contact_id', '=', 'contact-shred').execute();
      assert.equal(await findContactKey(db, 'contact-shred'), undefined);
      const [event] = await db.selectFrom('consent_events').select('evidence').where('id', '=', 'evt-shred').execute();
      assert.equal(event?.evidence, `{"actor":"subject","method":"web_form","personal":"${personal}"}`);
      assert.equal(event?.evidence.includes('shred@example.org'), false);
      assert.equal(openPersonal(null, personal), null);
      assert.deepEqual(await verifyLedger(db).then((r) => [r.ok, r.events]), [true, 1]);
    });

    test('SUP-04: a Gmail alias suppression (j.doe+news@gmail.com) also protects jdoe@gmail.com and googlemail, and no plain address is stored', async () => {
      assert.deepEqual(writeHashes([supp1], 'j.doe+news@gmail.com'), [
        { key_hash: hmac(supp1.key, 'j.doe+news@gmail.com'), key_version: 1 },
        { key_hash: hmac(supp1.key, 'jdoe@gmail.com'), key_version: 1 },
      ]);
      await suppress(db, { keys: [supp1], address: 'j.doe+news@gmail.com', scope: 'all', reason: 'unsubscribed' });
      const all = [{ scope: 'all', reason: 'unsubscribed' }];
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'jdoe@gmail.com', topics: ['topic-news'] }), all);
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'J.Doe@GoogleMail.com', topics: [] }), all);
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'j.doe+news@gmail.com', topics: [] }), [...all, ...all]);
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'jdoe2@gmail.com', topics: [] }), []);
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'jdoe@example.org', topics: [] }), []);
      const stored = await db.selectFrom('suppressions').select(['key_hash', 'key_version']).orderBy('key_hash').execute();
      assert.deepEqual(stored, writeHashes([supp1], 'j.doe+news@gmail.com').sort((a, b) => a.key_hash.localeCompare(b.key_hash)));
    });

    test('SUP-04: after suppression key rotation an entry written under v1 still matches when the keys are [v2, v1]', async () => {
      await suppress(db, { keys: [supp1], address: 'rotated@example.org', scope: 'all', reason: 'objected' });
      assert.deepEqual(await suppressionsFor(db, { keys: [supp2, supp1], address: 'rotated@example.org', topics: [] }), [{ scope: 'all', reason: 'objected' }]);
      assert.deepEqual(await suppressionsFor(db, { keys: [supp2], address: 'rotated@example.org', topics: [] }), []);
      assert.deepEqual(writeHashes([supp2, supp1], 'rotated@example.org'), [{ key_hash: hmac(supp2.key, 'rotated@example.org'), key_version: 2 }]);
      assert.throws(() => writeHashes([], 'rotated@example.org'), /^Error: no suppression key configured$/);
    });

    test('GDPR-21: a topic-scoped suppression matches only that topic; "all" matches every topic; the first entry is kept', async () => {
      await suppress(db, { keys: [supp1], address: 'ann@example.org', scope: 'topic-news', reason: 'unsubscribed' });
      await suppress(db, { keys: [supp1], address: 'ann@example.org', scope: 'topic-news', reason: 'objected' });
      const news = [{ scope: 'topic-news', reason: 'unsubscribed' }];
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'ann@example.org', topics: ['topic-news'] }), news);
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'ann@example.org', topics: ['topic-offers', 'topic-news'] }), news);
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'ann@example.org', topics: ['topic-offers'] }), []);
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'ann@example.org', topics: [] }), []);
      await suppress(db, { keys: [supp1], address: 'ann@example.org', scope: 'all', reason: 'objected' });
      assert.deepEqual(await suppressionsFor(db, { keys: [supp1], address: 'ann@example.org', topics: ['topic-offers'] }), [{ scope: 'all', reason: 'objected' }]);
      assert.deepEqual(await findSuppressions(db, [], ['topic-news']), []);
    });

    test('SUP-04: a reason the person can lift (unsubscribe, objection) gives way to one they cannot (complaint, bounce, erasure); never the other way', async () => {
      const reasonOf = async (address: string) => (await suppressionsFor(db, { keys: [supp1], address, topics: [] })).map((r) => r.reason);
      await suppress(db, { keys: [supp1], address: 'later.complaint@example.org', scope: 'all', reason: 'unsubscribed' });
      await suppress(db, { keys: [supp1], address: 'later.complaint@example.org', scope: 'all', reason: 'complained' });
      assert.deepEqual(await reasonOf('later.complaint@example.org'), ['complained']);
      await suppress(db, { keys: [supp1], address: 'later.complaint@example.org', scope: 'all', reason: 'unsubscribed' });
      assert.deepEqual(await reasonOf('later.complaint@example.org'), ['complained'], 'a later unsubscribe never softens it');
      await suppress(db, { keys: [supp1], address: 'bounced.first@example.org', scope: 'all', reason: 'bounced' });
      await suppress(db, { keys: [supp1], address: 'bounced.first@example.org', scope: 'all', reason: 'complained' });
      assert.deepEqual(await reasonOf('bounced.first@example.org'), ['bounced'], 'between reasons nobody can lift, the first stays');
    });
  });
}

describe('decideSend (the one gate, pure)', () => {
  const states = [null, 'requested', 'confirmed', 'withdrawn', 'imported', 'lapsed'] as const;
  const expected: Record<SendPurpose, string[]> = {
    //              none          requested          confirmed          withdrawn          imported          lapsed
    confirmation: ['no_consent', 'allowed', 'state_confirmed', 'state_withdrawn', 'state_imported', 'state_lapsed'],
    receipt: ['no_consent', 'state_requested', 'allowed', 'state_withdrawn', 'state_imported', 'state_lapsed'],
    campaign: ['no_consent', 'state_requested', 'allowed', 'state_withdrawn', 'state_imported', 'state_lapsed'],
    repermission: ['no_consent', 'state_requested', 'state_confirmed', 'state_withdrawn', 'allowed', 'state_lapsed'],
    self_service: ['allowed', 'allowed', 'allowed', 'allowed', 'allowed', 'allowed'],
  };
  for (const [purpose, outcomes] of Object.entries(expected) as [SendPurpose, string[]][]) {
    test(`${purpose}: each topic state gives its exact decision; erased and suppressed always refuse`, () => {
      const decisions = states.map((topicState) => decideSend({ purpose, topicState, suppressed: false, erased: false }));
      assert.deepEqual(decisions, outcomes.map((o) => (o === 'allowed' ? { allowed: true } : { allowed: false, reason: o })));
      for (const topicState of states) {
        assert.deepEqual(decideSend({ purpose, topicState, suppressed: true, erased: false }), { allowed: false, reason: 'suppressed' });
        assert.deepEqual(decideSend({ purpose, topicState, suppressed: true, erased: true }), { allowed: false, reason: 'erased' });
        assert.deepEqual(decideSend({ purpose, topicState, suppressed: false, erased: true }), { allowed: false, reason: 'erased' });
      }
    });
  }
});
