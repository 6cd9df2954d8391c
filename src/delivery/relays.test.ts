import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixedClock } from '../shared/clock.js';
import { createMemoryTransport, type MemoryTransport, type ScriptedAnswer } from './memory-transport.js';
import { createRelayTransport, type RelaySpec } from './relays.js';
import type { OutgoingMessage, SendResult, Transport } from './transport.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');

function message(n: number): OutgoingMessage {
  return { envelope: { from: 'bounce@assent.example.org', to: [`c${n}@example.org`] }, messageId: `<m${n}@test>`, raw: Buffer.from(`Subject: ${n}\r\n\r\nhi\r\n`) };
}

/** A memory relay that can be switched off: unreachable, it answers without an SMTP reply, as a refused connection does. */
function relay(script?: (m: OutgoingMessage) => ScriptedAnswer) {
  const memory: MemoryTransport = createMemoryTransport(script ? { script } : {});
  const state = { unreachable: false, tries: 0, closed: false };
  const transport: Transport = {
    kind: 'memory',
    send: async (m): Promise<SendResult> => {
      state.tries += 1;
      if (state.unreachable) return { status: 'transient', messageId: m.messageId, response: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:2525' };
      return memory.send(m);
    },
    close: async () => void (state.closed = true),
  };
  return { memory, state, transport };
}

function pool(specs: RelaySpec[], script?: (m: OutgoingMessage) => ScriptedAnswer) {
  const clock = fixedClock(T0);
  const relays = new Map(specs.map((s) => [s.url, relay(script)]));
  const transport = createRelayTransport({ relays: specs, makeTransport: (s) => relays.get(s.url)!.transport, clock, downMs: 30_000 });
  const counts = () => Object.fromEntries([...relays].map(([url, r]) => [url, r.memory.sent.length]));
  return { clock, relays, transport, counts, r: (url: string) => relays.get(url)! };
}

async function sendAll(transport: Transport, from: number, n: number): Promise<SendResult[]> {
  const results: SendResult[] = [];
  for (let i = from; i < from + n; i++) results.push(await transport.send(message(i)));
  return results;
}

describe('relay transport', () => {
  test('spreads sends by weight, interleaved (smooth weighted round-robin)', async () => {
    const { transport, counts, r } = pool([
      { url: 'smtp://a', connections: 4, weight: 3 },
      { url: 'smtp://b', connections: 4 },
      { url: 'smtp://c', connections: 4, weight: 1 },
    ]);
    const results = await sendAll(transport, 0, 50);
    assert.ok(results.every((x) => x.status === 'sent'));
    assert.deepEqual(counts(), { 'smtp://a': 30, 'smtp://b': 10, 'smtp://c': 10 });
    assert.deepEqual(r('smtp://a').memory.sent.slice(0, 3).map((m) => m.messageId), ['<m0@test>', '<m2@test>', '<m4@test>'], 'not three in a row');
    assert.deepEqual(transport.status().map((s) => [s.url, s.sent, s.inFlight, s.down]), [['smtp://a', 30, 0, false], ['smtp://b', 10, 0, false], ['smtp://c', 10, 0, false]]);
  });

  test('never more sends in flight to a relay than its connections; a busy relay\'s traffic goes to the others', async () => {
    const specs = [{ url: 'smtp://a', connections: 2, weight: 10 }, { url: 'smtp://b', connections: 1 }];
    const pending: (() => void)[] = [];
    const seen: Record<string, number> = { 'smtp://a': 0, 'smtp://b': 0 };
    const peak: Record<string, number> = { 'smtp://a': 0, 'smtp://b': 0 };
    const inFlight: Record<string, number> = { 'smtp://a': 0, 'smtp://b': 0 };
    const transport = createRelayTransport({
      relays: specs,
      clock: fixedClock(T0),
      makeTransport: (s) => ({
        kind: 'memory',
        send: async (m) => {
          inFlight[s.url]! += 1;
          peak[s.url] = Math.max(peak[s.url]!, inFlight[s.url]!);
          await new Promise<void>((resolve) => pending.push(resolve));
          inFlight[s.url]! -= 1;
          seen[s.url]! += 1;
          return { status: 'sent', messageId: m.messageId, response: '250 OK' };
        },
        close: async () => undefined,
      }),
    });
    const all = Promise.all(Array.from({ length: 9 }, (_, i) => transport.send(message(i))));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(transport.status().map((s) => s.inFlight), [2, 1], 'weight 10 does not push a third send onto a');
    for (let turn = 0; turn < 100 && (pending.length > 0 || seen['smtp://a']! + seen['smtp://b']! < 9); turn++) {
      pending.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal((await all).filter((x) => x.status === 'sent').length, 9);
    assert.deepEqual(peak, { 'smtp://a': 2, 'smtp://b': 1 });
    assert.ok(seen['smtp://b']! >= 2, `b took the overflow (${seen['smtp://b']})`);
  });

  test('an unreachable relay is left out and its traffic goes to the others; it comes back after the down time', async () => {
    const { clock, transport, counts, r } = pool([{ url: 'smtp://a', connections: 2 }, { url: 'smtp://b', connections: 2 }]);
    r('smtp://a').state.unreachable = true;
    const results = await sendAll(transport, 0, 6);
    assert.deepEqual(results.map((x) => x.status), Array(6).fill('sent'), 'the message that met the dead relay went through b');
    assert.deepEqual(counts(), { 'smtp://a': 0, 'smtp://b': 6 });
    assert.equal(r('smtp://a').state.tries, 1, 'tried once, then left out');
    assert.deepEqual(transport.status().map((s) => s.down), [true, false]);

    clock.advance(30_000);
    await sendAll(transport, 6, 2);
    assert.equal(r('smtp://a').state.tries, 2, 'tried again after 30 s');
    clock.advance(30_000);
    await sendAll(transport, 8, 4);
    assert.equal(r('smtp://a').state.tries, 2, 'still failing: left out for twice as long');
    clock.advance(30_000);
    r('smtp://a').state.unreachable = false;
    await sendAll(transport, 12, 4);
    assert.deepEqual(counts(), { 'smtp://a': 2, 'smtp://b': 14 });
    assert.deepEqual(transport.status().map((s) => s.down), [false, false]);
    const ids = [...r('smtp://a').memory.sent, ...r('smtp://b').memory.sent].map((m) => m.messageId);
    assert.equal(new Set(ids).size, 16, 'each message accepted once');
  });

  test('every relay unreachable: a transient result without a reply code, so the worker retries later', async () => {
    const { transport, r } = pool([{ url: 'smtp://a', connections: 1 }, { url: 'smtp://b', connections: 1 }]);
    r('smtp://a').state.unreachable = true;
    r('smtp://b').state.unreachable = true;
    const [first, second] = await sendAll(transport, 0, 2);
    assert.deepEqual([first!.status, first!.response], ['transient', 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:2525']);
    assert.deepEqual(second, { status: 'transient', messageId: '<m1@test>', response: 'no relay available: all 2 down' });
    assert.deepEqual([r('smtp://a').state.tries, r('smtp://b').state.tries], [1, 1]);
  });

  test('a relay\'s 4xx and 5xx replies are verdicts on the message: returned as they are, not tried elsewhere', async () => {
    const { transport, counts, r } = pool([{ url: 'smtp://a', connections: 1 }, { url: 'smtp://b', connections: 1 }], (m) =>
      m.messageId === '<m0@test>' ? { status: 'transient', code: 451, response: '451 4.3.0 later' } : { status: 'permanent', code: 550, response: '550 5.1.1 unknown' },
    );
    const [a, b] = await sendAll(transport, 0, 2);
    assert.deepEqual(a, { status: 'transient', messageId: '<m0@test>', code: 451, response: '451 4.3.0 later' });
    assert.deepEqual(b, { status: 'permanent', messageId: '<m1@test>', code: 550, response: '550 5.1.1 unknown' });
    assert.deepEqual(counts(), { 'smtp://a': 0, 'smtp://b': 0 });
    assert.deepEqual([r('smtp://a').state.tries, r('smtp://b').state.tries], [1, 1], 'one try each, no second relay');
    assert.deepEqual(transport.status().map((s) => s.down), [false, false]);
  });

  test('close closes every relay; sends after close are refused', async () => {
    const { transport, relays } = pool([{ url: 'smtp://a', connections: 1 }, { url: 'smtp://b', connections: 1 }]);
    await transport.close();
    assert.deepEqual([...relays.values()].map((x) => x.state.closed), [true, true]);
    await assert.rejects(transport.send(message(0)), /closed/);
  });

  test('refuses a configuration without relays or with a bad connection count', () => {
    assert.throws(() => createRelayTransport({ relays: [], makeTransport: () => relay().transport }), /at least one relay/);
    assert.throws(() => createRelayTransport({ relays: [{ url: 'smtp://a', connections: 0 }], makeTransport: () => relay().transport }), /connections/);
  });
});
