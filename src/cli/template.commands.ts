import { resolve } from 'node:path';
import type { Command } from 'commander';
import { newId } from '../shared/ids.js';
import { AppError } from '../shared/errors.js';
import { addTemplate, listTemplates, previewTemplate, type LintResult, type TemplateFormat } from '../templates/index.js';
import { printTable, withRuntime, type Io } from './runtime.js';
import type { Runtime } from '../main.js';

/** `assent template …`: campaign templates (MJML or HTML with Liquid), versioned. */
export function registerTemplateCommands(program: Command, io: Io): void {
  const template = program.command('template').description('campaign templates: MJML or HTML with Liquid merge fields');
  template
    .command('add <name>')
    .description('validate a template file and store it as the next version of NAME')
    .requiredOption('--file <file>', 'the template (.mjml or .html)')
    .option('--format <format>', 'mjml or html (default: from the file)')
    .action(async (name: string, opts: { file: string; format?: string }) => {
      const format = parseFormat(opts.format);
      await withRuntime(io, {}, async (rt) => {
        const added = await addTemplate(deps(rt), { name, file: resolve(io.cwd, opts.file), format, controller: rt.config.controller });
        const t = added.template;
        const what = added.created ? 'added' : 'unchanged (same as the newest version)';
        io.out(`template ${t.name} v${t.version} (${t.format}) ${what}; sha256:${t.sha256}`);
        printNotices(io, added.lint);
      });
    });
  template
    .command('list')
    .description('the newest version of every template')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withRuntime(io, {}, async (rt) => {
        const rows = await listTemplates(deps(rt));
        if (opts.json) return io.out(JSON.stringify(rows.map(({ name, version, format, sha256, created_at }) => ({ name, version, format, sha256, created_at }))));
        printTable(io, ['NAME', 'VERSION', 'FORMAT', 'CREATED', 'SHA256'], rows.map((r) => [r.name, r.version, r.format, r.created_at, r.sha256.slice(0, 16)]));
      });
    });
  template
    .command('preview <name>')
    .description('render for a contact (or sample data) into FILE (HTML) and FILE.txt (text part)')
    .requiredOption('--out <file>', 'where to write the HTML')
    .option('--contact <id>', 'render with this contact\'s data instead of sample data')
    .option('--version <n>', 'a stored version (default: the newest)')
    .option('--subject <text>', 'subject line (Liquid; default: the template\'s <title>)')
    .action(async (name: string, opts: { out: string; contact?: string; version?: string; subject?: string }) => {
      const version = parseVersion(opts.version);
      await withRuntime(io, {}, async (rt) => {
        const preview = await previewTemplate(
          { db: rt.storage.db, publicUrl: rt.config.publicUrl, controller: rt.config.controller, masterKeys: rt.secrets.masterKeys },
          { name, version, contactId: opts.contact, subject: opts.subject, outFile: resolve(io.cwd, opts.out) },
        );
        io.out(`template ${preview.template.name} v${preview.template.version} rendered for ${opts.contact ? `contact ${opts.contact}` : 'sample data'}`);
        io.out(`subject: ${preview.subject}`);
        io.out(`html: ${preview.htmlFile}`);
        io.out(`text: ${preview.textFile}`);
        printNotices(io, preview.lint);
      });
    });
}

function deps(rt: Runtime) {
  return { db: rt.storage.db, clock: rt.clock, newId };
}

function printNotices(io: Io, lint: LintResult): void {
  for (const p of lint.problems) io.err(`${p.severity}: ${p.message}`);
}

function parseFormat(value: string | undefined): TemplateFormat | undefined {
  if (value === undefined || value === 'mjml' || value === 'html') return value;
  throw new AppError('validation_failed', '--format must be mjml or html');
}

function parseVersion(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d{0,8}$/.test(value)) throw new AppError('validation_failed', '--version must be a positive whole number');
  return Number(value);
}
