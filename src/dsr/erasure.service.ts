/**
 * Right to erasure (GDPR Art. 17), as DESIGN.md lays it out: the contact's
 * personal data is deleted and its evidence crypto-shredded, while the
 * ledger keeps only ciphertext and hashes (so the chain still verifies) and
 * a keyed-hash suppression stays, so the person is never mailed or
 * re-imported again (Art. 17(3)(b) and (e): the suppression and the proof
 * of consent are kept under a recorded retention justification; Art. 21(3)).
 */
import type { Transaction } from 'kysely';
import { findContactById, findKeptContactById, findMergedAwayInto } from '../contacts/index.js';
import { ALL_SCOPE, suppressContact, withLedger, type LedgerWriter } from '../consent/index.js';
import type { Contact, Tables } from '../storage/index.js';
import { AppError } from '../shared/errors.js';
import type { DsrDeps } from './deps.js';
import { blankContact, deleteContactKey, deleteContactNames, deleteContactTokens } from './dsr.repository.js';

export type ErasureChannel = 'preference_centre' | 'operator' | 'api';

export interface ErasureRequest {
  contactId: string;
  /** Which way the request came; recorded in the `erased` event's evidence. */
  channel: ErasureChannel;
  /** Who acted: a staff user or API key name; the subject when omitted on the preference centre. */
  actor?: string;
}

/**
 * Erases one contact in one ledger transaction: the `erased` event and its
 * suppression (scope 'all', every provider alias), then the contact row
 * stripped to id and dates, its evidence key, sealed names and confirmation
 * tokens deleted. Mail log and delivery rows stay: they hold ids only, and
 * are the record of what was sent (Art. 5(2)). The records an operator
 * merged into this contact are the same person and are erased with it, each
 * with its own `erased` event naming the contact it went with; asked with
 * the id of a merged-away record, it erases the person it was merged into,
 * the same way. Erasing an erased contact (and its merged records) is a no-op.
 */
export async function eraseContact(deps: DsrDeps, request: ErasureRequest): Promise<{ erased: boolean }> {
  const now = deps.clock.now();
  const erased = await withLedger(deps.db, async (trx, ledger) => {
    // Asked through a record merged into another: the person is the kept contact.
    const contact = await findKeptContactById(trx, request.contactId);
    if (!contact) throw new AppError('not_found', 'No such contact');
    const records = [contact];
    for (const id of await findMergedAwayInto(trx, contact.id)) {
      const merged = await findContactById(trx, id);
      if (merged) records.push(merged);
    }
    const live = records.filter((r) => r.erased_at === null);
    for (const record of live) {
      const extra: Record<string, string> = record.id === contact.id ? {} : { erased_with: contact.id };
      await eraseRecord(deps, { trx, ledger, request, contact: record, now, extra });
    }
    return live.length > 0;
  });
  if (erased && deps.afterErasure) await deps.afterErasure();
  // The contact id only: the address is gone, and must not live on in logs.
  deps.logger.info({ contact: request.contactId, channel: request.channel, erased }, erased ? 'contact erased' : 'contact already erased');
  return { erased };
}

async function eraseRecord(
  deps: DsrDeps,
  v: { trx: Transaction<Tables>; ledger: LedgerWriter; request: ErasureRequest; contact: Contact; now: Date; extra: Record<string, string> },
): Promise<void> {
  const { trx, request, contact } = v;
  await suppressContact(trx, v.ledger, {
    keys: deps.keys.suppressionKeys,
    contact,
    // No personal data in this evidence: the key that could open it is about to go.
    event: {
      id: deps.newId(),
      type: 'erased',
      topicId: null,
      at: v.now,
      evidence: { method: `erasure_${request.channel}`, actor: request.actor ?? defaultActor(request.channel), channel: request.channel, ...v.extra },
    },
    reason: 'erased',
    scope: ALL_SCOPE,
  });
  await blankContact(trx, contact.id, v.now.toISOString());
  await deleteContactKey(trx, contact.id);
  await deleteContactNames(trx, contact.id);
  await deleteContactTokens(trx, contact.id);
}

function defaultActor(channel: ErasureChannel): string {
  return channel === 'preference_centre' ? 'subject' : channel;
}
