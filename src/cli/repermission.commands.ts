import type { Command } from 'commander';
import { newId } from '../shared/ids.js';
import { AppError } from '../shared/errors.js';
import { createRepermissionCampaign, repermissionStatus, startRepermissionCampaign, type CampaignDeps } from '../campaigns/index.js';
import type { Runtime } from '../main.js';
import { withRuntime, type Io } from './runtime.js';

/**
 * `assent repermission …`: the one campaign that may reach imported
 * contacts, asking them to confirm before a deadline (issue 5 point 4). The
 * mail is Assent's own; a running worker sends it, makes the reminder and
 * lapses the unanswered at the deadline. Pause, resume and cancel are the
 * ordinary `assent campaign` commands.
 */
export function registerRepermissionCommands(program: Command, io: Io): void {
  const command = program.command('repermission').description('ask imported contacts to confirm before a deadline');
  command
    .command('create')
    .description('create a re-permission campaign; prints its id alone on the last line')
    .requiredOption('--topic <slug>', 'topic whose imported contacts are asked')
    .requiredOption('--deadline <time>', 'ISO 8601; after it the unanswered lapse, e.g. 2026-06-30T23:59:59Z')
    .option('--reminder <time>', 'one reminder, before the deadline, to those who have not answered')
    .requiredOption('--from <address>', 'From address, e.g. "News <news@example.com>"')
    .option('--start', 'start sending at once')
    .action(async (opts: { topic: string; deadline: string; reminder?: string; from: string; start?: boolean }) => {
      const deadline = parseTime('--deadline', opts.deadline);
      const reminderAt = opts.reminder === undefined ? null : parseTime('--reminder', opts.reminder);
      await withRuntime(io, {}, async (rt) => {
        const { campaign } = await createRepermissionCampaign(deps(rt), { topicSlug: opts.topic, deadline, reminderAt, fromAddress: opts.from });
        if (opts.start) await startRepermissionCampaign(deps(rt), campaign.id);
        io.out(campaign.id);
      });
    });
  command
    .command('start <id>')
    .description('start sending now (refused once the deadline has passed)')
    .action(async (id: string) => {
      await withRuntime(io, {}, async (rt) => {
        const started = await startRepermissionCampaign(deps(rt), id);
        io.out(`campaign ${started.id}: ${started.status}`);
      });
    });
  command
    .command('status <id>')
    .description('deadline, reminder, deliveries, and how the audience answered')
    .option('--json', 'print one JSON object')
    .action(async (id: string, opts: { json?: boolean }) => {
      await withRuntime(io, {}, async (rt) => {
        const s = await repermissionStatus(rt.storage, id);
        if (opts.json) return io.out(JSON.stringify(s));
        io.out(`re-permission campaign ${s.id}: ${s.status}, deadline ${s.deadline_at}${s.closed_at ? ` (closed ${s.closed_at})` : ''}`);
        io.out(`  request: queued ${s.deliveries.queued}, sent ${s.deliveries.sent}, failed ${s.deliveries.failed}, skipped ${s.deliveries.skipped}`);
        for (const [reason, n] of Object.entries(s.deliveries.skipped_by_reason)) io.out(`    skipped ${reason}: ${n}`);
        if (s.reminder) io.out(`  reminder ${s.reminder.id}: ${s.reminder.status}, sent ${s.reminder.sent}, skipped ${s.reminder.skipped}`);
        else if (s.reminder_at) io.out(`  reminder due ${s.reminder_at}`);
        io.out(`  audience now: ${Object.entries(s.audience).map(([state, n]) => `${state} ${n}`).join(', ') || 'empty'}`);
      });
    });
}

function deps(rt: Runtime): CampaignDeps {
  return { db: rt.storage.db, clock: rt.clock, newId };
}

function parseTime(option: string, value: string): Date {
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) throw new AppError('validation_failed', `${option} "${value}" is not a date`);
  return at;
}
