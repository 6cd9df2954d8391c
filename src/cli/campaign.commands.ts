import type { Command } from 'commander';
import { newId } from '../shared/ids.js';
import { AppError } from '../shared/errors.js';
import {
  campaignStatus,
  cancelCampaign,
  createCampaign,
  findCampaign,
  pauseCampaign,
  preflightCampaign,
  resumeCampaign,
  scheduleCampaign,
  startCampaign,
  type CampaignDeps,
} from '../campaigns/index.js';
import type { Runtime } from '../main.js';
import { withRuntime, type Io } from './runtime.js';

/**
 * `assent campaign …`. The commands only change rows: whichever worker runs
 * on the same database (the one inside `npm start`, or `assent worker`)
 * picks a started campaign up.
 */
export function registerCampaignCommands(program: Command, io: Io): void {
  const campaign = program.command('campaign').description('campaigns to a topic\'s consenting audience');
  campaign
    .command('create')
    .description('create a draft campaign; prints its id alone on the last line')
    .requiredOption('--topic <slug>', 'topic whose confirmed audience receives it')
    .requiredOption('--template <name>', 'template (its newest version is pinned to the campaign)')
    .requiredOption('--subject <text>', 'subject line (Liquid allowed)')
    .requiredOption('--from <address>', 'From address, e.g. "News <news@example.com>"')
    .action(async (opts: { topic: string; template: string; subject: string; from: string }) => {
      await withRuntime(io, {}, async (rt) => {
        const { version, lint } = await preflightCampaign(rt.storage, {
          templateName: opts.template,
          subject: opts.subject,
          controller: rt.config.controller,
        });
        for (const problem of lint.problems) io.err(`note: ${problem.message}`);
        const created = await createCampaign(deps(rt), {
          topicSlug: opts.topic,
          templateName: opts.template,
          templateVersion: version,
          subject: opts.subject,
          fromAddress: opts.from,
        });
        io.out(created.id);
      });
    });
  campaign
    .command('schedule <id>')
    .description('send at a time (ISO 8601); a running worker starts it then')
    .requiredOption('--at <time>', 'when, e.g. 2026-12-01T09:00:00Z')
    .action(async (id: string, opts: { at: string }) => {
      const at = new Date(opts.at);
      if (Number.isNaN(at.getTime())) throw new AppError('validation_failed', `--at "${opts.at}" is not a date`);
      await withRuntime(io, {}, async (rt) => {
        await checkTemplate(rt, id);
        report(io, await scheduleCampaign(deps(rt), id, at));
      });
    });
  campaign
    .command('start <id>')
    .description('start sending now')
    .action(async (id: string) => {
      await withRuntime(io, {}, async (rt) => {
        await checkTemplate(rt, id);
        report(io, await startCampaign(deps(rt), id));
      });
    });
  for (const [name, act, help] of [
    ['pause', pauseCampaign, 'stop claiming new batches'],
    ['resume', resumeCampaign, 'continue a paused campaign'],
    ['cancel', cancelCampaign, 'stop for good; queued deliveries are skipped'],
  ] as const) {
    campaign
      .command(`${name} <id>`)
      .description(help)
      .action(async (id: string) => {
        await withRuntime(io, {}, async (rt) => report(io, await act(deps(rt), id)));
      });
  }
  campaign
    .command('status <id>')
    .description('status and delivery counts')
    .option('--json', 'print one JSON object')
    .action(async (id: string, opts: { json?: boolean }) => {
      await withRuntime(io, {}, async (rt) => {
        const status = await campaignStatus(rt.storage, id);
        if (opts.json) return io.out(JSON.stringify(status));
        io.out(`campaign ${status.id}: ${status.status}`);
        io.out(`  queued ${status.queued}, in flight ${status.claimed}, sent ${status.sent}, failed ${status.failed}, skipped ${status.skipped}`);
        for (const [reason, n] of Object.entries(status.skipped_by_reason)) io.out(`  skipped ${reason}: ${n}`);
      });
    });
}

function deps(rt: Runtime): CampaignDeps {
  return { db: rt.storage.db, clock: rt.clock, newId };
}

async function checkTemplate(rt: Runtime, id: string): Promise<void> {
  const found = await findCampaign(rt.storage.db, id);
  if (!found) throw new AppError('not_found', `no campaign "${id}"`);
  if (found.kind !== 'regular') return;
  await preflightCampaign(rt.storage, {
    templateName: found.template_name,
    templateVersion: found.template_version,
    subject: found.subject,
    controller: rt.config.controller,
  });
}

function report(io: Io, campaign: { id: string; status: string }): void {
  io.out(`campaign ${campaign.id}: ${campaign.status}`);
}
