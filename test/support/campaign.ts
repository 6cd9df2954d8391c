/**
 * Helpers for campaign tests: confirmed audiences (through the real sign-up
 * services, or many at once by appending requested + confirmed events to the
 * ledger as those services would), the example newsletter template, a
 * started campaign, polling, and `assent worker` child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { buildRuntime, type Runtime } from '../../src/main.js';
import { startWorker } from '../../src/worker-root.js';
import { campaignStatus, createCampaign, preflightCampaign, startCampaign, type Campaign, type CampaignStatusReport } from '../../src/campaigns/index.js';
import { withLedger, type EventDraft } from '../../src/consent/index.js';
import { createContactKey, parseAddress, sealPersonal } from '../../src/contacts/index.js';
import { confirmSubscription, submitSignup, addForm } from '../../src/forms/index.js';
import { addTemplate } from '../../src/templates/index.js';
import { addTopic, defaultConsentText, findTopicBySlug } from '../../src/topics/index.js';
import { newId } from '../../src/shared/ids.js';
import type { Db } from '../../src/storage/index.js';
import { confirmLinkFrom } from './http.js';
import { repoRoot } from './server-process.js';
import type { TestRuntime } from './runtime.js';

export const newsletterTemplate = join(repoRoot, 'examples', 'newsletter.mjml');

/** Polls `check` until it returns a value other than undefined/false; fails naming `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number; describe?: () => string | Promise<string> } = {},
): Promise<T> {
  const until = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) {
      const detail = options.describe ? `\n${await options.describe()}` : '';
      throw new Error(`timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${what}${detail}`);
    }
    await sleep(options.intervalMs ?? 25);
  }
}

/** A topic with its first consent text and a form offering it. */
export async function addTopicWithForm(runtime: Runtime, input: { slug: string; name: string }): Promise<string> {
  const deps = { db: runtime.storage.db, clock: runtime.clock, newId };
  const { topic } = await addTopic(deps, {
    slug: input.slug,
    name: input.name,
    description: `${input.name} from ${runtime.config.controller.name}.`,
    consentText: defaultConsentText({ controllerName: runtime.config.controller.name, topicName: input.name }),
    locale: 'en',
  });
  await addForm(deps, { slug: input.slug, title: input.name, topics: [{ slug: input.slug }] });
  return topic.id;
}

export async function topicIdOf(db: Db, slug: string): Promise<string> {
  const topic = await findTopicBySlug(db, slug);
  if (!topic) throw new Error(`no topic ${slug}`);
  return topic.id;
}

/**
 * The real double opt-in: submitSignup on a form, the confirmation mail read
 * from wherever the runtime's transport put it (`inbox`), confirmSubscription
 * with its token. Returns the contact id; `confirm: false` stops at requested.
 */
export async function signUp(
  runtime: Runtime,
  input: { address: string; form: string; topics: string[]; inbox: (address: string) => Promise<Buffer>; confirm?: boolean },
): Promise<string> {
  const client = { ip: '203.0.113.20', userAgent: 'campaign-test' };
  const result = await submitSignup(runtime.signup, { formSlug: input.form, address: input.address, topics: input.topics, locale: 'en', ...client });
  if (result.kind !== 'accepted' || !result.sent) throw new Error(`sign-up of ${input.address} was not sent: ${JSON.stringify(result)}`);
  const { token } = confirmLinkFrom(await input.inbox(input.address));
  if (input.confirm !== false) {
    const confirmed = await confirmSubscription(runtime.signup, { token, ...client });
    if (!confirmed.confirmed) throw new Error(`confirmation of ${input.address} failed`);
  }
  const contact = await runtime.storage.db.selectFrom('contacts').select('id').where('address', '=', input.address).executeTakeFirstOrThrow();
  return contact.id;
}

export interface SeededContact {
  id: string;
  address: string;
  matchKey: string;
}

/**
 * Many confirmed contacts at once: each gets a contact row, an evidence key,
 * and `requested` then `confirmed` events for the topic with sealed evidence,
 * appended through the ledger (so the chain and the projection are what the
 * sign-up services would leave), `perTransaction` contacts per transaction.
 */
export async function seedConfirmedContacts(
  runtime: Runtime,
  input: { topicSlug: string; addresses: string[]; perTransaction?: number },
): Promise<SeededContact[]> {
  const db = runtime.storage.db;
  const topicId = await topicIdOf(db, input.topicSlug);
  const now = runtime.clock.now();
  const seeded: SeededContact[] = [];
  const size = input.perTransaction ?? 200;
  for (let start = 0; start < input.addresses.length; start += size) {
    const chunk = input.addresses.slice(start, start + size).map((raw) => {
      const parsed = parseAddress(raw);
      if (!parsed.ok) throw new Error(`bad test address ${raw}: ${parsed.message}`);
      return { id: newId(), parsed };
    });
    await withLedger(db, async (trx, ledger) => {
      await trx
        .insertInto('contacts')
        .values(chunk.map(({ id, parsed }) => ({ id, address: parsed.address, match_key: parsed.matchKey, provider_key: parsed.providerKey, locale: 'en', created_at: now.toISOString(), erased_at: null })))
        .execute();
      const events: EventDraft[] = [];
      const keys = [];
      for (const { id, parsed } of chunk) {
        const key = createContactKey(runtime.secrets.masterKeys, id);
        keys.push({ contact_id: id, wrapped_key: key.wrapped, created_at: now.toISOString() });
        const personal = sealPersonal(key.key, { address: parsed.address, ip: '203.0.113.30', user_agent: 'campaign-test seed' });
        const evidence = { actor: 'subject', personal, seeded_by: 'test/support/campaign.ts' };
        events.push(
          { id: newId(), contactId: id, topicId, type: 'requested', occurredAt: now, evidence: { ...evidence, method: 'web_form', form_slug: input.topicSlug } },
          { id: newId(), contactId: id, topicId, type: 'confirmed', occurredAt: now, evidence: { ...evidence, method: 'double_opt_in' } },
        );
      }
      await trx.insertInto('contact_keys').values(keys).execute();
      await ledger.append(events);
    });
    seeded.push(...chunk.map(({ id, parsed }) => ({ id, address: parsed.address, matchKey: parsed.matchKey })));
  }
  return seeded;
}

/** Adds examples/newsletter.mjml as template `name` (addTemplate compiles and lints it). */
export async function addNewsletterTemplate(runtime: Runtime, name = 'newsletter'): Promise<void> {
  const { controller } = runtime.config;
  await addTemplate(
    { db: runtime.storage.db, clock: runtime.clock, newId },
    { name, file: newsletterTemplate, controller: { name: controller.name, email: controller.email, address: controller.address, policyUrl: controller.policyUrl } },
  );
}

export interface CampaignInput {
  topicSlug: string;
  template?: string;
  subject?: string;
  from?: string;
}

/** As `assent campaign create` does: preflight (pins the template version), then a draft. */
export async function draftCampaign(runtime: Runtime, input: CampaignInput): Promise<Campaign> {
  const template = input.template ?? 'newsletter';
  const subject = input.subject ?? 'News for {{ contact.email }}';
  const { version } = await preflightCampaign(runtime.storage, { templateName: template, subject, controller: runtime.config.controller });
  return createCampaign(
    { db: runtime.storage.db, clock: runtime.clock, newId },
    { topicSlug: input.topicSlug, templateName: template, templateVersion: version, subject, fromAddress: input.from ?? 'Example News <news@assent.example.org>' },
  );
}

/** Drafts and starts (materialises) a campaign; returns its id. */
export async function startNewCampaign(runtime: Runtime, input: CampaignInput): Promise<string> {
  const campaign = await draftCampaign(runtime, input);
  await startCampaign({ db: runtime.storage.db, clock: runtime.clock, newId }, campaign.id);
  return campaign.id;
}

export function statusOf(runtime: Runtime, campaignId: string): Promise<CampaignStatusReport> {
  return campaignStatus({ db: runtime.storage.db }, campaignId);
}

/** Waits until the campaign is 'sent' (every delivery final and a worker has closed it). */
export async function waitUntilSent(runtime: Runtime, campaignId: string, timeoutMs = 60_000): Promise<CampaignStatusReport> {
  return waitFor(`campaign ${campaignId} to be sent`, async () => {
    const status = await statusOf(runtime, campaignId);
    return status.status === 'sent' ? status : undefined;
  }, { timeoutMs, intervalMs: 50, describe: async () => JSON.stringify(await statusOf(runtime, campaignId)) });
}

/** Runs an in-process worker (the one `npm start` runs) until the campaign is 'sent', then stops it. */
export async function sendToCompletion(runtime: Runtime, campaignId: string): Promise<CampaignStatusReport> {
  const worker = startWorker(runtime, { idleMs: 25 });
  try {
    return await waitUntilSent(runtime, campaignId);
  } finally {
    await worker.stop();
  }
}

export function deliveriesOf(db: Db, campaignId: string) {
  return db.selectFrom('deliveries').selectAll().where('campaign_id', '=', campaignId).orderBy('contact_id').execute();
}

/**
 * A second runtime on the same data directory and database as `rt`, with
 * extra settings (a DKIM key, a batch size): the worker in it sends through
 * the transport its configuration names.
 */
export async function deriveRuntime(rt: TestRuntime, env: Record<string, string>): Promise<Runtime> {
  const config = loadConfig({ ...rt.env, ...env }, { cwd: rt.dataDir });
  const logger = pino({ level: 'warn' }, { write: (line: string) => void rt.logs.push(line) });
  return buildRuntime(config, { clock: rt.clock, logger });
}

/** The parent's environment without ASSENT_* keys, so the developer's settings cannot leak in. */
function baseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('ASSENT_')) out[key] = value;
  }
  return out;
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves once the "worker … running" line is out. */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then the exit; rejects unless the code is 0. Returns the totals it printed. */
  stop(timeoutMs?: number): Promise<{ sent: number; retried: number; failed: number }>;
  /** SIGKILL if still running (no assertion). */
  dispose(): Promise<void>;
}

/** `node bin/assent.mjs worker` with the given ASSENT_* environment. */
export function spawnWorker(env: Record<string, string>): WorkerProcess {
  let out = '';
  let err = '';
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'assent.mjs'), 'worker'], {
    cwd: repoRoot,
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const orphanGuard = () => void child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('exit', orphanGuard);
      resolve((exit = { code, signal }));
    });
  });
  const describe = () => `--- worker ${child.pid} stderr ---\n${err.slice(-3000)}\n--- stdout ---\n${out.slice(-3000)}`;
  const ready = waitFor('the worker to start', () => (exit ? Promise.reject(new Error(`worker exited early ${JSON.stringify(exit)}\n${describe()}`)) : /worker \S+ running on/.test(out)), {
    timeoutMs: 30_000,
    describe,
  }).then(() => undefined);
  // Callers that kill a worker early never await `ready`; its rejection is not an unhandled one.
  ready.catch(() => undefined);
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    ready,
    exited,
    stop: async (timeoutMs = 20_000) => {
      if (!exit) child.kill('SIGTERM');
      const result = await Promise.race([exited, sleep(timeoutMs).then(() => undefined)]);
      if (!result) {
        child.kill('SIGKILL');
        throw new Error(`worker ${child.pid} did not stop within ${timeoutMs} ms of SIGTERM\n${describe()}`);
      }
      if (result.code !== 0) throw new Error(`worker ${child.pid} exited with ${JSON.stringify(result)}\n${describe()}`);
      const totals = /worker stopped: sent (\d+), retried (\d+), failed (\d+)/.exec(out);
      if (!totals) throw new Error(`worker ${child.pid} printed no totals\n${describe()}`);
      return { sent: Number(totals[1]), retried: Number(totals[2]), failed: Number(totals[3]) };
    },
    dispose: async () => {
      if (!exit) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
