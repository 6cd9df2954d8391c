/**
 * A whole Assent runtime for a test: a fresh database of the given kind, a
 * temporary data directory, an in-memory transport and a fixed clock, with
 * the default topic and form created as `npm start` would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config/config.js';
import { buildHttp, buildRuntime, type Runtime } from '../../src/main.js';
import { ensureDefaults } from '../../src/forms/index.js';
import { fixedClock } from '../../src/shared/clock.js';
import { newId } from '../../src/shared/ids.js';
import { createMemoryTransport, type MemoryTransport } from '../../src/delivery/memory-transport.js';
import type { Transport } from '../../src/delivery/transport.js';
import type { DatabaseTarget } from './databases.js';

export interface TestRuntime {
  runtime: Runtime;
  app: FastifyInstance;
  clock: ReturnType<typeof fixedClock>;
  transport: MemoryTransport;
  dataDir: string;
  databaseUrl: string;
  /** Environment that points the CLI at this runtime's data dir and database. */
  env: Record<string, string>;
  /** Log lines written while the test ran (JSON strings). */
  logs: string[];
  close(): Promise<void>;
}

export async function startTestRuntime(
  target: DatabaseTarget,
  options: {
    env?: Record<string, string>;
    transport?: Transport;
    start?: Date;
    /** Use the transport the configuration chooses (SMTP with ASSENT_SMTP_URL); `transport` then stays unused. */
    realTransport?: boolean;
  } = {},
): Promise<TestRuntime> {
  const database = await target.open({ migrate: false });
  await database.storage.close();
  const dataDir = mkdtempSync(join(tmpdir(), 'assent-data-'));
  const env = {
    ASSENT_DATA_DIR: dataDir,
    ASSENT_DATABASE_URL: database.url,
    ASSENT_PUBLIC_URL: 'https://assent.example.org',
    ASSENT_CONTROLLER_NAME: 'Example Ltd',
    ASSENT_LOG_LEVEL: 'info',
    ...options.env,
  };
  const config = loadConfig(env, { cwd: dataDir });
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
  const clock = fixedClock(options.start ?? new Date('2026-03-01T10:00:00.000Z'));
  const transport = createMemoryTransport();
  const runtime = await buildRuntime(config, { clock, logger, transport: options.realTransport ? undefined : (options.transport ?? transport) });
  await ensureDefaults({ db: runtime.storage.db, clock, newId }, { controllerName: config.controller.name, locale: 'en' });
  const app = await buildHttp(runtime);
  await app.ready();
  return {
    runtime,
    app,
    clock,
    transport,
    dataDir,
    databaseUrl: database.url,
    env,
    logs,
    close: async () => {
      await app.close();
      await runtime.close();
      await database.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
