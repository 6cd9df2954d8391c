import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { newId } from '../shared/ids.js';
import { AppError } from '../shared/errors.js';
import { csvLine, mergeProbableDuplicates, probableDuplicates, stateChangingMerges, type MergeReportRow, type ProbableDuplicate } from '../campaigns/index.js';
import { printTable, withRuntime, type Io } from './runtime.js';

const CSV_HEADER = ['kind', 'contact_id', 'other_contact_id', 'topic', 'before', 'after', 'at', 'source', 'provider_key', 'address', 'states'];

/**
 * `assent dedupe`: merges that changed someone's state (from the ledger's
 * `merged` events) and probable duplicates to review; `assent dedupe merge`
 * merges one pair an operator approved, most restrictive state winning.
 */
export function registerDedupeCommands(program: Command, io: Io): void {
  const command = program.command('dedupe').description('duplicate contacts: report, and merge probable duplicates an operator approves');
  command
    .command('report', { isDefault: true })
    .description('merges that changed a state, and probable duplicates (provider aliases) to review')
    .option('--json', 'print one JSON object')
    .option('--csv <file>', 'write both lists to a CSV file, one row per change or contact')
    .action(async (opts: { json?: boolean; csv?: string }) => {
      if (opts.json && opts.csv) throw new AppError('validation_failed', 'choose --json or --csv, not both');
      await withRuntime(io, {}, async (rt) => {
        const deps = { db: rt.storage.db };
        if (opts.csv) return writeCsv(io, resolve(io.cwd, opts.csv), stateChangingMerges(deps), probableDuplicates(deps));
        const merges: MergeReportRow[] = [];
        for await (const row of stateChangingMerges(deps)) merges.push(row);
        const probable: ProbableDuplicate[] = [];
        for await (const group of probableDuplicates(deps)) probable.push(group);
        if (opts.json) return io.out(JSON.stringify({ merges, probable_duplicates: probable }));
        printText(io, merges, probable);
      });
    });
  command
    .command('merge <keepId> <otherId>')
    .description('merge OTHER into KEEP (a probable duplicate pair): most restrictive state per topic, all evidence kept')
    .option('--json', 'print one JSON object')
    .action(async (keepId: string, otherId: string, opts: { json?: boolean }) => {
      await withRuntime(io, {}, async (rt) => {
        const outcome = await mergeProbableDuplicates({ db: rt.storage.db, clock: rt.clock, newId }, { keepId, otherId });
        if (opts.json) return io.out(JSON.stringify(outcome));
        io.out(`merged ${outcome.merged} into ${outcome.kept} (ledger event ${outcome.event_seq}); ${outcome.changed} topic(s) changed`);
        printTable(io, ['topic', 'kept', 'merged', 'now'], outcome.topics.map((t) => [t.topic, t.before ?? '-', t.other ?? '-', t.after]));
      });
    });
}

function printText(io: Io, merges: MergeReportRow[], probable: ProbableDuplicate[]): void {
  io.out(`Merges that changed a state: ${merges.length}`);
  if (merges.length > 0) {
    printTable(io, ['contact', 'topic', 'before', 'after', 'at', 'source'], merges.map((m) => [m.contact_id, m.topic, m.before ?? '-', m.after, m.at, m.source]));
  }
  io.out('');
  io.out(`Probable duplicates to review: ${probable.length} (merge one with: assent dedupe merge KEEP_ID OTHER_ID)`);
  for (const group of probable) {
    io.out(`  ${group.provider_key}`);
    for (const c of group.contacts) io.out(`    ${c.id}  ${c.address}  ${statesText(c.states) || 'no topics'}`);
  }
}

async function writeCsv(io: Io, file: string, merges: AsyncIterable<MergeReportRow>, probable: AsyncIterable<ProbableDuplicate>): Promise<void> {
  const fd = openSync(file, 'w');
  let changes = 0;
  let groups = 0;
  try {
    writeSync(fd, csvLine(CSV_HEADER) + '\r\n');
    for await (const m of merges) {
      writeSync(fd, csvLine(['merge', m.contact_id, m.other_contact_id, m.topic, m.before, m.after, m.at, m.source, null, null, null]) + '\r\n');
      changes += 1;
    }
    for await (const group of probable) {
      for (const c of group.contacts) {
        writeSync(fd, csvLine(['probable_duplicate', c.id, null, null, null, null, c.created_at, null, group.provider_key, c.address, statesText(c.states)]) + '\r\n');
      }
      groups += 1;
    }
  } finally {
    closeSync(fd);
  }
  io.out(`wrote ${changes} state change(s) and ${groups} probable duplicate group(s) to ${file}`);
}

function statesText(states: Record<string, string>): string {
  return Object.entries(states)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([topic, state]) => `${topic}=${state}`)
    .join(';');
}
