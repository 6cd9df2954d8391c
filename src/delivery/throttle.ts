/**
 * The sending pace (issue 3, point 4): real delivery is bounded by receivers,
 * so a worker asks before every send. Pure apart from the injected clock; one
 * throttle per worker process, so limits are per process.
 *
 * - Global caps per second and per hour, and a cap per recipient domain per
 *   minute. Caps are exact sliding windows: no more than N grants in any
 *   window of that length (a token bucket would let 2N through at a window's
 *   edge, which a provider's quota counts against us).
 * - Mailbox providers that share one infrastructure (gmail.com and
 *   googlemail.com, …) are counted as one group.
 * - A 421 reply (RFC 5321 §3.8, §4.2.3) or an enhanced status 4.7.x ("security
 *   or policy status", RFC 3463 §3.8; providers use 4.7.0/4.7.1/4.7.28 for
 *   rate limiting) puts the group on exponential back-off. When it ends, one
 *   probe send goes first; its success ends the back-off, another 421 doubles it.
 */
import { domainToASCII } from 'node:url';
import type { Clock } from '../shared/clock.js';
import type { SendResult } from './transport.js';

/** Domains known to share one receiving infrastructure; each group is counted and backed off as one. */
export const DEFAULT_PROVIDER_GROUPS: Readonly<Record<string, readonly string[]>> = {
  google: ['gmail.com', 'googlemail.com'],
  microsoft: ['outlook.com', 'hotmail.com', 'live.com', 'msn.com', 'hotmail.co.uk', 'hotmail.fr', 'hotmail.de', 'hotmail.it', 'live.co.uk', 'live.fr', 'live.de', 'outlook.de', 'outlook.fr'],
  yahoo: ['yahoo.com', 'ymail.com', 'rocketmail.com', 'aol.com', 'aim.com', 'yahoo.co.uk', 'yahoo.fr', 'yahoo.de'],
  apple: ['icloud.com', 'me.com', 'mac.com'],
};

export interface BackoffPolicy {
  /** First back-off; each further 421/4.7.x doubles it. */
  baseMs: number;
  maxMs: number;
  /** How long the one probe send after a back-off may take before another is let through. */
  probeMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 60_000, maxMs: 3_600_000, probeMs: 15_000 };

export interface ThrottleOptions {
  /** Messages per second, all domains together; unset means unlimited. */
  perSecond?: number;
  /** Messages per hour, all domains together; unset means unlimited. */
  perHour?: number;
  /** Messages per minute to one domain or provider group; unset means unlimited. */
  perDomainPerMinute?: number;
  /** Per-minute caps for named groups or single domains, overriding `perDomainPerMinute`. */
  domainLimits?: Readonly<Record<string, number>>;
  /** Group name → member domains; replaces DEFAULT_PROVIDER_GROUPS when given. */
  providerGroups?: Readonly<Record<string, readonly string[]>>;
  backoff?: Partial<BackoffPolicy>;
  /** Domains tracked at most; the least recently used is forgotten beyond it. */
  maxDomains?: number;
}

/**
 * `global`: the process is at its own pace (worth waiting a moment for);
 * `domain`: the domain's per-minute cap; `backoff`: the domain asked us to slow down.
 */
export type Reservation = { ok: true } | { ok: false; retryAt: Date; scope: 'global' | 'domain' | 'backoff' };

/** What `record` reads of a send's outcome. */
export type ThrottleResult = Pick<SendResult, 'status' | 'response'> & { code?: number };

export interface Throttle {
  /** Asks to send one message to `domain` now; an `ok` counts against every cap. */
  reserve(domain: string): Reservation;
  /** Reports how a send to `domain` went: feeds back-off and its reset. */
  record(domain: string, result: ThrottleResult): void;
  /** The group a domain is counted in: a provider group's name, or the domain itself. */
  groupOf(domain: string): string;
  /** Domains (groups) tracked now; bounded by `maxDomains`. */
  size(): number;
}

const MINUTE = 60_000;
const SWEEP_EVERY_MS = MINUTE;

/** The domain of an address as entered: after the last "@" (RFC 5321 §4.1.2, the local part may hold a quoted "@"). */
export function recipientDomain(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

/** RFC 3463 §2: class.subject.detail, reported after the basic reply code (RFC 2034 §4). */
export function enhancedStatus(response: string): { klass: number; subject: number; detail: number } | undefined {
  const match = /(?:^|[\s-])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])/.exec(response);
  return match ? { klass: Number(match[1]), subject: Number(match[2]), detail: Number(match[3]) } : undefined;
}

/** A receiver asking us to slow down: 421, or a transient 4.7.x. A 5.x.x is a verdict on the message, not on our pace. */
export function isSlowDown(result: ThrottleResult): boolean {
  if (result.status !== 'transient') return false;
  const code = result.code ?? Number(/^\s*([1-5]\d\d)(?:[ -]|$)/.exec(result.response)?.[1]);
  if (code === 421) return true;
  const status = enhancedStatus(result.response);
  return status !== undefined && status.klass === 4 && status.subject === 7;
}

/** At most `limit` grants in any window of `windowMs`; holds only the grants still inside the window. */
class SlidingLog {
  private times: number[] = [];
  private head = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** The earliest time one more grant fits. */
  freeAt(now: number): number {
    this.prune(now);
    return this.times.length - this.head < this.limit ? now : this.times[this.times.length - this.limit]! + this.windowMs;
  }

  add(now: number): void {
    this.times.push(now);
  }

  isEmpty(now: number): boolean {
    this.prune(now);
    return this.head === this.times.length;
  }

  private prune(now: number): void {
    while (this.head < this.times.length && this.times[this.head]! <= now - this.windowMs) this.head += 1;
    if (this.head > 32 && this.head * 2 >= this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}

interface DomainState {
  log: SlidingLog | undefined;
  /** Spacing for refused sends, so deferred rows come back one slot apart instead of all at once. */
  nextSlot: number;
  /** Back-offs in a row since the last success. */
  level: number;
  backoffUntil: number;
  /** After a back-off: the probe send is out until then, nobody else goes. */
  probeUntil: number;
}

export function createThrottle(options: ThrottleOptions, clock: Clock): Throttle {
  const backoff: BackoffPolicy = { ...defaultBackoff, ...options.backoff };
  const perSecond = makeLog(options.perSecond, 1000, 'perSecond');
  const perHour = makeLog(options.perHour, 3_600_000, 'perHour');
  const maxDomains = positive(options.maxDomains ?? 10_000, 'maxDomains');
  const groupByDomain = new Map<string, string>();
  for (const [group, domains] of Object.entries(options.providerGroups ?? DEFAULT_PROVIDER_GROUPS)) {
    for (const domain of domains) groupByDomain.set(normalise(domain), group);
  }
  const limits = new Map<string, number>();
  for (const [key, limit] of Object.entries(options.domainLimits ?? {})) limits.set(groupKey(key), positive(limit, `domainLimits.${key}`));
  const defaultLimit = options.perDomainPerMinute === undefined ? undefined : positive(options.perDomainPerMinute, 'perDomainPerMinute');
  // Insertion order is recency order: every touch moves a domain to the end.
  const states = new Map<string, DomainState>();
  let lastSweep = clock.now().getTime();

  function groupOf(domain: string): string {
    const ascii = normalise(domain);
    return groupByDomain.get(ascii) ?? ascii;
  }

  /** A key of `domainLimits`: a group's name as given, or a domain (counted in its group). */
  function groupKey(key: string): string {
    return Object.hasOwn(options.providerGroups ?? DEFAULT_PROVIDER_GROUPS, key) ? key : groupOf(key);
  }

  function touch(key: string, now: number): DomainState {
    const known = states.get(key);
    if (known) {
      states.delete(key);
      states.set(key, known);
      return known;
    }
    if (now - lastSweep >= SWEEP_EVERY_MS) sweep(now);
    // Full between sweeps: forget the least recently used domain (it may lose a back-off; bounded memory wins).
    if (states.size >= maxDomains) states.delete(states.keys().next().value!);
    const limit = limits.get(key) ?? defaultLimit;
    const state: DomainState = { log: limit === undefined ? undefined : new SlidingLog(limit, MINUTE), nextSlot: 0, level: 0, backoffUntil: 0, probeUntil: 0 };
    states.set(key, state);
    return state;
  }

  /** Forgets domains with no grant in the last minute and no back-off worth remembering. */
  function sweep(now: number): void {
    lastSweep = now;
    for (const [key, s] of states) {
      const backoffForgotten = s.level === 0 || now >= s.backoffUntil + backoff.maxMs;
      if (backoffForgotten && now >= s.probeUntil && now >= s.nextSlot && (s.log?.isEmpty(now) ?? true)) states.delete(key);
    }
  }

  function domainBlock(state: DomainState, now: number): { at: number; scope: 'domain' | 'backoff' } | undefined {
    if (now < state.backoffUntil) return { at: state.backoffUntil, scope: 'backoff' };
    if (state.level > 0 && now < state.probeUntil) return { at: state.probeUntil, scope: 'backoff' };
    const free = state.log?.freeAt(now) ?? now;
    return free > now ? { at: free, scope: 'domain' } : undefined;
  }

  function reserve(domain: string): Reservation {
    const now = clock.now().getTime();
    const key = groupOf(domain);
    const state = touch(key, now);
    const globalAt = Math.max(perSecond?.freeAt(now) ?? now, perHour?.freeAt(now) ?? now);
    const blocked = domainBlock(state, now);
    if (blocked) {
      let at = Math.max(blocked.at, globalAt);
      if (blocked.scope === 'domain') {
        const limit = limits.get(key) ?? defaultLimit!;
        at = Math.max(at, state.nextSlot);
        state.nextSlot = at + Math.ceil(MINUTE / limit);
      }
      return { ok: false, retryAt: new Date(at), scope: blocked.scope };
    }
    if (globalAt > now) return { ok: false, retryAt: new Date(globalAt), scope: 'global' };
    perSecond?.add(now);
    perHour?.add(now);
    state.log?.add(now);
    if (state.level > 0) state.probeUntil = now + backoff.probeMs;
    return { ok: true };
  }

  function record(domain: string, result: ThrottleResult): void {
    const now = clock.now().getTime();
    const key = groupOf(domain);
    const slowDown = isSlowDown(result);
    const state = states.get(key) ?? (slowDown ? touch(key, now) : undefined);
    // Results arriving during a back-off come from sends started before it: they neither extend nor end it.
    if (!state || now < state.backoffUntil) return;
    state.probeUntil = 0;
    if (slowDown) {
      state.level += 1;
      state.backoffUntil = now + Math.min(backoff.baseMs * 2 ** (state.level - 1), backoff.maxMs);
    } else if (result.status === 'sent') {
      state.level = 0;
    }
  }

  return { reserve, record, groupOf, size: () => states.size };
}

function makeLog(limit: number | undefined, windowMs: number, name: string): SlidingLog | undefined {
  return limit === undefined ? undefined : new SlidingLog(positive(limit, name), windowMs);
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`throttle ${name} must be a positive integer, got ${value}`);
  return value;
}

/** Lower case, no trailing dot, IDNA A-labels (as the match key holds domains, DESIGN.md "Contact"). */
function normalise(domain: string): string {
  const plain = domain.trim().toLowerCase().replace(/\.$/, '');
  return domainToASCII(plain) || plain;
}
