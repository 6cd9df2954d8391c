import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { AppError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import { importContacts, type ImportProgress, type ImportSummary } from '../contacts/import.service.js';
import { importFields } from '../contacts/import-mapping.js';
import { withRuntime, type Io } from './runtime.js';

/** Where the CLI can draw: a progress bar only on a terminal, the JSON summary when piped. */
export interface Terminal {
  stdoutIsTTY: boolean;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

const processTerminal = (): Terminal => ({ stdoutIsTTY: process.stdout.isTTY === true, stderr: process.stderr });

interface ImportOptions {
  topic: string;
  encoding: string;
  delimiter: string;
  map: string[];
  status: string;
  report?: string;
  batchSize: string;
  json?: boolean;
}

/**
 * `assent import FILE --topic SLUG`: exit 0 once the import completed (rows
 * it could not apply are in the report, not a failure), 2 on bad arguments,
 * an unknown topic or an unreadable file. With --json, or when stdout is not
 * a terminal, the last line of stdout is one JSON summary object.
 */
export function registerImportCommands(program: Command, io: Io, terminal: Terminal = processTerminal()): void {
  program
    .command('import <file>')
    .description('import contacts from CSV into a topic; subscribed rows become "imported" (re-permission only), opt-outs become suppressions')
    .requiredOption('--topic <slug>', 'topic the rows are imported for')
    .option('--encoding <name>', 'utf-8 or windows-1252 (a byte-order mark wins)', 'utf-8')
    .option('--delimiter <char>', 'comma, semicolon, tab, pipe or auto', 'auto')
    .option('--map <field=column,...>', `column for a field (${importFields.join(', ')})`, collect, [])
    .option('--status <status>', 'status of every row when the file has no status column (a row with an unsub_time, a clean_time or an opted_out flag is suppressed whatever this says)', 'subscribed')
    .option('--report <file>', 'per-row report (CSV; default FILE.report.csv in the current directory)')
    .option('--batch-size <n>', 'rows per transaction', '1000')
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, opts: ImportOptions) => {
      const batchSize = Number(opts.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new AppError('validation_failed', '--batch-size must be a positive integer');
      const report = resolve(io.cwd, opts.report ?? `${basename(file)}.report.csv`);
      const bar = terminal.stderr.isTTY ? progressBar(terminal) : null;
      const summary = await withRuntime(io, {}, async (rt) => {
        try {
          return await importContacts(
            { db: rt.storage.db, clock: rt.clock, newId, logger: rt.logger, keys: { masterKeys: rt.secrets.masterKeys, suppressionKeys: rt.secrets.suppressionKeys } },
            {
              path: resolve(io.cwd, file),
              topicSlug: opts.topic,
              encoding: opts.encoding,
              delimiter: opts.delimiter,
              map: opts.map,
              defaultStatus: opts.status,
              batchSize,
              reportPath: report,
              onProgress: bar?.update,
            },
          );
        } finally {
          bar?.stop();
        }
      });
      if (opts.json || !terminal.stdoutIsTTY) io.out(JSON.stringify(summary));
      else printSummary(io, summary);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function progressBar(terminal: Terminal): { update: (p: ImportProgress) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    { stream: terminal.stderr, format: 'importing [{bar}] {percentage}% | {rows} rows', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: (p) => {
      const total = p.totalBytes ?? p.bytesRead;
      if (!started) bar.start(total, 0, { rows: 0 });
      started = true;
      bar.update(Math.min(p.bytesRead, total), { rows: p.rowsDone });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

function printSummary(io: Io, s: ImportSummary): void {
  io.out(`import ${s.import_id} of ${s.file_name} into ${s.topic}: ${s.already_completed ? 'already completed, nothing changed' : 'completed'}`);
  if (s.resumed_from_row > 0 && !s.already_completed) io.out(`  resumed after row ${s.resumed_from_row}`);
  io.out(`  rows ${s.rows}: ${s.imported} imported, ${s.suppressed} suppressed, ${s.unchanged} unchanged, ${s.skipped} not subscribed, ${s.suppressed_skipped} suppressed or erased (skipped), ${s.errors} errors`);
  if (s.warnings > 0) io.out(`  ${s.warnings} imported rows declare opt-in times or IPs that cannot be read (kept as written; listed in the report)`);
  io.out(`  contacts created ${s.contacts_created}, merges that changed a state ${s.merged}`);
  io.out(`  imported contacts may receive a re-permission request only; report: ${s.report}`);
}
