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
import { migrateToLatest, openStorage, type ConsentText, type Db } from '../storage/index.js';
import { addConsentText, addTopic, defaultConsentText, listTopics } from '../topics/index.js';
import { addForm, ensureDefaults, listForms, loadForm, type FormInput } from './index.js';

const NOW = '2026-03-01T10:00:00.000Z';
const sha256 = (text: string) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');
const NEWS_TEXT = 'I would like the Example Ltd newsletter by email. I can withdraw this consent at any time.';
const NEWS_V2 = 'The Example Ltd newsletter, monthly. I can unsubscribe with one click in every email.';
const OFFERS_V1 = 'I would like offers from Example Ltd by email. I can unsubscribe at any time.';
const OFFERS_V2 = 'Offers from Example Ltd, about twice a month. I can withdraw with one click.';

function testDeps(db: Db) {
  let n = 0;
  return { db, clock: fixedClock(new Date(NOW)), newId: () => `id-${String(++n).padStart(2, '0')}` };
}

function appError(code: string, message: string) {
  return (error: unknown) => {
    assert.ok(error instanceof AppError, String(error));
    assert.deepEqual([error.code, error.message], [code, message]);
    return true;
  };
}

/** What findFormTopics returns for one topic row, in the form's order. */
function offered(position: number, topic: { id: string; slug: string; name: string; description: string }, text: ConsentText) {
  return {
    topic_id: topic.id, topic_slug: topic.slug, topic_name: topic.name, topic_description: topic.description,
    text_id: text.id, text_version: text.version, text_body: text.body, text_sha256: text.sha256, position,
  };
}

const counts = async (db: Db) => ({
  forms: (await db.selectFrom('forms').select('id').execute()).length,
  links: (await db.selectFrom('form_topics').select('form_id').execute()).length,
});

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
    let deps: ReturnType<typeof testDeps>;
    let news: Awaited<ReturnType<typeof addTopic>>;
    let offers: Awaited<ReturnType<typeof addTopic>>;
    let offersV2: ConsentText;
    before(async () => {
      database = await target.open();
      deps = testDeps(database.storage.db);
      news = await addTopic(deps, { slug: 'news', name: 'News', description: 'Monthly news.', consentText: NEWS_TEXT, locale: 'en' });
      offers = await addTopic(deps, { slug: 'offers', name: 'Offers', description: 'Special offers.', consentText: OFFERS_V1, locale: 'en' });
      offersV2 = await addConsentText(deps, { topicSlug: 'offers', body: OFFERS_V2, locale: 'en' });
    });
    after(() => database.cleanup());

    test('EDPB-02: addForm stores version 1 with each topic pinned to the text version shown, in order', async () => {
      const loaded = await addForm(deps, { slug: 'signup', title: 'Join us', topics: [{ slug: 'news' }, { slug: 'offers', textVersion: 1 }] });
      assert.deepEqual(loaded, {
        form: { id: 'id-06', slug: 'signup', version: 1, title: 'Join us', created_at: NOW },
        topics: [offered(0, news.topic, news.text), offered(1, offers.topic, offers.text)],
      });
      assert.deepEqual(await loadForm(deps, 'signup'), loaded);
      assert.equal(await loadForm(deps, 'nope'), undefined);
    });

    test('GDPR-04: adding the form again makes version 2 with the newest texts; version 1 is unchanged', async () => {
      const v1Links = await database.storage.db.selectFrom('form_topics').selectAll().where('form_id', '=', 'id-06').orderBy('position').execute();
      const loaded = await addForm(deps, { slug: 'signup', title: 'Join us today', topics: [{ slug: 'offers' }, { slug: 'news' }] });
      assert.deepEqual(loaded, {
        form: { id: 'id-07', slug: 'signup', version: 2, title: 'Join us today', created_at: NOW },
        topics: [offered(0, offers.topic, offersV2), offered(1, news.topic, news.text)],
      });
      assert.deepEqual(v1Links, [
        { form_id: 'id-06', topic_id: news.topic.id, consent_text_id: news.text.id, position: 0 },
        { form_id: 'id-06', topic_id: offers.topic.id, consent_text_id: offers.text.id, position: 1 },
      ]);
      assert.deepEqual(await database.storage.db.selectFrom('form_topics').selectAll().where('form_id', '=', 'id-06').orderBy('position').execute(), v1Links);
      await addForm(deps, { slug: 'alpha', title: 'Alpha', topics: [{ slug: 'news' }] });
      assert.deepEqual((await listForms(deps)).map((f) => [f.form.slug, f.form.version, f.topics.map((t) => `${t.topic_slug}@${t.text_version}`)]), [
        ['alpha', 1, ['news@1']],
        ['signup', 2, ['offers@2', 'news@1']],
      ]);
    });

    test('unknown topics, missing text versions, repeated topics and empty forms are refused and store nothing', async () => {
      const before = await counts(database.storage.db);
      const refused: [FormInput, string, string][] = [
        [{ slug: 'x', title: 'X', topics: [{ slug: 'news' }, { slug: 'nope' }] }, 'not_found', 'no topic "nope"'],
        [{ slug: 'x', title: 'X', topics: [{ slug: 'offers', textVersion: 9 }] }, 'not_found', 'topic "offers" has no consent text version 9'],
        [{ slug: 'x', title: 'X', topics: [{ slug: 'news' }, { slug: 'news', textVersion: 1 }] }, 'validation_failed', 'topics: a form offers each topic once (GDPR Recital 43: one box per purpose)'],
        [{ slug: 'x', title: 'X', topics: [] }, 'validation_failed', 'topics: a form offers at least one topic'],
        [{ slug: 'x', title: ' ', topics: [{ slug: 'news' }] }, 'validation_failed', 'title: a form needs a title'],
        [{ slug: 'X Form', title: 'X', topics: [{ slug: 'news' }] }, 'validation_failed', 'slug: use lower-case letters, digits and single hyphens (1-64 characters)'],
        [{ slug: 'x', title: 'X', topics: [{ slug: 'news', textVersion: 0 }] }, 'validation_failed', 'topics.0.textVersion: Too small: expected number to be >=1'],
      ];
      for (const [input, code, message] of refused) await assert.rejects(addForm(deps, input), appError(code, message), message);
      assert.deepEqual(await counts(database.storage.db), before);
    });

    test('ensureDefaults creates the newsletter topic and form once, and only on an empty database', async () => {
      assert.equal(await ensureDefaults(deps, { controllerName: 'Example Ltd', locale: 'en' }), false, 'topics exist here');
      assert.deepEqual((await listTopics(deps)).map((t) => t.slug), ['news', 'offers']);
      const empty = await target.open();
      try {
        const fresh = testDeps(empty.storage.db);
        assert.equal(await ensureDefaults(fresh, { controllerName: 'Example Ltd', locale: 'en' }), true);
        assert.equal(await ensureDefaults(fresh, { controllerName: 'Example Ltd', locale: 'en' }), false);
        const body = defaultConsentText({ controllerName: 'Example Ltd', topicName: 'Newsletter' });
        const topic = { id: 'id-01', slug: 'newsletter', name: 'Newsletter', description: 'News and updates from Example Ltd, by email, about once a month.' };
        const text = { id: 'id-02', topic_id: 'id-01', version: 1, locale: 'en', body, sha256: sha256(body), created_at: NOW };
        assert.deepEqual(await listForms(fresh), [
          { form: { id: 'id-03', slug: 'newsletter', version: 1, title: 'Subscribe to the Example Ltd newsletter', created_at: NOW }, topics: [offered(0, topic, text)] },
        ]);
        assert.deepEqual(await listTopics(fresh), [{ ...topic, is_public: 1, created_at: NOW, consent_text_versions: 1 }]);
      } finally {
        await empty.cleanup();
      }
    });
  });
}

// The embedded default: no database URL, so the CLI opens <data dir>/assent.sqlite.
describe('CLI on a fresh data dir', () => {
  test('form add with --topic a --topic b@1, then form list --json, print exact results', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'assent-cli-'));
    const env = { ASSENT_DATA_DIR: dataDir, ASSENT_PUBLIC_URL: 'https://assent.example.org' };
    try {
      // The topics are set up through the services; the CLI under test is `form add` and `form list`.
      const storage = openStorage(join(dataDir, 'assent.sqlite'));
      try {
        await migrateToLatest(storage.db);
        const setup = testDeps(storage.db);
        for (const [slug, text] of [['news', NEWS_TEXT], ['offers', OFFERS_V1]] as const) {
          await addTopic(setup, { slug, name: slug, description: `About ${slug}.`, consentText: text, locale: 'en' });
        }
        await addConsentText(setup, { topicSlug: 'news', body: NEWS_V2, locale: 'en' });
      } finally {
        await storage.close();
      }
      const form = await runCli(['form', 'add', 'signup', '--title', 'Join us', '--topic', 'offers', '--topic', 'news@1'], env);
      assert.deepEqual(form, {
        code: 0,
        stdout: `form signup v1: https://assent.example.org/f/signup\n  offers: consent text v1 sha256:${sha256(OFFERS_V1)}\n  news: consent text v1 sha256:${sha256(NEWS_TEXT)}\n`,
        stderr: '',
      });
      const list = await runCli(['form', 'list', '--json'], env);
      assert.deepEqual([list.code, list.stderr], [0, '']);
      assert.deepEqual(JSON.parse(list.stdout), [
        {
          slug: 'signup',
          version: 1,
          title: 'Join us',
          url: 'https://assent.example.org/f/signup',
          topics: [
            { slug: 'offers', consent_text_version: 1, consent_text_sha256: sha256(OFFERS_V1) },
            { slug: 'news', consent_text_version: 1, consent_text_sha256: sha256(NEWS_TEXT) },
          ],
        },
      ]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
