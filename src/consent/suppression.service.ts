import type { Transaction } from 'kysely';
import type { Contact, Tables } from '../storage/index.js';
import type { LedgerWriter } from './ledger.service.js';
import type { ContactEventType, Evidence } from './ledger.js';
import { ALL_SCOPE, writeHashes, type SuppressionKey, type SuppressionReason } from './suppression.js';
import { insertSuppressions } from './suppression.repository.js';

/**
 * Suppresses a contact inside a ledger transaction: appends the event that
 * explains it and writes the keyed entries (every provider alias), so the
 * record of why and the effect commit together. Scope 'all' covers every
 * marketing purpose (GDPR Art. 21(3)); a topic id covers that topic only.
 */
export async function suppressContact(
  trx: Transaction<Tables>,
  ledger: LedgerWriter,
  input: {
    keys: SuppressionKey[];
    contact: Contact;
    event: { id: string; type: ContactEventType | 'withdrawn'; topicId: string | null; evidence: Evidence; at: Date };
    reason: SuppressionReason;
    scope: string;
  },
): Promise<void> {
  const [event] = await ledger.append([
    {
      id: input.event.id,
      contactId: input.contact.id,
      topicId: input.event.topicId,
      type: input.event.type,
      occurredAt: input.event.at,
      evidence: input.event.evidence,
    },
  ]);
  if (!input.contact.match_key) return;
  await insertSuppressions(
    trx,
    writeHashes(input.keys, input.contact.match_key).map((h) => ({
      ...h,
      scope: input.scope,
      reason: input.reason,
      created_at: input.event.at.toISOString(),
      event_seq: event?.seq ?? null,
    })),
  );
}

export { ALL_SCOPE };
