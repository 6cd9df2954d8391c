import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { newId } from '../shared/ids.js';
import { AppError } from '../shared/errors.js';
import { addConsentText, addTopic, defaultConsentText, listTopics } from '../topics/index.js';
import { addForm, listForms } from '../forms/index.js';
import { printTable, withRuntime, type Io } from './runtime.js';

/** `assent topic …` and `assent form …`: what people can consent to, and where. */
export function registerCatalogCommands(program: Command, io: Io): void {
  const topic = program.command('topic').description('purposes people can consent to');
  topic
    .command('add <slug>')
    .description('add a topic with its first consent text')
    .requiredOption('--name <name>', 'name shown to people')
    .requiredOption('--description <text>', 'what the topic is for (its purpose)')
    .option('--text <text>', 'the exact consent text shown beside the checkbox')
    .option('--text-file <file>', 'read the consent text from a file')
    .option('--locale <locale>', 'language of the consent text', 'en')
    .option('--private', 'hide the topic from the preference centre')
    .action(async (slug: string, opts: { name: string; description: string; text?: string; textFile?: string; locale: string; private?: boolean }) => {
      await withRuntime(io, {}, async (rt) => {
        const consentText =
          readText(io, opts) ?? defaultConsentText({ controllerName: rt.config.controller.name, topicName: opts.name, locale: opts.locale });
        const { topic: created, text } = await addTopic(deps(rt), {
          slug,
          name: opts.name,
          description: opts.description,
          isPublic: !opts.private,
          consentText,
          locale: opts.locale,
        });
        io.out(`topic ${created.slug} added; consent text v${text.version} sha256:${text.sha256}`);
      });
    });
  topic
    .command('text <slug>')
    .description('add a new consent text version to a topic (earlier versions stay unchanged)')
    .option('--text <text>', 'the exact consent text')
    .option('--text-file <file>', 'read the consent text from a file')
    .option('--locale <locale>', 'language of the consent text', 'en')
    .action(async (slug: string, opts: { text?: string; textFile?: string; locale: string }) => {
      const body = readText(io, opts);
      if (!body) throw new AppError('validation_failed', 'give --text or --text-file');
      await withRuntime(io, {}, async (rt) => {
        const text = await addConsentText(deps(rt), { topicSlug: slug, body, locale: opts.locale });
        io.out(`topic ${slug}: consent text v${text.version} sha256:${text.sha256}`);
      });
    });
  topic
    .command('list')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withRuntime(io, {}, async (rt) => {
        const topics = await listTopics(deps(rt));
        if (opts.json) return io.out(JSON.stringify(topics.map(({ id, slug, name, description, is_public, consent_text_versions }) => ({ id, slug, name, description, public: is_public === 1, consent_text_versions }))));
        printTable(io, ['SLUG', 'NAME', 'PUBLIC', 'TEXT VERSIONS'], topics.map((t) => [t.slug, t.name, t.is_public ? 'yes' : 'no', t.consent_text_versions]));
      });
    });

  const form = program.command('form').description('sign-up forms, served at /f/<slug>');
  form
    .command('add <slug>')
    .description('add a form, or a new version of it, offering one unticked box per topic')
    .requiredOption('--title <title>', 'heading of the form')
    // Commander only treats "<name...>" as variadic when a word character precedes the dots.
    .requiredOption('--topic <slug...>', 'topic to offer, as slug or slug@version to pin a consent text version; repeat per topic')
    .action(async (slug: string, opts: { title: string; topic: string[] }) => {
      const topics = opts.topic.map((spec) => {
        const [topicSlug = '', version] = spec.split('@');
        return { slug: topicSlug, textVersion: version === undefined ? undefined : Number(version) };
      });
      await withRuntime(io, {}, async (rt) => {
        const loaded = await addForm(deps(rt), { slug, title: opts.title, topics });
        io.out(`form ${loaded.form.slug} v${loaded.form.version}: ${rt.config.publicUrl}/f/${loaded.form.slug}`);
        for (const t of loaded.topics) io.out(`  ${t.topic_slug}: consent text v${t.text_version} sha256:${t.text_sha256}`);
      });
    });
  form
    .command('list')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withRuntime(io, {}, async (rt) => {
        const forms = await listForms(deps(rt));
        const rows = forms.map((f) => ({
          slug: f.form.slug,
          version: f.form.version,
          title: f.form.title,
          url: `${rt.config.publicUrl}/f/${f.form.slug}`,
          topics: f.topics.map((t) => ({ slug: t.topic_slug, consent_text_version: t.text_version, consent_text_sha256: t.text_sha256 })),
        }));
        if (opts.json) return io.out(JSON.stringify(rows));
        printTable(io, ['SLUG', 'VERSION', 'TOPICS', 'URL'], rows.map((r) => [r.slug, r.version, r.topics.map((t) => `${t.slug}@${t.consent_text_version}`).join(','), r.url]));
      });
    });
}

function deps(rt: { storage: { db: import('../storage/index.js').Db }; clock: import('../shared/clock.js').Clock }) {
  return { db: rt.storage.db, clock: rt.clock, newId };
}

function readText(io: Io, opts: { text?: string; textFile?: string }): string | undefined {
  if (opts.text !== undefined && opts.textFile !== undefined) throw new AppError('validation_failed', 'give --text or --text-file, not both');
  if (opts.textFile === undefined) return opts.text;
  try {
    return readFileSync(resolve(io.cwd, opts.textFile), 'utf8');
  } catch {
    throw new AppError('validation_failed', `cannot read ${opts.textFile}`);
  }
}
