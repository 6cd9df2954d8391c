/**
 * An Assent instance for a benchmark: a data directory (secrets), a database
 * (SQLite file or a fresh PostgreSQL database) and the ASSENT_* environment
 * that points the real runtime, the CLI and `assent worker` at them. The
 * preparation goes through the services (topic, template, campaign), then
 * seeds the audience in bulk (seed.ts).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config/config.js';
import { loadSecrets } from '../../src/config/secrets.js';
import { createCampaign, createCampaignRenderer } from '../../src/campaigns/index.js';
import { loadCompiledTemplate, storeTemplate } from '../../src/templates/index.js';
import { addTopic, defaultConsentText } from '../../src/topics/index.js';
import { migrateToLatest, openStorage } from '../../src/storage/index.js';
import { systemClock } from '../../src/shared/clock.js';
import { newId } from '../../src/shared/ids.js';
import type { MasterKey } from '../../src/contacts/index.js';
import { repoRoot } from './procs.js';
import { benchAddress, seedConfirmedContacts } from './seed.js';

export const TEMPLATE_FILE = join(repoRoot, 'bench/lib/newsletter-16k.mjml');
export const TOPIC_SLUG = 'bench-news';
export const TEMPLATE_NAME = 'bench-16k';
export const SUBJECT = 'Our monthly newsletter';
export const FROM = 'Example News <news@news.example.org>';
export const PUBLIC_URL = 'https://news.example.org';

/** Tuning knobs a user may pass through (`ASSENT_SMTP_CONNECTIONS=20 npm run bench`); every other ASSENT_* of the shell is ignored. */
export const PASSED_THROUGH = ['ASSENT_SMTP_CONNECTIONS', 'ASSENT_WORKER_BATCH', 'ASSENT_WORKER_CONCURRENCY', 'ASSENT_WORKER_LEASE_SECONDS'];

export interface Instance {
  dataDir: string;
  databaseUrl: string;
  env: Record<string, string>;
  config: Readonly<Config>;
}

export function makeInstance(options: { dir: string; databaseUrl?: string; smtpPort?: number; dkimKeyFile?: string }): Instance {
  mkdirSync(options.dir, { recursive: true });
  const env: Record<string, string> = {
    ASSENT_DATA_DIR: options.dir,
    ASSENT_DATABASE_URL: options.databaseUrl ?? join(options.dir, 'assent.sqlite'),
    ASSENT_PUBLIC_URL: PUBLIC_URL,
    ASSENT_CONTROLLER_NAME: 'Example News Ltd',
    ASSENT_CONTROLLER_ADDRESS: '1 Example Street, 12345 Example Town',
    ASSENT_LOG_LEVEL: 'warn',
  };
  for (const key of PASSED_THROUGH) if (process.env[key]) env[key] = process.env[key]!;
  if (options.smtpPort !== undefined) env.ASSENT_SMTP_URL = `smtp://127.0.0.1:${options.smtpPort}`;
  if (options.dkimKeyFile) {
    env.ASSENT_DKIM_DOMAIN = 'news.example.org';
    env.ASSENT_DKIM_SELECTOR = 'bench';
    env.ASSENT_DKIM_KEY_FILE = options.dkimKeyFile;
  }
  return { dataDir: options.dir, databaseUrl: env.ASSENT_DATABASE_URL!, env, config: loadConfig(env, { cwd: repoRoot }) };
}

/** The child environment: the shell's, minus its ASSENT_* (except PASSED_THROUGH), plus the instance's. */
export function childEnv(instance: Instance, extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('ASSENT_') && !PASSED_THROUGH.includes(key)) env[key] = undefined;
  return { ...env, ...instance.env, ...extra };
}

export interface PreparedCampaign {
  campaignId: string;
  topicId: string;
  /** One real message as the worker builds it (bytes). */
  messageBytes: number;
  /** Length of the signed unsubscribe token in that message. */
  tokenLength: number;
  /** The template rendered once, links as placeholders, for the plain nodemailer loop. */
  html: string;
  text: string;
  seedMs: number;
}

/** Migrates, adds the topic and template, creates a draft campaign, seeds `recipients` confirmed contacts. */
export async function prepareCampaign(
  instance: Instance,
  input: { recipients: number; onProgress?: (done: number) => void },
): Promise<PreparedCampaign> {
  const { config } = instance;
  const storage = openStorage(instance.databaseUrl);
  let prepared: Omit<PreparedCampaign, 'seedMs'>;
  let masterKeys: MasterKey[] = [];
  try {
    await migrateToLatest(storage.db);
    const secrets = await loadSecrets(config);
    masterKeys = secrets.masterKeys;
    const deps = { db: storage.db, clock: systemClock, newId };
    const { topic } = await addTopic(deps, {
      slug: TOPIC_SLUG,
      name: 'Example News',
      description: 'The monthly newsletter (benchmark)',
      consentText: defaultConsentText({ controllerName: config.controller.name, topicName: 'Example News' }),
      locale: 'en',
    });
    await storeTemplate(deps, { name: TEMPLATE_NAME, source: readFileSync(TEMPLATE_FILE, 'utf8'), format: 'mjml', controller: config.controller });
    const campaign = await createCampaign(deps, { topicSlug: TOPIC_SLUG, templateName: TEMPLATE_NAME, subject: SUBJECT, fromAddress: FROM });

    // One message exactly as the worker would build it, to know its size.
    const render = createCampaignRenderer({
      db: storage.db,
      clock: systemClock,
      linkKeys: secrets.linkKeys,
      masterKeys: secrets.masterKeys,
      publicUrl: config.publicUrl,
      controller: config.controller,
      domain: config.mailDomain,
    });
    const sample = await render({ campaignId: campaign.id, contactId: newId(), address: benchAddress(0) });
    const raw = sample.raw.toString('utf8');
    const token = /List-Unsubscribe: <https:\/\/[^/]+\/u\/([^>]+)>/.exec(raw)?.[1] ?? '';

    const { compiled } = await loadCompiledTemplate({ db: storage.db }, { name: TEMPLATE_NAME, subject: SUBJECT });
    const rendered = compiled.render({
      contact: { email: '__EMAIL__' },
      unsubscribe_url: `${config.publicUrl}/u/__UNSUB__`,
      preferences_url: `${config.publicUrl}/p/__PREFS__`,
      campaign: { id: campaign.id, subject: SUBJECT },
      controller: { name: config.controller.name, email: config.controller.email, address: config.controller.address ?? null, policy_url: config.controller.policyUrl },
    });
    prepared = {
      campaignId: campaign.id,
      topicId: topic.id,
      messageBytes: sample.raw.length,
      tokenLength: token.length,
      html: rendered.html,
      text: rendered.text,
    };
  } finally {
    await storage.close();
  }
  const seeded = await seedConfirmedContacts({
    databaseUrl: instance.databaseUrl,
    topicId: prepared.topicId,
    count: input.recipients,
    masterKeys,
    ...(input.onProgress ? { onProgress: input.onProgress } : {}),
  });
  return { ...prepared, seedMs: seeded.ms };
}

/** Migrates and adds the import topic (the import bench). */
export async function prepareImportTarget(instance: Instance): Promise<void> {
  const storage = openStorage(instance.databaseUrl);
  try {
    await migrateToLatest(storage.db);
    await loadSecrets(instance.config);
    await addTopic(
      { db: storage.db, clock: systemClock, newId },
      {
        slug: TOPIC_SLUG,
        name: 'Example News',
        description: 'The monthly newsletter (benchmark)',
        consentText: defaultConsentText({ controllerName: instance.config.controller.name, topicName: 'Example News' }),
        locale: 'en',
      },
    );
  } finally {
    await storage.close();
  }
}

/** Assent's schema in a fresh SQLite file, for the design-minimum importer (made before its process starts, as the import's target is). */
export async function prepareSchemaOnly(sqliteFile: string): Promise<void> {
  const storage = openStorage(sqliteFile);
  try {
    await migrateToLatest(storage.db);
  } finally {
    await storage.close();
  }
}
