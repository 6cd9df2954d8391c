/**
 * De-duplication (issue 5 point 3): the merge rule, the report of merges
 * that changed a state and of probable duplicates, and the operator merge,
 * through the service and the CLI, on every database.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestRuntime, type TestRuntime } from '../../test/support/runtime.js';
import { databaseTargets } from '../../test/support/databases.js';
import { runCli } from '../cli/main.js';
import { verifyLedger, withLedger, type TopicEventType } from '../consent/index.js';
import { insertContact, parseAddress } from '../contacts/index.js';
import { isAppError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import { addTopic, defaultConsentText } from '../topics/index.js';
import { createCampaign, startCampaign } from './campaign.service.js';
import { changesOf, csvLine, mergeRefusal, mergeTopicStates, precedence, winningState } from './dedupe.js';
import { mergeProbableDuplicates, probableDuplicates, stateChangingMerges } from './dedupe.service.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const T1 = new Date('2026-03-02T12:00:00.000Z');

describe('merge rule (pure)', () => {
  test('GDPR-21, Art. 7(3): of two states the records hold, the most restrictive wins, an opt-out over everything: never the higher one', () => {
    // Rows: the kept record's state; columns: the other's. Every pair, both ways round.
    const states = ['withdrawn', 'lapsed', 'imported', 'requested', 'confirmed'];
    const expected: Record<string, string[]> = {
      withdrawn: ['withdrawn', 'withdrawn', 'withdrawn', 'withdrawn', 'withdrawn'],
      lapsed: ['withdrawn', 'lapsed', 'lapsed', 'lapsed', 'lapsed'],
      imported: ['withdrawn', 'lapsed', 'imported', 'imported', 'imported'],
      requested: ['withdrawn', 'lapsed', 'imported', 'requested', 'requested'],
      confirmed: ['withdrawn', 'lapsed', 'imported', 'requested', 'confirmed'],
    };
    for (const a of states) assert.deepEqual(states.map((b) => winningState(a, b)), expected[a], a);
    assert.deepEqual(precedence, states);
    assert.equal(winningState('confirmed', 'mystery'), 'mystery', 'an unknown state errs towards not sending');
  });

  test('every topic of either record: a topic only one record holds keeps that state, its own double opt-in included (no record is not an opt-out)', () => {
    const kept = new Map([['a', 'confirmed'], ['b', 'imported'], ['c', 'lapsed']]);
    const other = new Map([['a', 'withdrawn'], ['b', 'confirmed'], ['d', 'requested'], ['e', 'confirmed']]);
    assert.deepEqual(mergeTopicStates(kept, other), [
      { topicId: 'a', before: 'confirmed', other: 'withdrawn', after: 'withdrawn' },
      { topicId: 'b', before: 'imported', other: 'confirmed', after: 'imported' },
      { topicId: 'c', before: 'lapsed', other: null, after: 'lapsed' },
      { topicId: 'd', before: null, other: 'requested', after: 'requested' },
      // The person confirmed through the other address of the same mailbox; the
      // kept record carries that confirmation, its evidence the original event (source_event).
      { topicId: 'e', before: null, other: 'confirmed', after: 'confirmed' },
    ]);
  });

  test('ADR-07: only live, unmerged contacts sharing a provider key may be merged', () => {
    const c = (id: string, provider: string | null, extra = {}) => ({ id, match_key: `${id}@x`, provider_key: provider, erased_at: null, merged: false, ...extra });
    assert.equal(mergeRefusal(c('a', 'p'), c('b', 'p')), null);
    assert.equal(mergeRefusal(c('a', 'p'), undefined), 'no such contact');
    assert.equal(mergeRefusal(c('a', 'p'), c('a', 'p')), 'a contact cannot be merged with itself');
    assert.match(mergeRefusal(c('a', 'p'), c('b', 'q'))!, /not probable duplicates/);
    assert.match(mergeRefusal(c('a', null), c('b', null))!, /not probable duplicates/);
    assert.match(mergeRefusal(c('a', 'p'), c('b', 'p', { erased_at: T0.toISOString() }))!, /erased/);
    assert.match(mergeRefusal(c('a', 'p', { merged: true }), c('b', 'p'))!, /already merged/);
  });

  test('the report reads both merge shapes and keeps only changes', () => {
    const event = (topic_id: string | null, evidence: object) => ({ seq: 7, contact_id: 'k', topic_id, occurred_at: T0.toISOString(), evidence: JSON.stringify(evidence) });
    const operator = event(null, { method: 'operator_merge', other_contact_id: 'o', topics: [{ topic_id: 't1', before: 'confirmed', after: 'withdrawn' }, { topic_id: 't2', before: 'imported', after: 'imported' }] });
    assert.deepEqual(changesOf(operator), [{ contact_id: 'k', other_contact_id: 'o', topic_id: 't1', before: 'confirmed', after: 'withdrawn', at: T0.toISOString(), source: 'operator_merge', event_seq: 7 }]);
    const imported = event('t3', { method: 'import_merge', source_file: 'legacy.csv', from: null, to: 'suppressed' });
    assert.deepEqual(changesOf(imported), [{ contact_id: 'k', other_contact_id: null, topic_id: 't3', before: null, after: 'suppressed', at: T0.toISOString(), source: 'import_merge:legacy.csv', event_seq: 7 }]);
    const asImportWritesIt = event('t3', { method: 'import:legacy.csv', source_file: 'legacy.csv', from: null, to: 'suppressed' });
    assert.equal(changesOf(asImportWritesIt)[0]?.source, 'import:legacy.csv', 'the file is named once');
    assert.deepEqual(changesOf({ ...imported, evidence: 'not json' }), []);
  });

  test('CSV: RFC 4180 quoting, and cells a spreadsheet would run as formulas are defused', () => {
    assert.equal(csvLine(['a', 'b,c', 'say "hi"', null, 3]), 'a,"b,c","say ""hi""",,3');
    assert.equal(csvLine(['=HYPERLINK("x")', '+1', '-2', '@SUM(A1)']), `"'=HYPERLINK(""x"")",'+1,'-2,'@SUM(A1)`);
  });
});

for (const target of await databaseTargets()) {
  describe(`dedupe report and operator merge (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    const topics = {} as Record<'newsletter' | 'offers' | 'updates' | 'alerts', string>;
    const ids = {} as Record<'keep' | 'other' | 'ann1' | 'ann2' | 'alice' | 'solo', string>;
    const db = () => rt.runtime.storage.db;
    const deps = () => ({ db: db(), clock: rt.clock, newId });
    const collect = async <T>(items: AsyncIterable<T>) => {
      const out: T[] = [];
      for await (const item of items) out.push(item);
      return out;
    };
    const statesOf = async (contactId: string) =>
      Object.fromEntries(
        (await db().selectFrom('consent_states').innerJoin('topics', 'topics.id', 'consent_states.topic_id').select(['topics.slug', 'consent_states.state']).where('contact_id', '=', contactId).execute()).map((r) => [r.slug, r.state]),
      );
    const cli = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(['node', 'assent', ...args], { out: (l) => out.push(l), err: (l) => err.push(l), env: { ...rt.env, ASSENT_LOG_LEVEL: 'warn' }, cwd: rt.dataDir });
      return { code, out, err };
    };

    before(async () => {
      rt = await startTestRuntime(target, { start: T0 });
      topics.newsletter = (await db().selectFrom('topics').select('id').where('slug', '=', 'newsletter').executeTakeFirstOrThrow()).id;
      for (const slug of ['offers', 'updates', 'alerts'] as const) {
        topics[slug] = (await addTopic(deps(), { slug, name: slug, description: 'd', consentText: defaultConsentText({ controllerName: 'Example Ltd', topicName: slug }), locale: 'en' })).topic.id;
      }
      const people: [keyof typeof ids, string, [keyof typeof topics, TopicEventType[]][]][] = [
        ['keep', 'jdoe@gmail.com', [['newsletter', ['requested', 'confirmed']], ['offers', ['imported']], ['alerts', ['imported', 'lapsed']]]],
        ['other', 'j.doe+news@gmail.com', [['newsletter', ['imported', 'withdrawn']], ['offers', ['requested', 'confirmed']], ['updates', ['requested']], ['alerts', ['imported']]]],
        ['ann1', 'Ann.Lee@googlemail.com', [['newsletter', ['imported']]]],
        ['ann2', 'annlee@gmail.com', []],
        ['alice', 'alice@example.org', [['newsletter', ['imported']]]],
        ['solo', 'solo@gmail.com', [['newsletter', ['imported']]]],
      ];
      await withLedger(db(), async (trx, ledger) => {
        for (const [name, address, history] of people) {
          const parsed = parseAddress(address);
          assert.ok(parsed.ok);
          ids[name] = `c-${name}`;
          await insertContact(trx, { id: ids[name], address: parsed.address, match_key: parsed.matchKey, provider_key: parsed.providerKey, locale: null, created_at: T0.toISOString(), erased_at: null });
          const drafts = history.flatMap(([slug, types]) => types.map((type) => ({ id: newId(), contactId: ids[name], topicId: topics[slug], type, occurredAt: T0, evidence: { method: 'test', actor: 'test' } })));
          await ledger.append(drafts);
        }
        // What the import writes when rows sharing a match key disagree (contacts/import-evidence.ts).
        await ledger.append([{ id: newId(), contactId: ids.alice, topicId: topics.newsletter, type: 'merged', occurredAt: T0, evidence: { method: 'import_merge', actor: 'operator', source_file: 'legacy.csv', rule: 'most_restrictive_wins', from: 'imported', to: 'suppressed' } }]);
      });
    });
    after(async () => {
      await rt?.close();
    });

    test('the report lists merges that changed a state, and probable duplicates (Gmail dots, +tags, googlemail) for review', async () => {
      const merges = await collect(stateChangingMerges(deps()));
      assert.deepEqual(merges.map(({ event_seq: _, ...m }) => m), [
        { contact_id: ids.alice, other_contact_id: null, topic: 'newsletter', before: 'imported', after: 'suppressed', at: T0.toISOString(), source: 'import_merge:legacy.csv' },
      ]);
      const probable = await collect(probableDuplicates(deps()));
      assert.deepEqual(probable, [
        {
          provider_key: 'annlee@gmail.com',
          contacts: [
            { id: ids.ann1, address: 'Ann.Lee@googlemail.com', match_key: 'ann.lee@googlemail.com', created_at: T0.toISOString(), states: { newsletter: 'imported' } },
            { id: ids.ann2, address: 'annlee@gmail.com', match_key: 'annlee@gmail.com', created_at: T0.toISOString(), states: {} },
          ],
        },
        {
          provider_key: 'jdoe@gmail.com',
          contacts: [
            { id: ids.keep, address: 'jdoe@gmail.com', match_key: 'jdoe@gmail.com', created_at: T0.toISOString(), states: { newsletter: 'confirmed', offers: 'imported', alerts: 'lapsed' } },
            { id: ids.other, address: 'j.doe+news@gmail.com', match_key: 'j.doe+news@gmail.com', created_at: T0.toISOString(), states: { newsletter: 'withdrawn', offers: 'confirmed', updates: 'requested', alerts: 'imported' } },
          ],
        },
      ]);
      const json = await cli('dedupe', '--json');
      assert.equal(json.code, 0, json.err.join('\n'));
      assert.deepEqual(JSON.parse(json.out.at(-1)!), { merges, probable_duplicates: probable });
    });

    test('the operator merge: most restrictive rule per topic, all evidence kept, the other closed, the ledger verifies', async () => {
      const otherEventsBefore = await db().selectFrom('consent_events').select(['seq', 'hash']).where('contact_id', '=', ids.other).orderBy('seq').execute();
      rt.clock.set(T1);
      const outcome = await mergeProbableDuplicates(deps(), { keepId: ids.keep, otherId: ids.other });
      assert.deepEqual({ ...outcome, event_seq: 0 }, {
        kept: ids.keep,
        merged: ids.other,
        topics: [
          { topic: 'alerts', before: 'lapsed', other: 'imported', after: 'lapsed' },
          { topic: 'newsletter', before: 'confirmed', other: 'withdrawn', after: 'withdrawn' },
          { topic: 'offers', before: 'imported', other: 'confirmed', after: 'imported' },
          { topic: 'updates', before: null, other: 'requested', after: 'requested' },
        ],
        changed: 2,
        event_seq: 0,
      });
      assert.deepEqual(await statesOf(ids.keep), { alerts: 'lapsed', newsletter: 'withdrawn', offers: 'imported', updates: 'requested' });
      assert.deepEqual(await statesOf(ids.other), {}, 'the other record answers for nothing any more');
      const otherEvents = await db().selectFrom('consent_events').selectAll().where('contact_id', '=', ids.other).orderBy('seq').execute();
      assert.deepEqual(otherEvents.slice(0, -1).map((e) => ({ seq: e.seq, hash: e.hash })), otherEventsBefore, 'every event of the other record stays');
      const closing = JSON.parse(otherEvents.at(-1)!.evidence) as { merged_into: string; moved_states: unknown[] };
      assert.deepEqual([otherEvents.at(-1)!.type, closing.merged_into, closing.moved_states.length], ['merged', ids.keep, 4]);
      const keptEvents = await db().selectFrom('consent_events').selectAll().where('contact_id', '=', ids.keep).where('occurred_at', '=', T1.toISOString()).orderBy('seq').execute();
      assert.equal(keptEvents.length, 3);
      assert.deepEqual(new Set(keptEvents.slice(0, 2).map((e) => `${e.type}:${e.topic_id}`)), new Set([`withdrawn:${topics.newsletter}`, `requested:${topics.updates}`]));
      const carried = JSON.parse(keptEvents[0]!.evidence) as Record<string, unknown>;
      assert.deepEqual([carried.method, carried.actor, carried.other_contact_id], ['operator_merge', 'operator', ids.other]);
      assert.ok(otherEventsBefore.some((e) => e.hash === carried.source_event_hash), 'points at the event it carries over');
      assert.equal(keptEvents[2]!.type, 'merged');
      assert.equal(Number(keptEvents[2]!.seq), outcome.event_seq);
      const row = await db().selectFrom('contact_merges').selectAll().executeTakeFirstOrThrow();
      assert.deepEqual({ ...row, event_seq: Number(row.event_seq) }, { contact_id: ids.other, merged_into: ids.keep, merged_at: T1.toISOString(), event_seq: outcome.event_seq });
      assert.equal((await verifyLedger(db())).ok, true);

      // The other record's confirmation did not raise the kept record: a campaign to that topic reaches neither.
      const campaign = await createCampaign(deps(), { topicSlug: 'offers', templateName: 't', subject: 's', fromAddress: 'news@example.org' });
      await startCampaign(deps(), campaign.id);
      const audience = await db().selectFrom('deliveries').select('contact_id').where('campaign_id', '=', campaign.id).execute();
      assert.deepEqual(audience.map((d) => d.contact_id), []);
    });

    test('after the merge the report shows its changes and drops the pair; a second merge or a non-pair is refused', async () => {
      const merges = await collect(stateChangingMerges(deps()));
      assert.deepEqual(merges.slice(1).map(({ event_seq: _, ...m }) => m), [
        { contact_id: ids.keep, other_contact_id: ids.other, topic: 'newsletter', before: 'confirmed', after: 'withdrawn', at: T1.toISOString(), source: 'operator_merge' },
        { contact_id: ids.keep, other_contact_id: ids.other, topic: 'updates', before: null, after: 'requested', at: T1.toISOString(), source: 'operator_merge' },
      ].sort((a, b) => topics[a.topic as keyof typeof topics].localeCompare(topics[b.topic as keyof typeof topics])));
      const probable = await collect(probableDuplicates(deps()));
      assert.deepEqual(probable.map((p) => p.provider_key), ['annlee@gmail.com']);

      const refused = async (keepId: string, otherId: string, code: string, message: RegExp) =>
        assert.rejects(mergeProbableDuplicates(deps(), { keepId, otherId }), (e: unknown) => isAppError(e) && e.code === code && message.test(e.message));
      await refused(ids.keep, ids.other, 'conflict', /already merged/);
      await refused(ids.alice, ids.ann1, 'conflict', /not probable duplicates/);
      await refused(ids.ann1, 'c-nobody', 'not_found', /no such contact/);

      const csvFile = join(rt.dataDir, 'dedupe.csv');
      const csv = await cli('dedupe', '--csv', csvFile);
      assert.equal(csv.code, 0, csv.err.join('\n'));
      assert.deepEqual(csv.out, [`wrote 3 state change(s) and 1 probable duplicate group(s) to ${csvFile}`]);
      assert.deepEqual(readFileSync(csvFile, 'utf8').split('\r\n'), [
        'kind,contact_id,other_contact_id,topic,before,after,at,source,provider_key,address,states',
        ...merges.map((m) => `merge,${m.contact_id},${m.other_contact_id ?? ''},${m.topic},${m.before ?? ''},${m.after},${m.at},${m.source},,,`),
        `probable_duplicate,${ids.ann1},,,,,${T0.toISOString()},,annlee@gmail.com,Ann.Lee@googlemail.com,newsletter=imported`,
        `probable_duplicate,${ids.ann2},,,,,${T0.toISOString()},,annlee@gmail.com,annlee@gmail.com,`,
        '',
      ]);
    });

    test('CLI: `assent dedupe merge KEEP OTHER` merges an approved pair; a refused pair exits 2 naming why', async () => {
      const merged = await cli('dedupe', 'merge', ids.ann2, ids.ann1);
      assert.equal(merged.code, 0, merged.err.join('\n'));
      assert.match(merged.out[0]!, new RegExp(`^merged ${ids.ann1} into ${ids.ann2} \\(ledger event \\d+\\); 1 topic\\(s\\) changed$`));
      assert.deepEqual(merged.out.slice(1), ['topic       kept  merged    now', 'newsletter  -     imported  imported']);
      assert.deepEqual(await statesOf(ids.ann2), { newsletter: 'imported' });
      const refused = await cli('dedupe', 'merge', ids.alice, ids.solo);
      assert.equal(refused.code, 2);
      assert.match(refused.err.join('\n'), /not probable duplicates/);
      assert.equal((await verifyLedger(db())).ok, true);
      const text = await cli('dedupe');
      assert.equal(text.code, 0);
      assert.deepEqual(text.out.slice(-2), ['', 'Probable duplicates to review: 0 (merge one with: assent dedupe merge KEEP_ID OTHER_ID)']);
    });
  });
}
