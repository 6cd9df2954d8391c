import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import { canonicalJson, sha256Hex } from '../shared/crypto.js';
import { findContactById, insertContact } from '../contacts/index.js';
import type { ConsentEventRow, Db } from '../storage/index.js';
import { chainEvent, eventHashInput, GENESIS_HASH, type EventDraft } from './ledger.js';
import { verifyLedger, withLedger } from './ledger.service.js';

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);
const SHA = 'ab'.repeat(32);

/** Five events for two contacts on two topics; event 3 is the middle row tampered with below. */
const drafts: EventDraft[] = [
  { id: 'evt-1', contactId: 'contact-1', topicId: 'topic-news', type: 'requested', occurredAt: at(0), evidence: { method: 'web_form', actor: 'subject', form_id: 'form-1', form_version: 1, consent_text_version: 1, consent_text_sha256: SHA } },
  { id: 'evt-2', contactId: 'contact-2', topicId: 'topic-news', type: 'requested', occurredAt: at(1), evidence: { method: 'web_form', actor: 'subject', form_id: 'form-1', form_version: 1 } },
  { id: 'evt-3', contactId: 'contact-1', topicId: 'topic-news', type: 'confirmed', occurredAt: at(2), evidence: { method: 'double_opt_in', actor: 'subject', token_id: 'tok-1', message_id: '<m1@assent.example.org>' } },
  { id: 'evt-4', contactId: 'contact-1', topicId: 'topic-offers', type: 'requested', occurredAt: at(3), evidence: { method: 'web_form', actor: 'subject', form_id: 'form-2', form_version: 3 } },
  { id: 'evt-5', contactId: 'contact-2', topicId: null, type: 'objected', occurredAt: at(4), evidence: { method: 'preference_centre', actor: 'subject' } },
];

function draft(id: string, minutes: number): EventDraft {
  return { id, contactId: `contact-${id}`, topicId: 'topic-news', type: 'requested', occurredAt: at(minutes), evidence: { method: 'web_form', actor: 'subject' } };
}

/** Appends the five drafts in four transactions, so the head carries across commits. */
async function buildChain(db: Db): Promise<void> {
  await withLedger(db, (_trx, ledger) => ledger.append(drafts.slice(0, 2)));
  for (const d of drafts.slice(2)) await withLedger(db, (_trx, ledger) => ledger.append([d]));
}

const readRows = (db: Db) => db.selectFrom('consent_events').selectAll().orderBy('seq').execute();
const readStates = (db: Db) => db.selectFrom('consent_states').selectAll().orderBy('contact_id').orderBy('topic_id').execute();
const readHead = (db: Db) => db.selectFrom('ledger_head').selectAll().execute();

/** Changes the character in the middle of a value: exactly one byte of ASCII text. */
function flipOneByte(value: string): string {
  const i = Math.floor(value.length / 2);
  const c = value[i]!;
  const next = c === '9' ? '0' : /[0-8]/.test(c) ? String(Number(c) + 1) : c === 'z' ? 'a' : /[a-y]/.test(c) ? String.fromCharCode(c.charCodeAt(0) + 1) : 'x';
  const changed = value.slice(0, i) + next + value.slice(i + 1);
  const [a, b] = [Buffer.from(value), Buffer.from(changed)];
  assert.equal(a.length, b.length);
  assert.equal([...a].filter((byte, k) => byte !== b[k]).length, 1, 'exactly one byte differs');
  return changed;
}

async function setColumn(db: Db, seq: number, column: string, value: string): Promise<void> {
  await sql`update consent_events set ${sql.ref(column)} = ${value} where seq = ${seq}`.execute(db);
}

async function assertIntact(db: Db, hash: string): Promise<void> {
  assert.deepEqual(await verifyLedger(db), { ok: true, events: 5, head: { seq: 5, hash } });
}

/** Runs `node bin/assent.mjs …` with only the environment given here. */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/assent.mjs', ...args], { cwd: process.cwd(), env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

for (const target of await databaseTargets()) {
  describe(target.name, { skip: target.skip }, () => {
    let database: TestDatabase;
    let db: Db;
    let rows: ConsentEventRow[];
    let head: string;
    before(async () => {
      database = await target.open();
      db = database.storage.db;
      await buildChain(db);
      rows = await readRows(db);
      head = rows[4]!.hash;
    });
    after(() => database.cleanup());

    test('GDPR-04: an intact chain verifies with its exact count and head, page by page', async () => {
      assert.deepEqual(rows.map((r) => [r.seq, r.id, r.prev_hash]), [
        [1, 'evt-1', GENESIS_HASH], [2, 'evt-2', rows[0]!.hash], [3, 'evt-3', rows[1]!.hash], [4, 'evt-4', rows[2]!.hash], [5, 'evt-5', rows[3]!.hash],
      ]);
      assert.deepEqual(await readHead(db), [{ id: 1, seq: 5, hash: head }]);
      await assertIntact(db, head);
      for (const pageSize of [1, 2, 5]) {
        assert.deepEqual(await verifyLedger(db, { pageSize }), { ok: true, events: 5, head: { seq: 5, hash: head } });
      }
    });

    test('EDPB-02: an event hash is SHA-256 over the canonical encoding of every other column', () => {
      const evidence = `{"actor":"subject","consent_text_sha256":"${SHA}","consent_text_version":1,"form_id":"form-1","form_version":1,"method":"web_form"}`;
      const input = `{"contact_id":"contact-1","evidence":${JSON.stringify(evidence)},"id":"evt-1","occurred_at":"2026-03-01T10:00:00.000Z","prev_hash":"${GENESIS_HASH}","seq":1,"topic_id":"topic-news","type":"requested","v":1}`;
      assert.deepEqual(rows[0], {
        seq: 1, id: 'evt-1', contact_id: 'contact-1', topic_id: 'topic-news', type: 'requested',
        occurred_at: '2026-03-01T10:00:00.000Z', evidence, prev_hash: GENESIS_HASH, hash: sha256Hex(input),
      });
    });

    test('the projection holds the latest topic event per contact and topic', async () => {
      assert.deepEqual(await readStates(db), [
        { contact_id: 'contact-1', topic_id: 'topic-news', state: 'confirmed', since: '2026-03-01T10:02:00.000Z', event_seq: 3 },
        { contact_id: 'contact-1', topic_id: 'topic-offers', state: 'requested', since: '2026-03-01T10:03:00.000Z', event_seq: 4 },
        { contact_id: 'contact-2', topic_id: 'topic-news', state: 'requested', since: '2026-03-01T10:01:00.000Z', event_seq: 2 },
      ]);
    });

    test('appendEncoded (batch writers) stores the same chain and projection as append; the hash the writer computes is the one verification recomputes', async () => {
      const other = await target.open();
      try {
        const encoded = drafts.map((d) => ({ ...d, occurredAt: d.occurredAt.toISOString(), evidence: canonicalJson(d.evidence) }));
        await withLedger(other.storage.db, (_trx, ledger) => ledger.appendEncoded(encoded));
        assert.deepEqual(await readRows(other.storage.db), rows);
        assert.deepEqual(await readStates(other.storage.db), await readStates(db));
        assert.deepEqual(await readHead(other.storage.db), [{ id: 1, seq: 5, hash: head }]);
        // The write path's hash input (written out for speed) and verification's (canonicalJson) agree, on awkward values too.
        const awkward: EventDraft[] = [
          { id: 'e"1\\', contactId: 'c\u2028ü', topicId: null, type: 'objected', occurredAt: new Date(0), evidence: { method: 'x', actor: 'a', note: 'quote " backslash \\ tab\t 😀', nested: { b: [1, null, 'z'], a: true } } },
          ...drafts,
        ];
        let prev = { seq: 41, hash: 'f'.repeat(64) };
        for (const draft of awkward) {
          const row = chainEvent(draft, prev);
          const { hash, ...unhashed } = row;
          assert.equal(hash, sha256Hex(eventHashInput(unhashed)), draft.id);
          prev = { seq: row.seq, hash };
        }
      } finally {
        await other.cleanup();
      }
    });

    for (const column of ['id', 'contact_id', 'topic_id', 'type', 'occurred_at', 'evidence', 'prev_hash', 'hash'] as const) {
      test(`GDPR-04: changing one byte of ${column} in event 3 makes verify fail naming event 3`, async () => {
        const original = rows[2]![column]!;
        const changed = flipOneByte(original);
        await setColumn(db, 3, column, changed);
        try {
          const id = column === 'id' ? changed : 'evt-3';
          const fault = { kind: 'changed', seq: 3, id, detail: `event 3 (${id}) does not match its hash` };
          assert.deepEqual(await verifyLedger(db), { ok: false, events: 2, head: { seq: 5, hash: head }, fault });
          assert.deepEqual((await verifyLedger(db, { pageSize: 2 })).fault, fault);
        } finally {
          await setColumn(db, 3, column, original);
        }
        await assertIntact(db, head);
      });
    }

    test('GDPR-04: renumbering event 3 is reported as event 3 missing', async () => {
      await sql`update consent_events set seq = 7 where id = 'evt-3'`.execute(db);
      try {
        const report = await verifyLedger(db);
        assert.deepEqual(report.fault, { kind: 'missing', seq: 3, detail: 'event 3 is missing (deleted?)' });
        assert.equal(report.events, 2);
      } finally {
        await sql`update consent_events set seq = 3 where id = 'evt-3'`.execute(db);
      }
      await assertIntact(db, head);
    });

    test('GDPR-04: changing the stored head is detected at the last event', async () => {
      await db.updateTable('ledger_head').set({ hash: flipOneByte(head) }).where('id', '=', 1).execute();
      try {
        const report = await verifyLedger(db);
        assert.deepEqual(report.fault, { kind: 'changed', seq: 5, id: '', detail: 'event 5 does not match the ledger head' });
      } finally {
        await db.updateTable('ledger_head').set({ hash: head }).where('id', '=', 1).execute();
      }
      await assertIntact(db, head);
    });

    for (const [seq, fault, events] of [
      [1, { kind: 'missing', seq: 1, detail: 'event 1 is missing (deleted?)' }, 0],
      [3, { kind: 'missing', seq: 3, detail: 'event 3 is missing (deleted?)' }, 2],
      [5, { kind: 'missing', seq: 5, detail: 'events 5..5 are missing (deleted?)' }, 4],
    ] as const) {
      test(`GDPR-04: deleting event ${seq} is detected, naming event ${seq}`, async () => {
        await db.deleteFrom('consent_events').where('seq', '=', seq).execute();
        try {
          assert.deepEqual(await verifyLedger(db), { ok: false, events, head: { seq: 5, hash: head }, fault });
        } finally {
          await db.insertInto('consent_events').values(rows[seq - 1]!).execute();
        }
        await assertIntact(db, head);
      });
    }

    test('GDPR-04: a self-consistent row appended behind the ledger is detected via the head as event 6', async () => {
      const forged = chainEvent(draft('forged', 9), { seq: 5, hash: head });
      await db.insertInto('consent_events').values(forged).execute();
      try {
        const fault = { kind: 'inserted', seq: 6, id: '', detail: 'event 6 was added outside the ledger (head is 5)' };
        assert.deepEqual(await verifyLedger(db), { ok: false, events: 6, head: { seq: 5, hash: head }, fault });
      } finally {
        await db.deleteFrom('consent_events').where('id', '=', 'forged').execute();
      }
      await assertIntact(db, head);
    });

    test('GDPR-04: a self-consistent row stored before the chain (seq 0) is detected', async () => {
      const forged = chainEvent(draft('forged', -5), { seq: -1, hash: GENESIS_HASH });
      await db.insertInto('consent_events').values(forged).execute();
      try {
        const fault = { kind: 'inserted', seq: 0, id: 'forged', detail: 'event 0 is out of sequence after 0' };
        assert.deepEqual(await verifyLedger(db), { ok: false, events: 0, head: { seq: 5, hash: head }, fault });
      } finally {
        await db.deleteFrom('consent_events').where('id', '=', 'forged').execute();
      }
      await assertIntact(db, head);
    });

    test('GDPR-04: a row between events 2 and 3 (seq 2.5) is detected on SQLite and refused by PostgreSQL', async () => {
      const forged = { ...chainEvent(draft('forged', 1), { seq: 2, hash: rows[1]!.hash }), seq: 2.5 };
      if (target.name === 'postgres') {
        await assert.rejects(db.insertInto('consent_events').values(forged).execute(), /invalid input syntax for type bigint: "2.5"/);
        return assertIntact(db, head);
      }
      await db.insertInto('consent_events').values(forged).execute();
      try {
        const fault = { kind: 'inserted', seq: 2.5, id: 'forged', detail: 'event 2.5 is out of sequence after 2' };
        assert.deepEqual(await verifyLedger(db), { ok: false, events: 2, head: { seq: 5, hash: head }, fault });
      } finally {
        await db.deleteFrom('consent_events').where('id', '=', 'forged').execute();
      }
      await assertIntact(db, head);
    });

    test('GDPR-04: a row without a seq is detected on SQLite and refused by PostgreSQL', async () => {
      const f = chainEvent(draft('forged', 1), { seq: 0, hash: GENESIS_HASH });
      const insert = sql`insert into consent_events (seq, id, contact_id, topic_id, type, occurred_at, evidence, prev_hash, hash)
        values (null, ${f.id}, ${f.contact_id}, ${f.topic_id}, ${f.type}, ${f.occurred_at}, ${f.evidence}, ${f.prev_hash}, ${f.hash})`;
      if (target.name === 'postgres') {
        await assert.rejects(insert.execute(db), /null value in column "seq"/);
        return assertIntact(db, head);
      }
      await insert.execute(db);
      try {
        const fault = { kind: 'inserted', seq: 0, id: 'forged', detail: 'event null is out of sequence after 0' };
        assert.deepEqual(await verifyLedger(db), { ok: false, events: 0, head: { seq: 5, hash: head }, fault });
      } finally {
        await db.deleteFrom('consent_events').where('id', '=', 'forged').execute();
      }
      await assertIntact(db, head);
    });

    test('the events, the projection, the head and other writes roll back together when the work throws', async () => {
      const before = { rows: await readRows(db), states: await readStates(db), head: await readHead(db) };
      await assert.rejects(
        withLedger(db, async (trx, ledger) => {
          await insertContact(trx, { id: 'contact-9', address: 'nine@example.org', match_key: 'nine@example.org', provider_key: null, locale: 'en', created_at: at(9).toISOString(), erased_at: null });
          const [row] = await ledger.append([{ ...draft('e9', 9), contactId: 'contact-9' }]);
          assert.equal(row?.seq, 6);
          const projected = await trx.selectFrom('consent_states').select('event_seq').where('contact_id', '=', 'contact-9').execute();
          assert.deepEqual(projected, [{ event_seq: 6 }]);
          throw new Error('work failed after append');
        }),
        /^Error: work failed after append$/,
      );
      assert.deepEqual({ rows: await readRows(db), states: await readStates(db), head: await readHead(db) }, before);
      assert.equal(await findContactById(db, 'contact-9'), undefined);
      await assertIntact(db, head);
    });

    test('ledger verify (CLI) exits 0 when intact and 1 naming the event after tampering', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'assent-cli-'));
      const env = { ASSENT_DATA_DIR: dataDir, ASSENT_DATABASE_URL: database.url };
      try {
        assert.deepEqual(await runCli(['ledger', 'verify'], env), { code: 0, stdout: `ledger intact: 5 events, head 5 ${head}\n`, stderr: '' });
        await setColumn(db, 3, 'type', 'withdrawn');
        assert.deepEqual(await runCli(['ledger', 'verify'], env), {
          code: 1,
          stdout: '',
          stderr: 'ledger broken at event 3: event 3 (evt-3) does not match its hash (2 events verified before it)\n',
        });
      } finally {
        await setColumn(db, 3, 'type', 'confirmed');
        rmSync(dataDir, { recursive: true, force: true });
      }
      await assertIntact(db, head);
    });

    test('GDPR-04: verify reads one snapshot, so an append committing meanwhile is not reported as tampering', async () => {
      const fresh = await target.open();
      try {
        await buildChain(fresh.storage.db);
        const [report] = await Promise.all([
          verifyLedger(fresh.storage.db, { pageSize: 1 }),
          withLedger(fresh.storage.db, (_trx, ledger) => ledger.append([draft('evt-6', 5)])),
        ]);
        assert.equal(report.ok, true, JSON.stringify(report.fault));
        assert.equal(report.events, report.head.seq);
        const [stored] = await readHead(fresh.storage.db);
        assert.deepEqual(await verifyLedger(fresh.storage.db), { ok: true, events: 6, head: { seq: 6, hash: stored!.hash } });
      } finally {
        await fresh.cleanup();
      }
    });

    test('20 concurrent appends serialise on the head and keep one valid chain 1..20', async () => {
      const fresh = await target.open();
      try {
        const ids = Array.from({ length: 20 }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
        const appended = await Promise.all(ids.map((id, i) => withLedger(fresh.storage.db, (_trx, ledger) => ledger.append([draft(id, i)]))));
        assert.deepEqual(appended.map(([r]) => r!.seq).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
        const stored = await readRows(fresh.storage.db);
        assert.deepEqual(stored.map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1));
        assert.deepEqual(stored.map((r) => r.id).sort(), ids);
        const report = await verifyLedger(fresh.storage.db);
        assert.deepEqual(report, { ok: true, events: 20, head: { seq: 20, hash: stored[19]!.hash } });
        assert.equal((await readStates(fresh.storage.db)).length, 20);
      } finally {
        await fresh.cleanup();
      }
    });
  });
}
