/**
 * Renders a re-permission request for a claimed delivery. The message
 * builder (From, List-Id, MIME skeleton, DKIM) is prepared once per campaign
 * by the same `prepareCampaignMessage` as every campaign, so the request
 * carries List-Unsubscribe and List-Unsubscribe-Post (RFC 8058) like any
 * marketing mail; per recipient it signs three links and writes the fixed
 * text in the person's language.
 */
import { preparedPerCampaign } from './prepared-cache.js';
import { AppError } from '../shared/errors.js';
import { findTopicsByIds } from '../topics/index.js';
import { signLinkToken } from '../preferences/link-token.js';
import type { PreparedCampaignMessage } from '../delivery/campaign-message.js';
import { campaignMessageBuilder, type RecipientLoader } from './recipients.js';
import type { OutgoingMessage } from '../delivery/transport.js';
import type { RendererDeps, RenderTarget } from './campaign-renderer.js';
import { findCampaign } from './campaign.repository.js';
import { repermissionMail } from './repermission-mail.js';
import { findRepermission } from './repermission.repository.js';

interface Prepared {
  topicId: string;
  topicName: string;
  deadline: Date;
  reminder: boolean;
  builder: PreparedCampaignMessage;
}

export interface RepermissionRenderer {
  /** Whether the campaign is a re-permission request (then `render` writes it). */
  owns(campaignId: string): Promise<boolean>;
  render(target: RenderTarget): Promise<OutgoingMessage>;
}

export function createRepermissionRenderer(deps: RendererDeps, recipients: RecipientLoader): RepermissionRenderer {
  // null: the campaign is not a re-permission campaign.
  const prepared = preparedPerCampaign((campaignId) => prepare(deps, campaignId));
  return {
    owns: async (campaignId) => (await prepared(campaignId)) !== null,
    render: async (target) => {
      const p = await prepared(target.campaignId);
      if (!p) throw new AppError('conflict', `campaign ${target.campaignId} is not a re-permission campaign`);
      const recipient = await recipients(target.contactId);
      const scope = { contactId: target.contactId, topicId: p.topicId, campaignId: target.campaignId };
      const confirmUrl = `${deps.publicUrl}/r/${signLinkToken(deps.linkKeys, { purpose: 'repermission', ...scope })}`;
      const unsubscribeUrl = `${deps.publicUrl}/u/${signLinkToken(deps.linkKeys, { purpose: 'unsubscribe', ...scope })}`;
      const preferencesUrl = `${deps.publicUrl}/p/${signLinkToken(deps.linkKeys, { purpose: 'preferences', contactId: target.contactId })}`;
      const mail = repermissionMail({
        locale: recipient.locale ?? deps.defaultLocale ?? 'en',
        controller: deps.controller,
        topicName: p.topicName,
        deadline: p.deadline,
        reminder: p.reminder,
        confirmUrl,
        unsubscribeUrl,
        preferencesUrl,
      });
      return p.builder.buildAsync({
        to: target.address,
        contactId: target.contactId,
        campaignId: target.campaignId,
        subject: mail.subject,
        html: mail.html,
        text: mail.text,
        unsubscribeUrl,
        messageDate: deps.clock.now(),
      });
    },
  };
}

async function prepare(deps: RendererDeps, campaignId: string): Promise<Prepared | null> {
  const campaign = await findCampaign(deps.db, campaignId);
  if (!campaign) throw new AppError('not_found', `no campaign ${campaignId}`);
  if (campaign.kind !== 'repermission') return null;
  const row = await findRepermission(deps.db, campaignId);
  if (!row) throw new AppError('not_found', `re-permission campaign ${campaignId} has no deadline`);
  const [topic] = await findTopicsByIds(deps.db, [campaign.topic_id]);
  if (!topic) throw new AppError('not_found', `campaign ${campaignId} names a missing topic`);
  const builder = campaignMessageBuilder(deps, campaign, topic);
  return { topicId: topic.id, topicName: topic.name, deadline: new Date(row.deadline_at), reminder: row.parent_id !== null, builder };
}
