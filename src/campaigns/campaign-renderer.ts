/**
 * Turns a claimed delivery into the bytes handed to the transport. Work that
 * is the same for every recipient (loading the campaign, compiling the
 * template, building the header skeleton, parsing the DKIM key) is done once
 * per campaign and cached; per recipient it signs two link tokens, renders
 * Liquid and assembles the message.
 */
import { preparedPerCampaign } from './prepared-cache.js';
import type { Db } from '../storage/index.js';
import type { Clock } from '../shared/clock.js';
import type { VersionedKey } from '../config/secrets.js';
import { AppError } from '../shared/errors.js';
import { findTopicsByIds } from '../topics/index.js';
import { createRecipientRenderer, loadCompiledTemplate, type RecipientRenderer } from '../templates/index.js';
import type { MasterKey } from '../contacts/index.js';
import { signLinkToken } from '../preferences/link-token.js';
import type { PreparedCampaignMessage } from '../delivery/campaign-message.js';
import { campaignMessageBuilder, createRecipientLoader, type RecipientLoader } from './recipients.js';
import type { DkimSigner } from '../delivery/dkim.js';
import type { OutgoingMessage } from '../delivery/transport.js';
import { findCampaign } from './campaign.repository.js';
import { createRepermissionRenderer } from './repermission-renderer.js';

export interface RendererDeps {
  db: Db;
  clock: Clock;
  linkKeys: VersionedKey[];
  /** Open the names a template may print (`contact.first_name`, `contact.last_name`). */
  masterKeys: MasterKey[];
  publicUrl: string;
  controller: { name: string; email: string; address: string | undefined; policyUrl: string };
  /** Right-hand side of Message-IDs and the List-Id namespace. */
  domain: string;
  /** MAIL FROM for campaign mail; defaults to the campaign's From address. */
  returnPath?: string;
  unsubscribeMailto?: string;
  dkim?: DkimSigner;
  /** Language of Assent's own words to a contact with no stored language (ASSENT_DEFAULT_LOCALE); English when unset. */
  defaultLocale?: string;
}

export interface RenderTarget {
  campaignId: string;
  contactId: string;
  address: string;
}

interface Prepared {
  topicId: string;
  /** Renders per recipient; shares the work of one template shape across recipients (templates/recipient-renderer.ts). */
  render: RecipientRenderer;
  builder: PreparedCampaignMessage;
}

export interface CampaignRenderer {
  (target: RenderTarget): Promise<OutgoingMessage>;
  /** Loads what rendering needs for a claimed batch in one go, ahead of the renders (optional, an optimisation). */
  prefetch(targets: readonly RenderTarget[]): void;
}

export function createCampaignRenderer(deps: RendererDeps): CampaignRenderer {
  const recipients = createRecipientLoader(deps);
  const regular = createRegularRenderer(deps, recipients);
  // A re-permission request is written by Assent, never from an operator template (issue 5 point 4).
  const repermission = createRepermissionRenderer(deps, recipients);
  const render = async (target: RenderTarget) =>
    (await repermission.owns(target.campaignId)) ? repermission.render(target) : regular(target);
  return Object.assign(render, { prefetch: (targets: readonly RenderTarget[]) => recipients.prefetch(targets.map((t) => t.contactId)) });
}

function createRegularRenderer(deps: RendererDeps, recipients: RecipientLoader): (target: RenderTarget) => Promise<OutgoingMessage> {
  const prepared = preparedPerCampaign((campaignId) => prepare(deps, campaignId));
  return async (target: RenderTarget) => {
    const [p, person] = await Promise.all([prepared(target.campaignId), recipients(target.contactId)]);
    const unsubscribeUrl = `${deps.publicUrl}/u/${signLinkToken(deps.linkKeys, {
      purpose: 'unsubscribe',
      contactId: target.contactId,
      topicId: p.topicId,
      campaignId: target.campaignId,
    })}`;
    const preferencesUrl = `${deps.publicUrl}/p/${signLinkToken(deps.linkKeys, { purpose: 'preferences', contactId: target.contactId })}`;
    const rendered = p.render({
      contact: { email: target.address, first_name: person.first_name, last_name: person.last_name, locale: person.locale ?? deps.defaultLocale ?? null },
      unsubscribe_url: unsubscribeUrl,
      preferences_url: preferencesUrl,
    });
    return p.builder.buildAsync({
      to: target.address,
      contactId: target.contactId,
      campaignId: target.campaignId,
      subject: rendered.subject,
      html: rendered.html,
      text: rendered.text,
      unsubscribeUrl,
      messageDate: deps.clock.now(),
    });
  };
}

async function prepare(deps: RendererDeps, campaignId: string): Promise<Prepared> {
  const campaign = await findCampaign(deps.db, campaignId);
  if (!campaign) throw new AppError('not_found', `no campaign ${campaignId}`);
  const [topic] = await findTopicsByIds(deps.db, [campaign.topic_id]);
  if (!topic) throw new AppError('not_found', `campaign ${campaignId} names a missing topic`);
  const { compiled } = await loadCompiledTemplate(deps, {
    name: campaign.template_name,
    version: campaign.template_version,
    subject: campaign.subject,
  });
  const builder = campaignMessageBuilder(deps, campaign, topic);
  const render = createRecipientRenderer(compiled, {
    campaign: { id: campaign.id, subject: campaign.subject },
    controller: {
      name: deps.controller.name,
      email: deps.controller.email,
      address: deps.controller.address ?? null,
      policy_url: deps.controller.policyUrl,
    },
  });
  return { topicId: topic.id, render, builder };
}
