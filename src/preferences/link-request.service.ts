import { findContactByMatchKey, keptContactOf, parseAddress } from '../contacts/index.js';
import { ALL_SCOPE } from '../consent/index.js';
import { deliverSystemMail, mailDomain } from '../forms/index.js';
import { makeMessageId } from '../delivery/compose.js';
import { preferencesUrl } from './centre.service.js';
import type { PreferenceDeps } from './deps.js';
import { preferencesLinkMail } from './mails.js';
import { countMailsSince } from './preferences.repository.js';

const DAY_MS = 86_400_000;
/** Link mails per contact per day: enough for a lost mail, too few to flood a mailbox (ABU-03). */
export const LINKS_PER_DAY = 3;
export const LINK_MAIL_KIND = 'preferences_link';

export type LinkRequestResult = { kind: 'invalid' } | { kind: 'accepted'; sent: boolean };

/**
 * "Send me my link" (/p): mails a fresh preference-centre link to a known
 * address. The caller answers 'accepted' identically whether or not anything
 * was sent (ABU-04): unknown, erased and throttled addresses get nothing, and
 * the send gate stops mail to anyone complained, bounced or restricted.
 */
export async function requestPreferenceLink(deps: PreferenceDeps, input: { address: string; locale: string }): Promise<LinkRequestResult> {
  const parsed = parseAddress(input.address);
  if (!parsed.ok) return { kind: 'invalid' };
  const found = await findContactByMatchKey(deps.db, parsed.matchKey);
  // A merged-away address gets the centre of the contact it was merged into, as its old links do.
  const contact = found && (await keptContactOf(deps.db, found));
  if (!contact || contact.erased_at !== null || !contact.address) return { kind: 'accepted', sent: false };
  const since = new Date(deps.clock.now().getTime() - DAY_MS).toISOString();
  if ((await countMailsSince(deps.db, { contactId: contact.id, kind: LINK_MAIL_KIND, since })) >= LINKS_PER_DAY) {
    deps.logger.info({ outcome: 'throttled' }, 'preference link not sent');
    return { kind: 'accepted', sent: false };
  }
  const locale = contact.locale ?? input.locale;
  const sent = await deliverSystemMail(deps, {
    contact,
    // The link concerns no one topic: 'all' only selects the suppressions of every scope.
    gate: { purpose: 'self_service', topicIds: [ALL_SCOPE] },
    kind: LINK_MAIL_KIND,
    messageId: makeMessageId(`preferences.${deps.newId()}`, mailDomain(deps)),
    mail: preferencesLinkMail({ locale, controller: deps.settings.controller.name, url: preferencesUrl(deps, contact.id) }),
    locale,
  });
  return { kind: 'accepted', sent };
}
