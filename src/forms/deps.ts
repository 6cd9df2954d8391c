import type { Clock } from '../shared/clock.js';
import type { IdGenerator } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import type { Db } from '../storage/index.js';
import type { Transport } from '../delivery/transport.js';
import type { MasterKey } from '../contacts/index.js';
import type { ReceiptPrivateKey, SuppressionKey } from '../consent/index.js';

/** What the sign-up and confirmation services need; built by the composition root. */
export interface SignupDeps {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
  transport: Transport;
  logger: Logger;
  keys: {
    masterKeys: MasterKey[];
    suppressionKeys: SuppressionKey[];
    receiptKeys: ReceiptPrivateKey[];
  };
  /** Storage upkeep after an erasure (see DsrDeps.afterErasure). */
  afterErasure?: () => Promise<void>;
  settings: {
    publicUrl: string;
    mailFrom: string;
    controller: { name: string; email: string; address: string | undefined; policyUrl: string };
    jurisdiction: string;
    confirmationTtlDays: number;
    /** Confirmation mails per address (provider aliases folded) per day (ABU-03). */
    confirmationsPerDay: number;
    /** Language of system mail to a contact with no stored language (ASSENT_DEFAULT_LOCALE); English when unset. */
    defaultLocale?: string;
  };
}

/** The domain of the sender address, for Message-IDs (RFC 5322 §3.6.4). */
export function mailDomain(deps: Pick<SignupDeps, 'settings'>): string {
  return /@([^>\s]+)>?\s*$/.exec(deps.settings.mailFrom)?.[1] ?? 'localhost.localdomain';
}
