import type { Clock } from '../shared/clock.js';
import type { IdGenerator } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import type { Db } from '../storage/index.js';
import { findContactById } from '../contacts/index.js';
import { ALL_SCOPE, suppressContact, withLedger, type SuppressionKey } from '../consent/index.js';
import { classifyRefusal } from './smtp-classify.js';

export interface FeedbackDeps {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
  logger: Logger;
  suppressionKeys: SuppressionKey[];
}

/**
 * A permanent refusal met while sending a campaign. A hard bounce records a
 * `bounced` event and suppresses the address for all marketing; a soft one
 * only fails that delivery (the caller already marked it).
 */
export async function recordSendRefusal(
  deps: FeedbackDeps,
  input: { contactId: string; campaignId: string; code?: number; response: string },
): Promise<'suppressed' | 'ignored'> {
  const verdict = classifyRefusal({ code: input.code, response: input.response });
  if (verdict.class !== 'hard') return 'ignored';
  await withLedger(deps.db, async (trx, ledger) => {
    const contact = await findContactById(trx, input.contactId);
    if (!contact || contact.erased_at) return;
    await suppressContact(trx, ledger, {
      keys: deps.suppressionKeys,
      contact,
      event: {
        id: deps.newId(),
        type: 'bounced',
        topicId: null,
        at: deps.clock.now(),
        evidence: {
          method: 'smtp_reply',
          actor: 'system',
          campaign_id: input.campaignId,
          status: verdict.status,
          bounce_reason: verdict.reason,
          smtp_response: input.response.slice(0, 500),
        },
      },
      reason: 'bounced',
      scope: ALL_SCOPE,
    });
  });
  deps.logger.info({ campaignId: input.campaignId, reason: verdict.reason }, 'hard bounce suppressed');
  return 'suppressed';
}
