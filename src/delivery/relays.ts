/**
 * Several SMTP relays behind one Transport (DESIGN.md "Runtime shape": any
 * number of relays). Each relay has its own connection budget; sends are
 * spread by weight over the relays that are up and have a free connection,
 * and wait when every one is busy. A relay that cannot be reached (no SMTP
 * reply at all) is left out for a while and the message is tried once on each
 * other relay; a relay's own replies, 4xx or 5xx, are verdicts on the message
 * (RFC 5321 §4.2.1) and are returned as they are. Trying another relay at once
 * adds no duplicate risk over the worker's later retry: either way a session
 * lost after the final dot (RFC 5321 §4.1.1.4) may already have delivered.
 */
import { systemClock, type Clock } from '../shared/clock.js';
import type { OutgoingMessage, SendResult, Transport } from './transport.js';

export interface RelaySpec {
  /** smtp:// or smtps:// URL, handed to `makeTransport`. */
  url: string;
  /** Sends in flight to this relay at most; also the pool size the factory should open. */
  connections: number;
  /** Share of traffic relative to the others; 1 when unset. */
  weight?: number;
}

export interface RelayTransportOptions {
  relays: RelaySpec[];
  /** Builds one relay's transport; nothing here knows which SMTP implementation it is. */
  makeTransport: (relay: RelaySpec) => Transport;
  clock?: Clock;
  /** First time a relay is left out after a connection failure; doubles while it keeps failing. */
  downMs?: number;
  maxDownMs?: number;
  /** Which results mean "the relay is unreachable" rather than a reply; default: transient without a reply code. */
  isConnectionFailure?: (result: SendResult) => boolean;
}

export interface RelayTransport extends Transport {
  /** Per relay, for metrics and tests. */
  status(): { url: string; inFlight: number; sent: number; down: boolean }[];
}

interface Relay {
  spec: RelaySpec;
  transport: Transport;
  weight: number;
  inFlight: number;
  sent: number;
  /** Smooth weighted round-robin credit (as in nginx's upstream balancer). */
  credit: number;
  downUntil: number;
  failures: number;
}

const noReply = (result: SendResult): boolean => result.status === 'transient' && result.code === undefined;

export function createRelayTransport(options: RelayTransportOptions): RelayTransport {
  if (options.relays.length === 0) throw new RangeError('createRelayTransport needs at least one relay');
  const clock = options.clock ?? systemClock;
  const downMs = options.downMs ?? 30_000;
  const maxDownMs = options.maxDownMs ?? 600_000;
  const isConnectionFailure = options.isConnectionFailure ?? noReply;
  const relays: Relay[] = options.relays.map((spec) => {
    if (!Number.isInteger(spec.connections) || spec.connections < 1) throw new RangeError(`relay ${spec.url}: connections must be a positive integer`);
    const weight = spec.weight ?? 1;
    if (!(weight > 0)) throw new RangeError(`relay ${spec.url}: weight must be positive`);
    return { spec, transport: options.makeTransport(spec), weight, inFlight: 0, sent: 0, credit: 0, downUntil: 0, failures: 0 };
  });
  const waiters: (() => void)[] = [];
  let closed = false;

  /** Up relays with a free connection, not yet tried for this message; picks by weight (smooth WRR). */
  function pick(tried: Set<Relay>): Relay | undefined {
    const now = clock.now().getTime();
    const eligible = relays.filter((r) => !tried.has(r) && r.downUntil <= now && r.inFlight < r.spec.connections);
    if (eligible.length === 0) return undefined;
    let best = eligible[0]!;
    let total = 0;
    for (const r of eligible) {
      r.credit += r.weight;
      total += r.weight;
      if (r.credit > best.credit) best = r;
    }
    best.credit -= total;
    return best;
  }

  /** Whether some relay not yet tried is up, so waiting for a connection can help. */
  function anyUp(tried: Set<Relay>): boolean {
    const now = clock.now().getTime();
    return relays.some((r) => !tried.has(r) && r.downUntil <= now);
  }

  async function acquire(tried: Set<Relay>): Promise<Relay | undefined> {
    for (;;) {
      if (closed) throw new Error('relay transport is closed; sends after close() are refused');
      const relay = pick(tried);
      if (relay) {
        relay.inFlight += 1;
        return relay;
      }
      if (!anyUp(tried)) return undefined;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  }

  /** Wakes every waiter: each looks again, since a message cannot use a relay it already tried. */
  function wakeAll(): void {
    for (const wake of waiters.splice(0)) wake();
  }

  function release(relay: Relay): void {
    relay.inFlight -= 1;
    wakeAll();
  }

  /** One try on one relay; the relay's state is updated before its connection is handed to a waiter. */
  async function attempt(relay: Relay, message: OutgoingMessage): Promise<{ result: SendResult; unreachable: boolean }> {
    let result: SendResult;
    try {
      result = await relay.transport.send(message);
    } catch (error) {
      // A transport that throws gave no reply: treated like a lost connection.
      result = { status: 'transient', messageId: message.messageId, response: error instanceof Error ? error.message : String(error) };
    }
    const unreachable = isConnectionFailure(result);
    if (unreachable) {
      relay.failures += 1;
      relay.downUntil = clock.now().getTime() + Math.min(downMs * 2 ** (relay.failures - 1), maxDownMs);
    } else {
      relay.failures = 0;
      if (result.status === 'sent') relay.sent += 1;
    }
    release(relay);
    return { result, unreachable };
  }

  async function send(message: OutgoingMessage): Promise<SendResult> {
    const tried = new Set<Relay>();
    let last: SendResult | undefined;
    for (;;) {
      const relay = await acquire(tried);
      if (!relay) {
        return last ?? { status: 'transient', messageId: message.messageId, response: `no relay available: all ${relays.length} down` };
      }
      tried.add(relay);
      const outcome = await attempt(relay, message);
      if (!outcome.unreachable) return outcome.result;
      last = outcome.result;
    }
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    wakeAll();
    await Promise.all(relays.map((r) => r.transport.close()));
  }

  function status() {
    const now = clock.now().getTime();
    return relays.map((r) => ({ url: r.spec.url, inFlight: r.inFlight, sent: r.sent, down: r.downUntil > now }));
  }

  return { kind: relays[0]!.transport.kind, send, close, status };
}
