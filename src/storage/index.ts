export { openStorage, isPostgresUrl, sqlitePath, type Db, type Storage, type Capabilities } from './database.js';
export { migrateToLatest, type MigrationReport } from './migrate.js';
export type * from './schema.js';
export { insertMany, type BulkInsert } from './bulk.js';
