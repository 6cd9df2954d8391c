/**
 * What both campaign renderers (operator templates and re-permission
 * requests) need per recipient and per campaign: the recipient's names and
 * language, loaded for a claimed batch at once, and the message builder of a
 * campaign.
 */
import { findContactLocales, readContactNames, type ContactNames } from '../contacts/index.js';
import { prepareCampaignMessage, type PreparedCampaignMessage } from '../delivery/campaign-message.js';
import type { Campaign } from './campaign.js';
import type { RendererDeps } from './campaign-renderer.js';

export interface Recipient extends ContactNames {
  locale: string | null;
}

export type RecipientLoader = ReturnType<typeof createRecipientLoader>;

/** The per-campaign message builder: From, List-Id, Return-Path, DKIM as configured. */
export function campaignMessageBuilder(
  deps: RendererDeps,
  campaign: Pick<Campaign, 'from_address' | 'subject'>,
  topic: { name: string; slug: string },
): PreparedCampaignMessage {
  return prepareCampaignMessage({
    from: campaign.from_address,
    subject: campaign.subject,
    listId: { name: topic.name, id: `${topic.slug}.${deps.domain}` },
    domain: deps.domain,
    ...(deps.unsubscribeMailto ? { unsubscribeMailto: deps.unsubscribeMailto } : {}),
    returnPath: deps.returnPath ?? bareAddress(campaign.from_address),
    ...(deps.dkim ? { dkim: deps.dkim } : {}),
  });
}

function bareAddress(from: string): string {
  return /<([^>]+)>\s*$/.exec(from)?.[1] ?? from.trim();
}

/**
 * What a template may print about a recipient beyond the address: names
 * (sealed; opened here) and language. The worker prefetches a claimed batch
 * in one query; a recipient that was not prefetched (a preview, a failed
 * prefetch) is looked up alone.
 */
export function createRecipientLoader(deps: RendererDeps): {
  (contactId: string): Promise<Recipient>;
  prefetch(contactIds: readonly string[]): void;
} {
  const ahead = new Map<string, Promise<Recipient>>();
  const fetch = async (ids: string[]): Promise<Map<string, Recipient>> => {
    const [locales, names] = await Promise.all([findContactLocales(deps.db, ids), readContactNames(deps.db, deps.masterKeys, ids)]);
    return new Map(ids.map((id) => [id, { locale: locales.get(id) ?? null, first_name: names.get(id)?.first_name ?? null, last_name: names.get(id)?.last_name ?? null }]));
  };
  const load = (contactId: string): Promise<Recipient> => {
    const prefetched = ahead.get(contactId);
    if (prefetched) {
      ahead.delete(contactId);
      return prefetched;
    }
    return fetch([contactId]).then((found) => found.get(contactId)!);
  };
  const prefetch = (contactIds: readonly string[]) => {
    const ids = [...new Set(contactIds)].filter((id) => !ahead.has(id));
    if (ids.length === 0) return;
    const found = fetch(ids);
    // A failed prefetch is dropped: each render then looks its recipient up again.
    found.catch(() => ids.forEach((id) => ahead.delete(id)));
    for (const id of ids) {
      const one = found.then((all) => all.get(id)!);
      one.catch(() => undefined);
      ahead.set(id, one);
    }
    // Bounded: entries nobody rendered (a batch abandoned on shutdown) do not pile up.
    while (ahead.size > 20_000) ahead.delete(ahead.keys().next().value!);
  };
  return Object.assign(load, { prefetch });
}
