import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type SqliteDialectConfig } from 'kysely';
import type { Tables } from './schema.js';

export type Db = Kysely<Tables>;

/**
 * What differs between the two databases, as capabilities rather than
 * `if (dialect === 'postgres')` scattered through the repositories.
 */
export interface Capabilities {
  /** `FOR UPDATE SKIP LOCKED` claims (PostgreSQL); SQLite serialises writers instead. */
  skipLocked: boolean;
}

export interface Storage {
  db: Db;
  dialect: 'sqlite' | 'postgres';
  capabilities: Capabilities;
  /** A URL safe to print: no password. */
  describe: string;
  close(): Promise<void>;
  /** After an erasure: make sure no old page or log frame still holds what was deleted. */
  compact(): Promise<void>;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** Opens the database a URL names: `postgres://…` or a SQLite file path (optionally `sqlite:` prefixed). */
export function openStorage(url: string): Storage {
  return isPostgresUrl(url) ? openPostgres(url) : openSqlite(sqlitePath(url));
}

export function sqlitePath(url: string): string {
  return url.replace(/^sqlite:(\/\/)?/i, '');
}

function openSqlite(path: string): Storage {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new SqliteDatabase(path);
  // WAL lets the CLI read while the server writes; busy_timeout makes a
  // second writer (CLI beside `npm start`) wait instead of failing.
  database.pragma('journal_mode = WAL');
  database.pragma('busy_timeout = 10000');
  database.pragma('foreign_keys = ON');
  database.pragma('synchronous = NORMAL');
  // Deleted content is overwritten in the file, not just unlinked (GDPR Art. 17).
  database.pragma('secure_delete = ON');
  const db = new Kysely<Tables>({ dialect: new ImmediateSqliteDialect({ database: keepingBulkStatements(database) }) });
  return {
    db,
    dialect: 'sqlite',
    capabilities: { skipLocked: false },
    describe: `sqlite:${path}`,
    close: () => db.destroy(),
    compact: async () => {
      database.pragma('wal_checkpoint(TRUNCATE)');
    },
  };
}

/**
 * Keeps the prepared statements of the long multi-row INSERTs that batch
 * writers send (bulk.ts): the driver prepares every query afresh, and
 * parsing a few hundred rows' worth of placeholders for every batch costs
 * as much as inserting them. Other statements are prepared as before.
 */
function keepingBulkStatements(database: SqliteDatabase.Database): SqliteDialectConfig['database'] {
  const kept = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => database.close(),
    prepare: (text: string) => {
      if (text.length < 1000 || !text.startsWith('insert into')) return database.prepare(text);
      let statement = kept.get(text);
      if (!statement) {
        statement = database.prepare(text);
        if (kept.size >= 32) kept.delete(kept.keys().next().value!);
        kept.set(text, statement);
      }
      return statement;
    },
  };
}

/**
 * SQLite transactions begin IMMEDIATE: the write lock is taken at BEGIN, so
 * a transaction that reads and then writes waits (busy_timeout) for another
 * process's writer instead of failing with SQLITE_BUSY_SNAPSHOT when that
 * writer commits in between (the CLI beside a running server).
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

// int8 (bigint) columns hold ledger sequence numbers: far below 2^53, so a
// JavaScript number is exact and keeps one row type for both databases.
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

function openPostgres(url: string): Storage {
  const pool = new pg.Pool({ connectionString: url, max: 10, types: pgTypes });
  // An idle connection the server ends (restart, failover, admin kill) is
  // dropped by the pool and the next query opens a new one. Without a
  // listener, node-postgres re-emits it as an unhandled 'error' and the
  // whole process exits.
  pool.on('error', () => undefined);
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  const safe = new URL(url);
  safe.password = '';
  return {
    db,
    dialect: 'postgres',
    capabilities: { skipLocked: true },
    describe: safe.toString(),
    close: () => db.destroy(),
    // PostgreSQL reclaims dead row versions by (auto)vacuum; see the README on erasure.
    compact: async () => undefined,
  };
}
