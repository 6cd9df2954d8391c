/**
 * Contact names on every database: what the import seals, the batch reader
 * opens, many contacts in one call; a contact with no names, an unknown id,
 * an erased contact (key shredded, GDPR Art. 17) and a key no configured
 * master key unwraps all yield nothing rather than failing the batch.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import type { SuppressionKey } from '../consent/index.js';
import { eraseContact } from '../dsr/index.js';
import { fixedClock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import { silentLogger } from '../shared/logger.js';
import type { Db } from '../storage/index.js';
import { importContacts } from './import.service.js';
import {
  createContactKey,
  findContactByMatchKey,
  insertContact,
  insertContactKey,
  readContactNames,
  sealContactNames,
  unwrapContactKey,
} from './index.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const keys = { masterKeys: [{ version: 1, key: Buffer.alloc(32, 3) }], suppressionKeys: [{ version: 1, key: Buffer.alloc(32, 7) }] as SuppressionKey[] };

for (const target of await databaseTargets()) {
  describe(`contact names (${target.name})`, { skip: target.skip }, () => {
    let database: TestDatabase;
    let db: Db;
    let dir: string;
    const clock = fixedClock(T0);
    const ids: Record<string, string> = {};

    before(async () => {
      database = await target.open();
      db = database.storage.db;
      dir = mkdtempSync(join(tmpdir(), 'assent-names-'));
      await db.insertInto('topics').values({ id: 'topic-news', slug: 'news', name: 'News', description: 'Monthly', is_public: 1, created_at: T0.toISOString() }).execute();
      const path = join(dir, 'list.csv');
      writeFileSync(path, 'email,first_name,last_name,status\r\nann@example.org,Ann,Lee,subscribed\r\nrene@example.org,René,,subscribed\r\nnobody@example.org,,,subscribed\r\n');
      await importContacts({ db, clock, newId, keys, logger: silentLogger }, { path, topicSlug: 'news' });
      for (const local of ['ann', 'rene', 'nobody']) ids[local] = (await findContactByMatchKey(db, `${local}@example.org`))!.id;
    });
    after(async () => {
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    test('the import\'s names open for many contacts in one call; unknown ids and repeats are harmless', async () => {
      const names = await readContactNames(db, keys.masterKeys, [ids.ann!, ids.rene!, ids.nobody!, 'no-such-contact', ids.ann!]);
      assert.deepEqual(names, new Map([
        [ids.ann!, { first_name: 'Ann', last_name: 'Lee' }],
        [ids.rene!, { first_name: 'René', last_name: null }],
      ]));
      assert.equal((await readContactNames(db, keys.masterKeys, [])).size, 0);
    });

    test('a thousand contacts are read in one call, each opened with its own key', async () => {
      const at = T0.toISOString();
      const many = Array.from({ length: 1000 }, (_, i) => `bulk-${i}`);
      await db.transaction().execute(async (trx) => {
        for (const id of many) {
          await insertContact(trx, { id, address: `${id}@example.org`, match_key: `${id}@example.org`, provider_key: null, locale: null, created_at: at, erased_at: null });
          const { key, wrapped } = createContactKey(keys.masterKeys, id);
          await insertContactKey(trx, { contact_id: id, wrapped_key: wrapped, created_at: at });
          await trx.insertInto('contact_names').values({ contact_id: id, sealed: sealContactNames(key, { first_name: `F${id}`, last_name: 'Bulk' }), updated_at: at }).execute();
        }
      });
      const names = await readContactNames(db, keys.masterKeys, many);
      assert.equal(names.size, 1000);
      for (const id of many) assert.deepEqual(names.get(id), { first_name: `F${id}`, last_name: 'Bulk' });
    });

    test('names sealed under another contact\'s key, or a master key not configured, open to nothing', async () => {
      const at = T0.toISOString();
      const wrapped = (await db.selectFrom('contact_keys').select('wrapped_key').where('contact_id', '=', ids.ann!).executeTakeFirstOrThrow()).wrapped_key;
      const annKey = unwrapContactKey(keys.masterKeys, ids.ann!, wrapped);
      await insertContact(db, { id: 'swapped', address: 'swapped@example.org', match_key: 'swapped@example.org', provider_key: null, locale: null, created_at: at, erased_at: null });
      await insertContactKey(db, { contact_id: 'swapped', wrapped_key: createContactKey(keys.masterKeys, 'swapped').wrapped, created_at: at });
      await db.insertInto('contact_names').values({ contact_id: 'swapped', sealed: sealContactNames(annKey, { first_name: 'Ann', last_name: 'Lee' }), updated_at: at }).execute();
      assert.deepEqual([...(await readContactNames(db, keys.masterKeys, ['swapped', ids.ann!])).keys()], [ids.ann!]);
      const otherMaster = [{ version: 2, key: Buffer.alloc(32, 9) }];
      assert.equal((await readContactNames(db, otherMaster, [ids.ann!])).size, 0);
    });

    test('GDPR-17: an erased contact has no names any more', async () => {
      await eraseContact({ db, clock, newId, logger: silentLogger, keys }, { contactId: ids.rene!, channel: 'operator', actor: 'admin' });
      const names = await readContactNames(db, keys.masterKeys, [ids.ann!, ids.rene!]);
      assert.deepEqual([...names.keys()], [ids.ann!]);
      const left = await db.selectFrom('contact_names').select('contact_id').where('contact_id', '=', ids.rene!).execute();
      assert.deepEqual(left, [], 'the sealed names row is deleted with the key');
    });
  });
}
