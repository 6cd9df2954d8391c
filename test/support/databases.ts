/**
 * Runs a suite against every real database: SQLite always, PostgreSQL when
 * reachable. Under CI=true PostgreSQL is mandatory, so an unreachable server
 * fails the suite instead of skipping it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrateToLatest, openStorage, type Storage } from '../../src/storage/index.js';

export interface TestDatabase {
  storage: Storage;
  url: string;
  cleanup(): Promise<void>;
}

export interface DatabaseTarget {
  name: 'sqlite' | 'postgres';
  /** A reason to skip, or false. Never set under CI=true. */
  skip: string | false;
  /** A new, empty, migrated database of its own. */
  open(options?: { migrate?: boolean }): Promise<TestDatabase>;
}

export const postgresAdminUrl =
  process.env.ASSENT_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ci = process.env.CI === 'true';

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: postgresAdminUrl, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

let postgresSkip: string | false | undefined;
async function postgresSkipReason(): Promise<string | false> {
  if (postgresSkip !== undefined) return postgresSkip;
  if (ci) postgresSkip = false;
  else if (process.env.ASSENT_TEST_POSTGRES === '0') postgresSkip = 'ASSENT_TEST_POSTGRES=0';
  else postgresSkip = (await postgresReachable()) ? false : `PostgreSQL unreachable at ${postgresAdminUrl}`;
  return postgresSkip;
}

async function openSqliteTest(options?: { migrate?: boolean }): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'assent-db-'));
  const url = join(dir, 'assent.sqlite');
  const storage = openStorage(url);
  if (options?.migrate !== false) await migrateToLatest(storage.db);
  return {
    storage,
    url,
    cleanup: async () => {
      await storage.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function openPostgresTest(options?: { migrate?: boolean }): Promise<TestDatabase> {
  const name = `assent_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  const storage = openStorage(url.toString());
  if (options?.migrate !== false) await migrateToLatest(storage.db);
  return {
    storage,
    url: url.toString(),
    cleanup: async () => {
      await storage.close().catch(() => undefined);
      const drop = new pg.Client({ connectionString: postgresAdminUrl });
      await drop.connect();
      await drop.query(`drop database if exists ${name} with (force)`);
      await drop.end();
    },
  };
}

/** The databases every storage-touching suite runs against. */
export async function databaseTargets(): Promise<DatabaseTarget[]> {
  return [
    { name: 'sqlite', skip: false, open: openSqliteTest },
    { name: 'postgres', skip: await postgresSkipReason(), open: openPostgresTest },
  ];
}
