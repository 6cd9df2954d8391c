import type { Clock } from '../shared/clock.js';
import { createOutboxTransport } from './outbox-transport.js';
import { createSmtpTransport, type SmtpTransportOptions } from './smtp-transport.js';
import type { Transport } from './transport.js';

export interface TransportChoice {
  /** When set, mail goes to this relay; otherwise it lands in the outbox. */
  smtpUrl?: string;
  outboxDir: string;
  clock: Clock;
  logger?: SmtpTransportOptions['logger'];
}

/**
 * The embedded default (DESIGN.md "Runtime shape"): with no SMTP server configured,
 * `npm start` still works and sent mail is kept on disk for the admin UI.
 */
export function createTransport(options: TransportChoice): Transport {
  if (options.smtpUrl !== undefined && options.smtpUrl !== '') {
    return createSmtpTransport({
      url: options.smtpUrl,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }
  return createOutboxTransport({ dir: options.outboxDir, clock: options.clock });
}
