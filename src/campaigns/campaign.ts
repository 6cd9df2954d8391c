/**
 * A campaign's lifecycle as a table: draft → scheduled → sending ⇄ paused →
 * sent / cancelled (DESIGN.md, Campaign). Pure: services load the row, ask
 * here, and save with a compare-and-set on the status they read.
 */
import { AppError } from '../shared/errors.js';
import type { Selectable } from 'kysely';
import type { CampaignsTable, DeliveriesTable } from '../storage/index.js';

export type Campaign = Selectable<CampaignsTable>;
export type Delivery = Selectable<DeliveriesTable>;

export const campaignStatuses = ['draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled'] as const;
export type CampaignStatus = (typeof campaignStatuses)[number];

export const campaignKinds = ['regular', 'repermission'] as const;
export type CampaignKind = (typeof campaignKinds)[number];

export type CampaignAction = 'schedule' | 'start' | 'pause' | 'resume' | 'cancel' | 'finish';

/** Which statuses each action may leave, and where it leads. */
export const transitions: Record<CampaignAction, { from: readonly CampaignStatus[]; to: CampaignStatus }> = {
  // Scheduling again moves the time; a started campaign cannot be rescheduled.
  schedule: { from: ['draft', 'scheduled'], to: 'scheduled' },
  start: { from: ['draft', 'scheduled'], to: 'sending' },
  pause: { from: ['sending'], to: 'paused' },
  resume: { from: ['paused'], to: 'sending' },
  cancel: { from: ['draft', 'scheduled', 'sending', 'paused'], to: 'cancelled' },
  finish: { from: ['sending'], to: 'sent' },
};

/** The status an action leads to, or a 'conflict' error naming what was refused. */
export function transition(current: string, action: CampaignAction): CampaignStatus {
  const rule = transitions[action];
  if (!(rule.from as readonly string[]).includes(current)) {
    throw new AppError('conflict', `cannot ${action} a campaign that is ${current} (allowed from: ${rule.from.join(', ')})`, {
      action,
      status: current,
    });
  }
  return rule.to;
}

/**
 * The consent state a contact must hold for the campaign's topic: confirmed
 * for regular mail (GDPR Art. 6(1)(a), 7), imported for a re-permission
 * request, which may only ask for fresh consent.
 */
export function audienceState(kind: string): 'confirmed' | 'imported' {
  return kind === 'repermission' ? 'imported' : 'confirmed';
}

/** The send gate's purpose for the campaign's kind. */
export function gatePurpose(kind: string): 'campaign' | 'repermission' {
  return kind === 'repermission' ? 'repermission' : 'campaign';
}

export interface CampaignCounts {
  queued: number;
  claimed: number;
  sent: number;
  failed: number;
  skipped: number;
  skipped_by_reason: Record<string, number>;
}

/** Folds grouped counts (status, skip reason) into the status report's shape. */
export function foldCounts(rows: { status: string; skip_reason: string | null; count: number }[]): CampaignCounts {
  const counts: CampaignCounts = { queued: 0, claimed: 0, sent: 0, failed: 0, skipped: 0, skipped_by_reason: {} };
  for (const row of rows) {
    const n = Number(row.count);
    if (row.status === 'queued' || row.status === 'claimed' || row.status === 'sent' || row.status === 'failed' || row.status === 'skipped') {
      counts[row.status] += n;
    }
    if (row.status === 'skipped') {
      const reason = row.skip_reason ?? 'unknown';
      counts.skipped_by_reason[reason] = (counts.skipped_by_reason[reason] ?? 0) + n;
    }
  }
  return counts;
}
