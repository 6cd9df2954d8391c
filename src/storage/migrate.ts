import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import type { Db } from './database.js';
import * as m0001 from './migrations/0001-initial.js';
import * as m0002 from './migrations/0002-templates.js';
import * as m0003 from './migrations/0003-campaigns.js';
import * as m0004 from './migrations/0004-contact-fields.js';
import * as m0005 from './migrations/0005-repermission.js';

/** Migrations are imported statically so they ship inside the source tree. */
const migrations: Record<string, Migration> = {
  '0001-initial': m0001,
  '0002-templates': m0002,
  '0003-campaigns': m0003,
  '0004-contact-fields': m0004,
  '0005-repermission': m0005,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export interface MigrationReport {
  applied: string[];
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Db): Promise<MigrationReport> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  if (error) {
    const failed = (results ?? []).find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { applied };
}
