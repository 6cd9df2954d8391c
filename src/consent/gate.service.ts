import type { Kysely, Transaction } from 'kysely';
import type { Contact, Tables } from '../storage/index.js';
import { decideSend, type GateDecision, type SendPurpose } from './gate.js';
import { lookupHashes, type SuppressionKey } from './suppression.js';
import { findSuppressions } from './suppression.repository.js';

/**
 * Loads what the gate needs for one contact and topic, in the caller's read
 * (pass the claiming transaction), and asks it. Every send path ends here.
 */
export async function checkGate(
  db: Kysely<Tables> | Transaction<Tables>,
  suppressionKeys: SuppressionKey[],
  input: { contact: Contact; topicId: string; purpose: SendPurpose },
): Promise<GateDecision> {
  const { contact } = input;
  if (!contact.match_key || contact.erased_at) return decideSend({ purpose: input.purpose, topicState: null, suppressed: false, erased: true });
  const [suppressions, state] = await Promise.all([
    findSuppressions(db, lookupHashes(suppressionKeys, contact.match_key), [input.topicId]),
    db
      .selectFrom('consent_states')
      .select('state')
      .where('contact_id', '=', contact.id)
      .where('topic_id', '=', input.topicId)
      .executeTakeFirst(),
  ]);
  return decideSend({
    purpose: input.purpose,
    topicState: state?.state ?? null,
    suppressed: suppressions.length > 0,
    erased: false,
    suppressionReasons: suppressions.map((s) => s.reason),
  });
}
