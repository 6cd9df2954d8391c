import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixedClock } from '../shared/clock.js';
import { createThrottle, enhancedStatus, isSlowDown, recipientDomain, type ThrottleOptions, type ThrottleResult } from './throttle.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const MIN = 60_000;
const sent: ThrottleResult = { status: 'sent', response: '250 2.0.0 OK' };
const r421: ThrottleResult = { status: 'transient', code: 421, response: '421 4.7.0 Try again later, closing connection.' };
const r451policy: ThrottleResult = { status: 'transient', code: 451, response: '451 4.7.1 Please try again later' };

function setup(options: ThrottleOptions) {
  const clock = fixedClock(T0);
  return { clock, throttle: createThrottle(options, clock) };
}

/** Reserves `n` times now and returns how many were granted. */
function grant(throttle: ReturnType<typeof createThrottle>, domain: string, n: number): number {
  let granted = 0;
  for (let i = 0; i < n; i++) if (throttle.reserve(domain).ok) granted += 1;
  return granted;
}

describe('throttle: global rates', () => {
  test('per second: exactly N in any one-second window, then not before the oldest grant leaves it', () => {
    const { clock, throttle } = setup({ perSecond: 5 });
    assert.equal(grant(throttle, 'a.example', 3), 3);
    clock.advance(400);
    assert.equal(grant(throttle, 'b.example', 2), 2);
    assert.deepEqual(throttle.reserve('c.example'), { ok: false, retryAt: at(1000), scope: 'global' });
    clock.advance(599); // t = 999: the first three are still inside (T0 - 1 s, now]
    assert.equal(throttle.reserve('c.example').ok, false);
    clock.advance(1); // t = 1000: the first three left the window, the two at 400 did not
    assert.equal(grant(throttle, 'c.example', 10), 3);
    assert.deepEqual(throttle.reserve('c.example'), { ok: false, retryAt: at(1400), scope: 'global' });
  });

  test('per hour: exactly N an hour, whatever the per-second pace allows', () => {
    const { clock, throttle } = setup({ perSecond: 10, perHour: 25 });
    let granted = 0;
    for (let s = 0; s < 3600; s++) {
      granted += grant(throttle, `d${s % 7}.example`, 20);
      clock.advance(1000);
    }
    assert.equal(granted, 25, 'the per-second cap would allow 36,000');
    // The first ten went at T0, so ten more fit at T0 + 1 h, and one second later the next ten.
    assert.equal(grant(throttle, 'x.example', 20), 10);
    assert.deepEqual(throttle.reserve('x.example'), { ok: false, retryAt: at(3_601_000), scope: 'global' });
  });
});

describe('throttle: per recipient domain', () => {
  test('at most N a minute to one domain; other domains are not affected', () => {
    const { clock, throttle } = setup({ perDomainPerMinute: 3 });
    assert.equal(grant(throttle, 'slow.example', 3), 3);
    const refused = throttle.reserve('slow.example');
    assert.deepEqual(refused, { ok: false, retryAt: at(MIN), scope: 'domain' });
    assert.equal(grant(throttle, 'other.example', 3), 3);
    clock.advance(MIN - 1);
    assert.equal(grant(throttle, 'slow.example', 1), 0);
    clock.advance(1);
    assert.equal(grant(throttle, 'slow.example', 5), 3);
  });

  test('refused sends are told to come back one slot apart, not all at the same instant', () => {
    const { throttle } = setup({ perDomainPerMinute: 4 });
    assert.equal(grant(throttle, 'slow.example', 4), 4);
    const retries = Array.from({ length: 4 }, () => throttle.reserve('slow.example')).map((r) => (r.ok ? null : r.retryAt.getTime() - T0.getTime()));
    assert.deepEqual(retries, [MIN, MIN + 15_000, MIN + 30_000, MIN + 45_000]);
  });

  test('provider groups count gmail.com and googlemail.com (and Microsoft, Yahoo/AOL domains) as one', () => {
    const { throttle } = setup({ perDomainPerMinute: 2 });
    assert.equal(throttle.reserve('gmail.com').ok, true);
    assert.equal(throttle.reserve('GoogleMail.com.').ok, true);
    assert.equal(throttle.reserve('gmail.com').ok, false);
    assert.deepEqual(['hotmail.com', 'outlook.com', 'live.com', 'msn.com'].map((d) => throttle.groupOf(d)), ['microsoft', 'microsoft', 'microsoft', 'microsoft']);
    assert.deepEqual(['yahoo.com', 'ymail.com', 'aol.com'].map((d) => throttle.groupOf(d)), ['yahoo', 'yahoo', 'yahoo']);
    assert.equal(grant(throttle, 'hotmail.com', 1) + grant(throttle, 'live.com', 1) + grant(throttle, 'msn.com', 1), 2);
    assert.equal(throttle.groupOf('Bücher.example'), 'xn--bcher-kva.example');
  });

  test('groups and per-group caps are configurable', () => {
    const { throttle } = setup({
      perDomainPerMinute: 100,
      providerGroups: { unitedinternet: ['gmx.net', 'gmx.de', 'web.de'] },
      domainLimits: { unitedinternet: 2, 'tiny.example': 1 },
    });
    assert.equal(throttle.groupOf('gmail.com'), 'gmail.com', 'given groups replace the defaults');
    assert.equal(grant(throttle, 'gmx.net', 1) + grant(throttle, 'web.de', 5), 2);
    assert.equal(grant(throttle, 'tiny.example', 5), 1);
    assert.equal(grant(throttle, 'big.example', 150), 100);
  });

  test('invalid limits are refused at construction', () => {
    assert.throws(() => createThrottle({ perSecond: 0 }, fixedClock(T0)), /perSecond must be a positive integer/);
    assert.throws(() => createThrottle({ domainLimits: { 'x.example': 1.5 } }, fixedClock(T0)), /domainLimits\.x\.example/);
  });
});

describe('throttle: back-off on 421 and 4.7.x (RFC 5321 §4.2.3, RFC 3463 §3.8)', () => {
  test('a 421 backs the group off for 1 min, doubling to 1 h; one probe after each; a success resets', () => {
    const { clock, throttle } = setup({});
    assert.equal(throttle.reserve('gmail.com').ok, true);
    throttle.record('gmail.com', r421);
    assert.deepEqual(throttle.reserve('googlemail.com'), { ok: false, retryAt: at(MIN), scope: 'backoff' });
    assert.equal(throttle.reserve('example.net').ok, true, 'other domains continue');
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const refused = throttle.reserve('gmail.com');
      assert.equal(refused.ok, false);
      const until = refused.ok ? 0 : refused.retryAt.getTime();
      waits.push(until - clock.now().getTime());
      clock.set(new Date(until));
      assert.equal(throttle.reserve('gmail.com').ok, true, 'the probe');
      assert.deepEqual(throttle.reserve('gmail.com'), { ok: false, retryAt: new Date(until + 15_000), scope: 'backoff' }, 'only one probe');
      throttle.record('gmail.com', i % 2 === 0 ? r451policy : r421);
    }
    assert.deepEqual(waits.map((ms) => ms / MIN), [1, 2, 4, 8, 16, 32, 60, 60]);
    clock.advance(3_600_000);
    assert.equal(throttle.reserve('gmail.com').ok, true);
    throttle.record('gmail.com', sent);
    assert.equal(grant(throttle, 'gmail.com', 5), 5, 'after a success sends flow again');
    throttle.record('gmail.com', r421);
    const again = throttle.reserve('gmail.com');
    assert.deepEqual(again, { ok: false, retryAt: new Date(clock.now().getTime() + MIN), scope: 'backoff' }, 'reset to 1 min');
  });

  test('results of sends started before a back-off neither extend nor end it', () => {
    const { clock, throttle } = setup({});
    throttle.record('busy.example', r421);
    clock.advance(10_000);
    throttle.record('busy.example', r421);
    throttle.record('busy.example', sent);
    assert.deepEqual(throttle.reserve('busy.example'), { ok: false, retryAt: at(MIN), scope: 'backoff' });
  });

  test('a probe that fails otherwise (5xx, lost connection) lets the next probe go; a probe never heard of is replaced', () => {
    const { clock, throttle } = setup({});
    throttle.record('busy.example', r421);
    clock.advance(MIN);
    assert.equal(throttle.reserve('busy.example').ok, true);
    throttle.record('busy.example', { status: 'permanent', code: 550, response: '550 5.1.1 no such user' });
    assert.equal(throttle.reserve('busy.example').ok, true, 'the next probe');
    assert.equal(throttle.reserve('busy.example').ok, false, 'still one at a time');
    clock.advance(15_000);
    assert.equal(throttle.reserve('busy.example').ok, true, 'the probe window passed without a result');
  });

  test('a 5.x.x, a 4.2.x or a lost connection is no back-off', () => {
    const { throttle } = setup({});
    for (const result of [
      { status: 'permanent', code: 550, response: '550 5.7.1 Message rejected as spam' },
      { status: 'permanent', code: 554, response: '554 5.7.0 Access denied' },
      { status: 'transient', code: 452, response: '452 4.2.2 Mailbox full' },
      { status: 'transient', response: 'ECONNRESET: connection reset by 10.4.7.1' },
    ] satisfies ThrottleResult[]) {
      throttle.record('fine.example', result);
      assert.equal(throttle.reserve('fine.example').ok, true, result.response);
    }
  });

  test('reading the enhanced status code', () => {
    assert.deepEqual(enhancedStatus('451-4.7.1 greylisted\n451 4.7.1 see https://x'), { klass: 4, subject: 7, detail: 1 });
    assert.equal(enhancedStatus('connect ECONNREFUSED 10.4.7.1:25'), undefined);
    assert.equal(isSlowDown({ status: 'transient', response: '421 Service not available' }), true, 'the code read from the text');
    assert.equal(isSlowDown({ status: 'transient', code: 450, response: '450 4.7.28 rate limited' }), true);
    assert.equal(isSlowDown({ status: 'transient', code: 451, response: '451 4.3.0 local error' }), false);
    assert.equal(recipientDomain('"odd@local"@Example.ORG'), 'Example.ORG');
  });
});

describe('throttle: memory stays bounded', () => {
  test('idle domains are forgotten after a minute; never more than maxDomains', () => {
    const { clock, throttle } = setup({ perDomainPerMinute: 10, maxDomains: 100 });
    for (let i = 0; i < 1000; i++) assert.equal(throttle.reserve(`d${i}.example`).ok, true);
    assert.equal(throttle.size(), 100);
    throttle.record('busy.example', r421);
    clock.advance(MIN);
    throttle.reserve('fresh.example');
    assert.deepEqual(throttle.size(), 2, 'the idle ones went, the backed-off one stays');
    clock.advance(MIN + 3_600_000);
    throttle.reserve('fresh2.example');
    assert.equal(throttle.size(), 1, 'a back-off long over is forgotten too');
  });
});
