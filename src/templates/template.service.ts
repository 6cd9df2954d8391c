import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AppError } from '../shared/errors.js';
import { sha256Hex } from '../shared/crypto.js';
import type { Clock } from '../shared/clock.js';
import type { IdGenerator } from '../shared/ids.js';
import type { Db } from '../storage/index.js';
import { findContactById, readContactNames, type MasterKey } from '../contacts/index.js';
import {
  compileTemplate,
  detectFormat,
  lintTemplate,
  sampleContext,
  templateNamePattern,
  type CompiledTemplate,
  type LintResult,
  type RenderContext,
  type RenderedMessage,
  type TemplateFormat,
} from './template.js';
import {
  findLatestTemplate,
  findTemplateVersion,
  insertTemplate,
  listLatestTemplates,
  type TemplateRow,
  type TemplateSummary,
} from './template.repository.js';

export interface TemplateDeps {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
}

/** Who sends: shown by templates as `{{ controller.* }}` and in the footer (GDPR Art. 13(1)(a)). */
export interface ControllerSettings {
  name: string;
  email?: string | undefined;
  address?: string | undefined;
  policyUrl?: string | undefined;
}

export interface AddedTemplate {
  template: TemplateRow;
  /** False when the newest version already had exactly this source and format. */
  created: boolean;
  lint: LintResult;
}

/** Reads a template file (MJML or HTML with Liquid) and stores it as the next version of `name`. */
export async function addTemplate(
  deps: TemplateDeps,
  input: { name: string; file: string; format?: TemplateFormat | undefined; controller?: ControllerSettings | undefined },
): Promise<AddedTemplate> {
  let source: string;
  try {
    source = readFileSync(input.file, 'utf8');
  } catch {
    throw new AppError('validation_failed', `cannot read ${input.file}`);
  }
  // A byte-order mark is an editor artefact, not content: the hash names the text.
  source = source.replace(/^\uFEFF/, '');
  return storeTemplate(deps, { ...input, source, format: input.format ?? detectFormat(input.file, source) });
}

/**
 * Validates by compiling and linting with sample data, then stores a new
 * version. A template the lint fails is refused here, before any campaign
 * could use it; notices (such as the footer being appended) are returned.
 */
export async function storeTemplate(
  deps: TemplateDeps,
  input: { name: string; source: string; format: TemplateFormat; controller?: ControllerSettings | undefined },
): Promise<AddedTemplate> {
  if (!templateNamePattern.test(input.name)) {
    throw new AppError('validation_failed', "name: use lower-case letters, digits, '.', '_' and '-' (1-64 characters)", { field: 'name' });
  }
  if (input.source.trim() === '') throw new AppError('validation_failed', 'the template is empty');
  const compiled = await compileTemplate({ format: input.format, source: input.source });
  const lint = lintTemplate(compiled, sampleContext({ controller: controllerContext(input.controller) }));
  if (!lint.ok) {
    const listed = lint.problems.filter((p) => p.severity === 'error').map((p) => `  ${p.code}: ${p.message}`);
    throw new AppError('validation_failed', `the template fails the compliance lint:\n${listed.join('\n')}`, { problems: lint.problems });
  }
  const sha256 = sha256Hex(input.source);
  const result = await deps.db.transaction().execute(async (trx) => {
    const latest = await findLatestTemplate(trx, input.name);
    if (latest && latest.sha256 === sha256 && latest.format === input.format) return { template: latest, created: false };
    const row: TemplateRow = {
      id: deps.newId(),
      name: input.name,
      version: (latest?.version ?? 0) + 1,
      format: input.format,
      source: input.source,
      sha256,
      created_at: deps.clock.now().toISOString(),
    };
    await insertTemplate(trx, row).catch((error: unknown) => {
      // Two writers adding the same name at once both chose this version number.
      if (isUniqueViolation(error)) throw new AppError('conflict', `template "${input.name}" changed while adding; try again`);
      throw error;
    });
    return { template: row, created: true };
  });
  return { ...result, lint };
}

export type TemplateListing = TemplateSummary;

/** The newest version of every template. */
export async function listTemplates(deps: Pick<TemplateDeps, 'db'>): Promise<TemplateListing[]> {
  return listLatestTemplates(deps.db);
}

/** A stored version (the newest when `version` is absent). */
export async function loadTemplate(deps: Pick<TemplateDeps, 'db'>, input: { name: string; version?: number | null | undefined }): Promise<TemplateRow> {
  const row =
    input.version === undefined || input.version === null
      ? await findLatestTemplate(deps.db, input.name)
      : await findTemplateVersion(deps.db, input.name, input.version);
  if (!row) throw new AppError('not_found', `no template "${input.name}"${input.version ? ` version ${input.version}` : ''}`);
  return row;
}

/** A stored version, compiled: what a campaign does once before rendering per recipient. */
export async function loadCompiledTemplate(
  deps: Pick<TemplateDeps, 'db'>,
  input: { name: string; version?: number | null | undefined; subject?: string | undefined },
): Promise<{ template: TemplateRow; compiled: CompiledTemplate }> {
  const template = await loadTemplate(deps, input);
  return { template, compiled: await compileTemplate({ format: template.format, source: template.source, subject: input.subject }) };
}

export interface PreviewSettings {
  publicUrl: string;
  controller: ControllerSettings;
  /** Open a stored contact's sealed names. */
  masterKeys: MasterKey[];
}

export interface Preview extends RenderedMessage {
  template: TemplateRow;
  lint: LintResult;
  htmlFile: string;
  textFile: string;
}

/**
 * Renders a template for one stored contact, or for sample data, and writes
 * the HTML to `outFile` and the text part to `outFile.txt`. The link URLs
 * are placeholders under the public URL: real ones are signed per recipient
 * when a campaign sends.
 */
export async function previewTemplate(
  deps: Pick<TemplateDeps, 'db'> & PreviewSettings,
  input: { name: string; version?: number | undefined; contactId?: string | undefined; subject?: string | undefined; outFile: string },
): Promise<Preview> {
  const { template, compiled } = await loadCompiledTemplate(deps, input);
  const controller = controllerContext(deps.controller);
  const sample = sampleContext({ controller });
  const contact = input.contactId === undefined ? sample.contact : await contactFields(deps, input.contactId);
  const context: RenderContext = {
    ...sample,
    contact,
    campaign: { subject: input.subject ?? '', template: template.name },
    unsubscribe_url: `${deps.publicUrl}/unsubscribe/preview`,
    preferences_url: `${deps.publicUrl}/preferences/preview`,
  };
  const rendered = compiled.render(context);
  const textFile = `${input.outFile}.txt`;
  mkdirSync(dirname(input.outFile), { recursive: true });
  writeFileSync(input.outFile, rendered.html);
  writeFileSync(textFile, rendered.text);
  return { ...rendered, template, lint: lintTemplate(compiled, { ...sample, contact }), htmlFile: input.outFile, textFile };
}

/** The fields a template sees for a stored contact, as a campaign would render them; names it has none of render empty. */
async function contactFields(deps: { db: Db; masterKeys: MasterKey[] }, contactId: string): Promise<Record<string, string | null>> {
  const contact = await findContactById(deps.db, contactId);
  if (!contact) throw new AppError('not_found', `no contact "${contactId}"`);
  // An erased person's data is gone (GDPR Art. 17); nothing is rendered for them.
  if (contact.erased_at !== null || contact.address === null) throw new AppError('not_found', `contact "${contactId}" has been erased`);
  const names = (await readContactNames(deps.db, deps.masterKeys, [contact.id])).get(contact.id);
  return { email: contact.address, locale: contact.locale, first_name: names?.first_name ?? null, last_name: names?.last_name ?? null };
}

function controllerContext(controller: ControllerSettings | undefined): RenderContext['controller'] {
  if (!controller) return { name: 'Sample Controller', address: null, email: null, policy_url: null };
  return { name: controller.name, address: controller.address ?? null, email: controller.email ?? null, policy_url: controller.policyUrl ?? null };
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
