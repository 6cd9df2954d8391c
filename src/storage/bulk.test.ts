/**
 * insertMany on every database: rows split over several statements at the
 * parameter bound, values kept exactly (nulls, numbers, text with quotes),
 * the conflict clause applied, and full statements of one shape sent as the
 * same SQL text (what SQLite's statement cache in database.ts keys on).
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
      const sent: { sql: string; parameters: number }[] = [];
      await db.transaction().execute((trx) => {
        const watched = new Proxy(trx, {
          get(target, property) {
            if (property === 'executeQuery') {
              return (query: { sql: string; parameters: readonly unknown[] }) => {
                sent.push({ sql: query.sql, parameters: query.parameters.length });
                return target.executeQuery(query as never);
              };
            }
            const value = Reflect.get(target, property) as unknown;
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
        return insertMany(watched, { table: 'import_rows', columns: ['import_id', 'row', 'line', 'reason', 'detail'] }, values);
      });
      // 500 rows a statement: four full ones with one text, then the 345-row tail.
      assert.deepEqual(sent.map((q) => q.parameters), [2500, 2500, 2500, 2500, 1725]);
      assert.equal(new Set(sent.slice(0, 4).map((q) => q.sql)).size, 1);
      const rows = await db.selectFrom('import_rows').selectAll().orderBy('row').execute();
      // Every row, so a slip at a statement boundary (rows 500/501, 1000/1001, …) shows.
      const expected = [];
      for (let i = 0; i < values.length; i += 5) {
        const [import_id, row, line, reason, detail] = values.slice(i, i + 5);
        expected.push({ import_id, row, line, reason, detail });
      }
      assert.deepEqual(rows, expected);
    });

    test('the conflict clause applies to every row; a shape that does not fill its rows is refused', async () => {
      const db = database.storage.db;
      const spec = { table: 'import_rows', columns: ['import_id', 'row', 'line', 'reason', 'detail'], conflict: 'on conflict ("import_id", "row") do nothing' } as const;
      await insertMany(db, spec, ['i', 1, 99, 'again', '', 'i', 5000, 1, 'new', '']);
      const changed = await db.selectFrom('import_rows').select(['row', 'line', 'reason']).where('row', 'in', [1, 5000]).orderBy('row').execute();
      assert.deepEqual(changed, [{ row: 1, line: 2, reason: 'plain' }, { row: 5000, line: 1, reason: 'new' }]);
      await assert.rejects(insertMany(db, spec, ['i', 1, 2]), /do not fill rows of 5/);
      const before = await db.selectFrom('import_rows').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      await insertMany(db, spec, []);
      const afterEmpty = await db.selectFrom('import_rows').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      assert.equal(Number(afterEmpty.n), Number(before.n), 'no rows: nothing written');
    });
  });
}
