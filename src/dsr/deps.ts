import type { Clock } from '../shared/clock.js';
import type { IdGenerator } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import type { Db } from '../storage/index.js';
import type { MasterKey } from '../contacts/index.js';
import type { SuppressionKey } from '../consent/index.js';

/** What the data-subject request services need; built by the composition root. */
export interface DsrDeps {
  db: Db;
  clock: Clock;
  newId: IdGenerator;
  logger: Logger;
  keys: {
    masterKeys: MasterKey[];
    suppressionKeys: SuppressionKey[];
  };
  /**
   * Storage upkeep once an erasure committed, so no stale page still holds
   * the erased data (SQLite: checkpoint and truncate the write-ahead log).
   */
  afterErasure?: () => Promise<void>;
}
