import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { createOutboxTransport } from './outbox-transport.js';
import { createPipeliningTransport } from './smtp-pool-transport.js';
import { createRelayTransport, type RelaySpec } from './relays.js';
import type { Transport } from './transport.js';

export interface TransportChoice {
  /** One relay URL (shorthand for `relays` with one entry). */
  smtpUrl?: string;
  /** Several relays, traffic spread by weight; a relay that cannot be reached is left out for a while. */
  relays?: RelaySpec[];
  outboxDir: string;
  clock: Clock;
  logger?: Logger;
}

/**
 * The embedded default (DESIGN.md "Runtime shape"): with no SMTP server
 * configured, `npm start` still works and sent mail is kept on disk. With
 * relays, mail goes through the pipelining SMTP client (RFC 2920), which
 * keeps each connection busy.
 */
export function createTransport(options: TransportChoice): Transport {
  const relays = options.relays?.length ? options.relays : options.smtpUrl ? [{ url: options.smtpUrl, connections: 20 }] : [];
  const make = (relay: RelaySpec) =>
    createPipeliningTransport({
      url: relay.url,
      connections: relay.connections,
      ...(options.logger ? { logger: options.logger } : {}),
    });
  if (relays.length === 1) return make(relays[0]!);
  if (relays.length > 1) return createRelayTransport({ relays, makeTransport: make, clock: options.clock });
  return createOutboxTransport({ dir: options.outboxDir, clock: options.clock });
}
