import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import { fixedClock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import { openStorage, type Db } from '../storage/index.js';
import { addConsentText, addTopic, consentTextHash, defaultConsentText, listTopics, type TopicDeps } from './index.js';

const NOW = '2026-03-01T10:00:00.000Z';
const sha256 = (text: string) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');
const NEWS_TEXT = 'I would like the Example Ltd newsletter by email. I can withdraw this consent at any time.';

function testDeps(db: Db): TopicDeps {
  let n = 0;
  return { db, clock: fixedClock(new Date(NOW)), newId: () => `id-${++n}` };
}

function appError(code: string, message: string) {
  return (error: unknown) => {
    assert.ok(error instanceof AppError, String(error));
    assert.deepEqual([error.code, error.message], [code, message]);
    return true;
  };
}

const readTexts = (db: Db) => db.selectFrom('consent_texts').selectAll().orderBy('topic_id').orderBy('version').execute();

/** Runs `node bin/assent.mjs …` with only the environment given here. */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/assent.mjs', ...args], { cwd: process.cwd(), env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

for (const target of await databaseTargets()) {
  describe(target.name, { skip: target.skip }, () => {
    let database: TestDatabase;
    let deps: TopicDeps;
    before(async () => {
      database = await target.open();
      deps = testDeps(database.storage.db);
    });
    after(() => database.cleanup());

    test('EDPB-02: addTopic stores the topic with consent text v1, hashed over the exact NFC text', async () => {
      const decomposed = `  I would like the Cafe\u0301 newsletter from Example Ltd. I can withdraw this consent at any time.\n`;
      const stored = 'I would like the Caf\u00e9 newsletter from Example Ltd. I can withdraw this consent at any time.';
      const created = await addTopic(deps, { slug: 'cafe', name: 'Café', description: 'Café news, monthly.', consentText: decomposed, locale: 'en' });
      const topic = { id: 'id-1', slug: 'cafe', name: 'Café', description: 'Café news, monthly.', is_public: 1, created_at: NOW };
      const text = { id: 'id-2', topic_id: 'id-1', version: 1, locale: 'en', body: stored, sha256: sha256(stored), created_at: NOW };
      assert.deepEqual(created, { topic, text });
      assert.deepEqual(await database.storage.db.selectFrom('topics').selectAll().execute(), [topic]);
      assert.deepEqual(await readTexts(database.storage.db), [text]);
      assert.equal(consentTextHash(decomposed.trim()), sha256(stored));
      assert.notEqual(sha256(decomposed.trim()), sha256(stored));
    });

    test('GDPR-04 EDPB-02: a new text version increments, and adding v2 leaves v1 byte-identical', async () => {
      await addTopic(deps, { slug: 'news', name: 'News', description: 'Monthly news.', consentText: NEWS_TEXT, locale: 'en', isPublic: false });
      const news = await database.storage.db.selectFrom('topics').select('id').where('slug', '=', 'news').executeTakeFirstOrThrow();
      const before = await readTexts(database.storage.db);
      const v2Body = 'I would like the Example Ltd newsletter. I can unsubscribe with one click in every email.';
      const v2 = await addConsentText(deps, { topicSlug: 'news', body: v2Body, locale: 'en' });
      assert.deepEqual(v2, { id: 'id-5', topic_id: news.id, version: 2, locale: 'en', body: v2Body, sha256: sha256(v2Body), created_at: NOW });
      assert.deepEqual(await readTexts(database.storage.db), [...before, v2].sort((a, b) => a.topic_id.localeCompare(b.topic_id) || a.version - b.version));
      assert.deepEqual(await addConsentText(deps, { topicSlug: 'news', body: `${v2Body}  `, locale: 'en' }), v2, 'the same words again are the same version');
      const v3 = await addConsentText(deps, { topicSlug: 'news', body: NEWS_TEXT, locale: 'en' });
      assert.deepEqual([v3.version, v3.sha256], [3, sha256(NEWS_TEXT)]);
      assert.deepEqual(
        (await listTopics(deps)).map((t) => [t.slug, t.is_public, t.consent_text_versions]),
        [['cafe', 1, 1], ['news', 0, 3]],
      );
    });

    test('a duplicate slug is a conflict and changes nothing', async () => {
      const before = await readTexts(database.storage.db);
      await assert.rejects(
        addTopic(deps, { slug: 'news', name: 'Other', description: 'Other news.', consentText: NEWS_TEXT, locale: 'en' }),
        appError('conflict', 'topic "news" already exists'),
      );
      assert.deepEqual(await readTexts(database.storage.db), before);
      assert.equal((await listTopics(deps)).length, 2);
    });

    test('GDPR-06 (a): a consent text without a withdrawal notice is refused, for a topic and for a new version', async () => {
      const message = 'input: a consent text must tell the person they can withdraw (GDPR Art. 7(3))';
      const silent = 'Send me the Example Ltd newsletter every month by email, please.';
      await assert.rejects(addTopic(deps, { slug: 'silent', name: 'Silent', description: 'No notice.', consentText: silent, locale: 'en' }), appError('validation_failed', message));
      await assert.rejects(addConsentText(deps, { topicSlug: 'news', body: silent, locale: 'en' }), appError('validation_failed', message));
      await assert.rejects(
        addConsentText(deps, { topicSlug: 'news', body: 'Withdraw any time.', locale: 'en' }),
        appError('validation_failed', 'input: a consent text must say who sends what, and how to withdraw (at least 20 characters)'),
      );
      assert.deepEqual((await listTopics(deps)).map((t) => [t.slug, t.consent_text_versions]), [['cafe', 1], ['news', 3]]);
    });

    test('invalid slugs, empty names and unknown topics are refused', async () => {
      const slugMessage = 'slug: use lower-case letters, digits and single hyphens (1-64 characters)';
      for (const slug of ['News', 'news letter', '-news', 'news-', '', 'a'.repeat(65), 'café']) {
        await assert.rejects(addTopic(deps, { slug, name: 'N', description: 'D', consentText: NEWS_TEXT, locale: 'en' }), appError('validation_failed', slugMessage), slug);
      }
      await assert.rejects(addTopic(deps, { slug: 'ok', name: '  ', description: 'D', consentText: NEWS_TEXT, locale: 'en' }), appError('validation_failed', 'name: a topic needs a name'));
      await assert.rejects(addConsentText(deps, { topicSlug: 'nope', body: NEWS_TEXT, locale: 'en' }), appError('not_found', 'no topic "nope"'));
      assert.deepEqual((await listTopics(deps)).map((t) => t.slug), ['cafe', 'news']);
    });
  });
}

// The embedded default: no database URL, so the CLI opens <data dir>/assent.sqlite.
describe('CLI on a fresh data dir', () => {
  test('topic add, topic text and topic list --json print exact results; a bad value exits 2 naming it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'assent-cli-'));
    const env = { ASSENT_DATA_DIR: dataDir, ASSENT_CONTROLLER_NAME: 'Example Ltd' };
    try {
      const hiddenText = defaultConsentText({ controllerName: 'Example Ltd', topicName: 'Hidden' });
      // A bad configuration value fails before anything is opened, so it can run beside the first command.
      const [updates, badPort] = await Promise.all([
        runCli(['topic', 'add', 'updates', '--name', 'Updates', '--description', 'Product updates.', '--text', NEWS_TEXT], env),
        runCli(['topic', 'list'], { ...env, ASSENT_PORT: 'notaport' }),
      ]);
      assert.deepEqual(updates, { code: 0, stdout: `topic updates added; consent text v1 sha256:${sha256(NEWS_TEXT)}\n`, stderr: '' });
      assert.deepEqual(badPort, { code: 2, stdout: '', stderr: 'error: invalid configuration ASSENT_PORT: Invalid input: expected number, received NaN\n' });
      const v2 = 'Product updates from Example Ltd; unsubscribe with one click.';
      // Writers run one after another: a deferred SQLite transaction that reads, then writes,
      // fails (SQLITE_BUSY_SNAPSHOT) if another process committed in between.
      const hidden = await runCli(['topic', 'add', 'hidden', '--name', 'Hidden', '--description', 'Internal tests.', '--private'], env);
      const text = await runCli(['topic', 'text', 'updates', '--text', v2], env);
      assert.deepEqual(hidden, { code: 0, stdout: `topic hidden added; consent text v1 sha256:${sha256(hiddenText)}\n`, stderr: '' });
      assert.deepEqual(text, { code: 0, stdout: `topic updates: consent text v2 sha256:${sha256(v2)}\n`, stderr: '' });
      const storage = openStorage(join(dataDir, 'assent.sqlite'));
      const ids = new Map((await storage.db.selectFrom('topics').select(['slug', 'id']).execute()).map((t) => [t.slug, t.id]));
      await storage.close();
      const list = await runCli(['topic', 'list', '--json'], env);
      assert.deepEqual([list.code, list.stderr], [0, '']);
      assert.deepEqual(JSON.parse(list.stdout), [
        { id: ids.get('hidden'), slug: 'hidden', name: 'Hidden', description: 'Internal tests.', public: false, consent_text_versions: 1 },
        { id: ids.get('updates'), slug: 'updates', name: 'Updates', description: 'Product updates.', public: true, consent_text_versions: 2 },
      ]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
