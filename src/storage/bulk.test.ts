/**
 * insertMany on every database: rows split over several statements at the
 * parameter bound, values kept exactly (nulls, numbers, text with quotes),
 * the conflict clause applied, and the same statement text reused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import { insertMany } from './bulk.js';

for (const target of await databaseTargets()) {
  describe(`insertMany (${target.name})`, { skip: target.skip }, () => {
    let database: TestDatabase;
    before(async () => {
      database = await target.open();
      const db = database.storage.db;
      await db.insertInto('topics').values({ id: 't', slug: 't', name: 'T', description: '', is_public: 1, created_at: 'now' }).execute();
      await db.insertInto('imports').values({ id: 'i', file_name: 'f', file_sha256: 's', topic_id: 't', options: '{}', status: 'running', rows_done: 0, created_at: 'now', finished_at: null, summary: '{}' }).execute();
    });
    after(() => database.cleanup());

    test('2,345 rows of five columns arrive whole and exact, over several statements', async () => {
      const db = database.storage.db;
      const values: unknown[] = [];
      for (let row = 1; row <= 2345; row++) values.push('i', row, row * 2, row % 7 === 0 ? 'it\'s "quoted"' : 'plain', row % 3 === 0 ? '' : `d${row}`);
      await db.transaction().execute((trx) => insertMany(trx, { table: 'import_rows', columns: ['import_id', 'row', 'line', 'reason', 'detail'] }, values));
      const rows = await db.selectFrom('import_rows').selectAll().orderBy('row').execute();
      assert.equal(rows.length, 2345);
      assert.deepEqual(rows[6], { import_id: 'i', row: 7, line: 14, reason: 'it\'s "quoted"', detail: 'd7' });
      assert.deepEqual(rows[2343], { import_id: 'i', row: 2344, line: 4688, reason: 'plain', detail: 'd2344' });
    });

    test('the conflict clause applies to every row; a shape that does not fill its rows is refused', async () => {
      const db = database.storage.db;
      const spec = { table: 'import_rows', columns: ['import_id', 'row', 'line', 'reason', 'detail'], conflict: 'on conflict ("import_id", "row") do nothing' } as const;
      await insertMany(db, spec, ['i', 1, 99, 'again', '', 'i', 5000, 1, 'new', '']);
      const changed = await db.selectFrom('import_rows').select(['row', 'line', 'reason']).where('row', 'in', [1, 5000]).orderBy('row').execute();
      assert.deepEqual(changed, [{ row: 1, line: 2, reason: 'plain' }, { row: 5000, line: 1, reason: 'new' }]);
      await assert.rejects(insertMany(db, spec, ['i', 1, 2]), /do not fill rows of 5/);
      await insertMany(db, spec, []);
    });
  });
}
