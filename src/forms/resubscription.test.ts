import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planResubscription, planSuppressionLift, type SuppressionRow } from './resubscription.js';

const T = (minute: number) => `2026-03-01T10:${String(minute).padStart(2, '0')}:00.000Z`;
const row = (over: Partial<SuppressionRow>): SuppressionRow => ({ key_hash: 'own', key_version: 1, scope: 'all', reason: 'objected', created_at: T(0), event_seq: 5, ...over });
const centre = [{ method: 'preference_centre', occurredAt: T(10) }];
const own = { ownHashes: new Set(['own']), ownEventSeqs: new Set([5]) };

describe('lifting a suppression (GDPR-21: only the person\'s own, confirmed, later choice)', () => {
  test('the person\'s own earlier objection or unsubscription, on their address or an alias they wrote, is lifted', () => {
    const rows = [row({}), row({ key_hash: 'alias-of-own', event_seq: 5 }), row({ scope: 'topic-1', reason: 'unsubscribed', event_seq: 7 })];
    assert.deepEqual(planSuppressionLift({ rows, requested: centre, ...own }), { ok: true, lift: rows });
    assert.deepEqual(planSuppressionLift({ rows: [], requested: [{ method: 'web_form', occurredAt: T(1) }], ...own }), { ok: true, lift: [] });
  });

  test('nothing is lifted when any row is not theirs to lift', () => {
    const refusals: [string, SuppressionRow[], { method: string; occurredAt: string }[]][] = [
      ['a complaint', [row({}), row({ reason: 'complained' })], centre],
      ['a bounce', [row({ reason: 'bounced' })], centre],
      ['an erasure', [row({ reason: 'erased' })], centre],
      ['a restriction', [row({ reason: 'restricted' })], centre],
      ['an objection after the request', [row({ created_at: T(11) })], centre],
      ['an alias entry written by someone else in the same mailbox', [row({ key_hash: 'alias', event_seq: 99 })], centre],
      ['an alias entry of unknown origin', [row({ key_hash: 'alias', event_seq: null })], centre],
      ['a request from a sign-up form', [row({})], [{ method: 'web_form', occurredAt: T(10) }]],
      ['one of several requests from a form', [row({})], [...centre, { method: 'web_form', occurredAt: T(10) }]],
    ];
    for (const [name, rows, requested] of refusals) {
      assert.deepEqual(planSuppressionLift({ rows, requested, ...own }), { ok: false }, name);
    }
  });

  test('a centre request: blocked by a suppression the person cannot undo, never re-sent for a confirmed or pending topic, throttled', () => {
    const base = { requestedTopicIds: ['a', 'b', 'c'], states: new Map([['a', 'confirmed'], ['b', 'withdrawn']]), pending: new Set(['c']), suppressionReasons: [], confirmationsToday: 0, confirmationsPerDay: 3 };
    assert.deepEqual(planResubscription(base), { send: true, topicIds: ['b'] });
    assert.deepEqual(planResubscription({ ...base, suppressionReasons: ['objected', 'unsubscribed'] }), { send: true, topicIds: ['b'] });
    assert.deepEqual(planResubscription({ ...base, suppressionReasons: ['objected', 'complained'] }), { send: false, reason: 'blocked' });
    assert.deepEqual(planResubscription({ ...base, requestedTopicIds: ['a', 'c'] }), { send: false, reason: 'nothing_new' });
    assert.deepEqual(planResubscription({ ...base, confirmationsToday: 3 }), { send: false, reason: 'throttled' });
  });
});
