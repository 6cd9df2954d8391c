/**
 * The composition root: reads configuration, opens storage, loads secrets,
 * builds every service's dependencies and starts what was asked. Nothing
 * else reads the environment or constructs long-lived resources.
 */
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config, type Environment } from './config/config.js';
import { loadSecrets, type Secrets } from './config/secrets.js';
import { systemClock, type Clock } from './shared/clock.js';
import { newId } from './shared/ids.js';
import { migrateToLatest, openStorage, type Storage } from './storage/index.js';
import { createTransport } from './delivery/transports.js';
import type { Transport } from './delivery/transport.js';
import { ensureDefaults, listForms, type SignupDeps } from './forms/index.js';
import { startWorker } from './worker-root.js';

export interface Runtime {
  config: Readonly<Config>;
  storage: Storage;
  secrets: Secrets;
  logger: Logger;
  clock: Clock;
  transport: Transport;
  signup: SignupDeps;
  close(): Promise<void>;
}

export interface RuntimeOverrides {
  clock?: Clock;
  transport?: Transport;
  logger?: Logger;
  /** Skip applying migrations (the `migrate` command applies them itself). */
  migrate?: boolean;
}

export function readConfig(env: Environment = process.env, cwd = process.cwd()): Readonly<Config> {
  return loadConfig(env, { cwd });
}

export function createLogger(level: string): Logger {
  // Addresses, IPs and tokens are never logged by our code; the redaction
  // is a second line of defence for error objects that carry them.
  return pino({
    level,
    redact: { paths: ['address', 'email', 'ip', 'token', '*.address', '*.email', '*.ip', '*.token'], censor: '[redacted]' },
    base: { service: 'assent' },
  });
}

export async function buildRuntime(config: Readonly<Config>, overrides: RuntimeOverrides = {}): Promise<Runtime> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const clock = overrides.clock ?? systemClock;
  const storage = openStorage(config.databaseUrl);
  try {
    if (overrides.migrate !== false) await migrateToLatest(storage.db);
    const secrets = await loadSecrets(config);
    const transport = overrides.transport ?? createTransport({ relays: config.relays, outboxDir: config.outboxDir, clock, logger });
    const signup: SignupDeps = {
      db: storage.db,
      clock,
      newId,
      transport,
      logger,
      afterErasure: () => storage.compact(),
      keys: { masterKeys: secrets.masterKeys, suppressionKeys: secrets.suppressionKeys, receiptKeys: secrets.receiptKeys },
      settings: {
        publicUrl: config.publicUrl,
        mailFrom: config.mailFrom,
        controller: config.controller,
        jurisdiction: config.jurisdiction,
        confirmationTtlDays: config.confirmationTtlDays,
        confirmationsPerDay: 3,
        defaultLocale: config.defaultLocale,
      },
    };
    return {
      config,
      storage,
      secrets,
      logger,
      clock,
      transport,
      signup,
      close: async () => {
        await transport.close();
        await storage.close();
      },
    };
  } catch (error) {
    await storage.close();
    throw error;
  }
}

export async function buildHttp(runtime: Runtime): Promise<FastifyInstance> {
  // Loaded here, not at the top: the CLI and workers build a runtime without HTTP.
  const { buildApp } = await import('./http/app.js');
  return buildApp({
    signup: runtime.signup,
    linkKeys: runtime.secrets.linkKeys,
    logger: runtime.logger,
    defaultLocale: runtime.config.defaultLocale,
    signupLimitPerIp: runtime.config.signupLimitPerIp,
    trustProxy: runtime.config.trustProxy,
  });
}

/**
 * `assent serve` / `npm start`: migrates, creates the default topic and form
 * on an empty database, listens, and on SIGINT/SIGTERM stops accepting,
 * finishes in-flight requests, then closes the transport and the database.
 */
export async function serve(config: Readonly<Config>, out: (line: string) => void): Promise<{ stop(): Promise<void> }> {
  const runtime = await buildRuntime(config);
  const created = await ensureDefaults(
    { db: runtime.storage.db, clock: runtime.clock, newId },
    { controllerName: config.controller.name, locale: config.defaultLocale },
  );
  if (created) runtime.logger.info({}, 'created the default "newsletter" topic and form');
  const app = await buildHttp(runtime);
  await app.listen({ host: config.host, port: config.port });
  const worker = config.worker.enabled ? startWorker(runtime) : undefined;
  runtime.logger.info({ database: runtime.storage.describe, transport: runtime.transport.kind }, 'assent started');
  out(`Assent is running on ${runtime.storage.dialect === 'sqlite' ? runtime.storage.describe : 'PostgreSQL'}.`);
  for (const { form } of await listForms(runtime.signup)) out(`Sign-up form: ${config.publicUrl}/f/${form.slug}`);
  if (runtime.transport.kind === 'outbox') out(`Mail is written to ${config.outboxDir} (set ASSENT_SMTP_URL to send it).`);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      runtime.logger.info({}, 'shutting down');
      // HTTP first (in-flight requests finish), then the worker (in-flight
      // sends finish and are recorded), then the transport and the database.
      await app.close();
      await worker?.stop();
      await runtime.close();
    })());
  return { stop };
}
