import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import { runAssent, repoRoot } from '../../test/support/server-process.js';
import { createContactKey, insertContact, insertContactKey, sealContactNames, type MasterKey } from '../contacts/index.js';
import { fixedClock } from '../shared/clock.js';
import { sha256Hex } from '../shared/crypto.js';
import { isAppError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Db } from '../storage/index.js';
import { addTemplate, listTemplates, loadCompiledTemplate, loadTemplate, previewTemplate, storeTemplate } from './template.service.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const newsletterFile = join(repoRoot, 'examples', 'newsletter.mjml');
const newsletter = readFileSync(newsletterFile, 'utf8');
const badMjml = '<mjml><mj-body><mj-section><mj-column>\n<mj-text foo="x">hi</mj-text>\n<mj-bogus /></mj-column></mj-section></mj-body></mjml>';
const plainHtml = '<html><body><p>Hello {{ contact.first_name }}, your address is {{ contact.email }}.</p></body></html>';
const controller = { name: 'Example Ltd', address: '1 High Street, Exampletown', email: 'privacy@example.org' };
const masterKeys: MasterKey[] = [{ version: 1, key: Buffer.alloc(32, 5) }];
const preview = { publicUrl: 'https://assent.example.org', controller, masterKeys };

/** A contact with names sealed under its own key, as an import stores them. */
async function insertNamedContact(db: Db, input: { id: string; address: string; locale: string | null; names: { first_name: string | null; last_name: string | null } }): Promise<void> {
  const at = T0.toISOString();
  await insertContact(db, { id: input.id, address: input.address, match_key: input.address.toLowerCase(), provider_key: null, locale: input.locale, created_at: at, erased_at: null });
  const { key, wrapped } = createContactKey(masterKeys, input.id);
  await insertContactKey(db, { contact_id: input.id, wrapped_key: wrapped, created_at: at });
  await db.insertInto('contact_names').values({ contact_id: input.id, sealed: sealContactNames(key, input.names), updated_at: at }).execute();
}

for (const target of await databaseTargets()) {
  describe(`template service (${target.name})`, { skip: target.skip }, () => {
    let database: TestDatabase;
    let db: Db;
    let dir: string;
    const clock = fixedClock(T0);
    const deps = () => ({ db, clock, newId });
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    };
    before(async () => {
      database = await target.open();
      db = database.storage.db;
      dir = mkdtempSync(join(tmpdir(), 'assent-templates-'));
    });
    after(async () => {
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    test('add stores version 1; the same source again changes nothing; a new source is version 2', async () => {
      const first = await addTemplate(deps(), { name: 'monthly', file: newsletterFile, controller });
      assert.equal(first.created, true);
      assert.deepEqual(first.lint.problems, []);
      assert.deepEqual({ ...first.template, id: '' }, {
        id: '', name: 'monthly', version: 1, format: 'mjml', source: newsletter, sha256: sha256Hex(newsletter), created_at: T0.toISOString(),
      });
      const again = await addTemplate(deps(), { name: 'monthly', file: newsletterFile });
      assert.equal(again.created, false);
      assert.equal(again.template.id, first.template.id);

      clock.advance(60_000);
      const second = await addTemplate(deps(), { name: 'monthly', file: file('monthly.txt', `\uFEFF${plainHtml}`), controller });
      assert.equal(second.created, true);
      assert.deepEqual([second.template.version, second.template.format, second.template.source], [2, 'html', plainHtml]);
      assert.deepEqual(second.lint.problems.map((p) => p.code), ['missing_unsubscribe_link', 'missing_preferences_link', 'missing_postal_address']);
      assert.equal(second.lint.footerAppended, true);

      assert.equal((await loadTemplate(deps(), { name: 'monthly' })).version, 2);
      assert.equal((await loadTemplate(deps(), { name: 'monthly', version: 1 })).source, newsletter, 'version 1 is kept unchanged');
      const rows = await db.selectFrom('templates').select(['name', 'version', 'format']).orderBy('version').execute();
      assert.deepEqual(rows, [{ name: 'monthly', version: 1, format: 'mjml' }, { name: 'monthly', version: 2, format: 'html' }]);
    });

    test('list shows the newest version of each template, by name', async () => {
      await storeTemplate(deps(), { name: 'alerts', source: plainHtml, format: 'html' });
      const listed = await listTemplates(deps());
      assert.deepEqual(listed.map((t) => [t.name, t.version, t.format, t.sha256]), [
        ['alerts', 1, 'html', sha256Hex(plainHtml)],
        ['monthly', 2, 'html', sha256Hex(plainHtml)],
      ]);
      assert.equal('source' in listed[0]!, false);
    });

    test('invalid templates and names are refused and nothing is stored', async () => {
      const before = await db.selectFrom('templates').select('id').execute();
      await assert.rejects(addTemplate(deps(), { name: 'broken', file: file('broken.mjml', badMjml) }), (e: unknown) =>
        isAppError(e, 'validation_failed') && /line 2: <mj-text>: Attribute foo is illegal\n  line 3: <mj-bogus>/.test(e.message));
      await assert.rejects(storeTemplate(deps(), { name: 'scripted', source: '<script>x</script>', format: 'html' }), (e: unknown) =>
        isAppError(e, 'validation_failed') && /fails the compliance lint:\n  script: the body contains a <script> element/.test(e.message));
      await assert.rejects(storeTemplate(deps(), { name: 'Bad Name', source: plainHtml, format: 'html' }), (e: unknown) => isAppError(e, 'validation_failed'));
      await assert.rejects(addTemplate(deps(), { name: 'missing', file: join(dir, 'nope.html') }), (e: unknown) => isAppError(e, 'validation_failed'));
      await assert.rejects(loadTemplate(deps(), { name: 'monthly', version: 9 }), (e: unknown) => isAppError(e, 'not_found'));
      assert.equal((await db.selectFrom('templates').select('id').execute()).length, before.length);
    });

    test('concurrent adds of one name never share a version', async () => {
      const sources = [1, 2, 3, 4].map((n) => plainHtml.replace('Hello', `Hello ${n}`));
      const results = await Promise.allSettled(sources.map((source) => storeTemplate(deps(), { name: 'race', source, format: 'html' })));
      for (const r of results) if (r.status === 'rejected') assert.ok(isAppError(r.reason, 'conflict'), String(r.reason));
      const stored = await db.selectFrom('templates').select('version').where('name', '=', 'race').orderBy('version').execute();
      const won = results.filter((r) => r.status === 'fulfilled').length;
      assert.ok(won >= 1);
      assert.deepEqual(stored.map((r) => r.version), Array.from({ length: won }, (_, i) => i + 1));
    });

    test('preview renders sample data, or a stored contact, into FILE and FILE.txt', async () => {
      const out = join(dir, 'preview', 'monthly.html');
      const sample = await previewTemplate({ db, ...preview }, { name: 'monthly', version: 1, subject: 'Hi {{ contact.first_name }}', outFile: out });
      assert.equal(sample.subject, 'Hi Alex');
      assert.equal(readFileSync(out, 'utf8'), sample.html);
      assert.equal(readFileSync(`${out}.txt`, 'utf8'), sample.text);
      assert.match(sample.html, /Hello Alex,/);
      assert.match(sample.text, /Unsubscribe \[https:\/\/assent\.example\.org\/unsubscribe\/preview\]/);
      assert.match(sample.text, /Manage your preferences \[https:\/\/assent\.example\.org\/preferences\/preview\]/);

      await insertContact(db, { id: 'c-1', address: 'Jo.Doe@Example.org', match_key: 'jo.doe@example.org', provider_key: null, locale: 'de', created_at: T0.toISOString(), erased_at: null });
      const forContact = await previewTemplate({ db, ...preview }, { name: 'monthly', contactId: 'c-1', outFile: out });
      assert.match(forContact.html, /<p>Hello , your address is Jo\.Doe@Example\.org\.<\/p><div lang="de"/);
      assert.deepEqual(forContact.missing, ['unsubscribe', 'preferences', 'postal_address']);
      assert.match(readFileSync(`${out}.txt`, 'utf8'), /Abmelden \[https:\/\/assent\.example\.org\/unsubscribe\/preview\]/);

      // Names are opened with the contact's key and escaped like any merge field.
      await insertNamedContact(db, { id: 'c-named', address: 'zoe@example.org', locale: 'en', names: { first_name: 'Zoë <b>', last_name: "O'Brien" } });
      const named = await previewTemplate({ db, ...preview }, { name: 'monthly', contactId: 'c-named', subject: 'For {{ contact.first_name }} {{ contact.last_name }}', outFile: out });
      assert.match(named.html, /<p>Hello Zoë &lt;b&gt;, your address is zoe@example\.org\.<\/p>/);
      assert.equal(named.subject, "For Zoë <b> O'Brien");
      // A key the configured master keys cannot unwrap leaves the names empty rather than failing the preview.
      const otherKeys = { ...preview, masterKeys: [{ version: 2, key: Buffer.alloc(32, 6) }] };
      const unreadable = await previewTemplate({ db, ...otherKeys }, { name: 'monthly', contactId: 'c-named', outFile: out });
      assert.match(unreadable.html, /<p>Hello , your address is zoe@example\.org\.<\/p>/);

      await insertContact(db, { id: 'c-erased', address: null, match_key: null, provider_key: null, locale: null, created_at: T0.toISOString(), erased_at: T0.toISOString() });
      for (const contactId of ['c-erased', 'c-unknown']) {
        await assert.rejects(previewTemplate({ db, ...preview }, { name: 'monthly', contactId, outFile: out }), (e: unknown) => isAppError(e, 'not_found'));
      }
    });

    test('a campaign compiles a stored version once and renders it per recipient', async () => {
      const { template, compiled } = await loadCompiledTemplate(deps(), { name: 'monthly', version: 1, subject: '{{ campaign.subject }}' });
      assert.equal(template.version, 1);
      const r = compiled.render({
        contact: { first_name: 'Ann', email: 'ann@example.org' },
        unsubscribe_url: 'https://assent.example.org/u/1',
        preferences_url: 'https://assent.example.org/p/1',
        campaign: { subject: 'March' },
        controller,
      });
      assert.equal(r.subject, 'March');
      assert.equal(r.footerAppended, false);
    });

    describe('CLI', () => {
      let env: Record<string, string>;
      before(() => {
        env = {
          ASSENT_DATA_DIR: join(dir, 'data'),
          ASSENT_DATABASE_URL: database.url,
          ASSENT_PUBLIC_URL: 'https://assent.example.org',
          ASSENT_CONTROLLER_NAME: 'Example Ltd',
          ASSENT_MASTER_KEY: masterKeys[0]!.key.toString('base64'),
        };
      });

      test('template add, list --json and preview', async () => {
        const added = await runAssent(['template', 'add', 'cli-news', '--file', newsletterFile], env);
        assert.equal(added.code, 0, added.stderr);
        assert.equal(added.stdout, `template cli-news v1 (mjml) added; sha256:${sha256Hex(newsletter)}\n`);
        const listed = await runAssent(['template', 'list', '--json'], env);
        assert.equal(listed.code, 0, listed.stderr);
        const rows = JSON.parse(listed.stdout) as Record<string, unknown>[];
        const row = rows.find((r) => r.name === 'cli-news');
        assert.match(String(row?.created_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.deepEqual({ ...row, created_at: '' }, { name: 'cli-news', version: 1, format: 'mjml', sha256: sha256Hex(newsletter), created_at: '' });
        const out = join(dir, 'cli', 'preview.html');
        const previewed = await runAssent(['template', 'preview', 'cli-news', '--out', out], env);
        assert.equal(previewed.code, 0, previewed.stderr);
        assert.match(previewed.stdout, /^template cli-news v1 rendered for sample data\nsubject: Our monthly newsletter\n/);
        assert.match(readFileSync(out, 'utf8'), /Hello Alex,/);
        assert.match(readFileSync(`${out}.txt`, 'utf8'), /Unsubscribe \[https:\/\/assent\.example\.org\/unsubscribe\/preview\]/);
      });

      test('template preview --contact renders with the contact\'s own names', async () => {
        await insertNamedContact(db, { id: 'c-cli', address: 'ines@example.org', locale: 'en', names: { first_name: 'Inès', last_name: 'Ruiz' } });
        const out = join(dir, 'cli', 'contact.html');
        const previewed = await runAssent(['template', 'preview', 'cli-news', '--contact', 'c-cli', '--out', out], env);
        assert.equal(previewed.code, 0, previewed.stderr);
        assert.match(previewed.stdout, /^template cli-news v1 rendered for contact c-cli\n/);
        const html = readFileSync(out, 'utf8');
        assert.match(html, /Hello Inès,/);
        assert.match(html, /Thank you for being with us, Inès\./);
        assert.doesNotMatch(html, /Alex|Hello there/);
      });

      test('bad MJML exits 2 with the problems and their lines, and stores nothing', async () => {
        const result = await runAssent(['template', 'add', 'cli-bad', '--file', file('cli-bad.mjml', badMjml)], env);
        assert.equal(result.code, 2);
        assert.equal(result.stdout, '');
        assert.equal(
          result.stderr,
          "error: the template is not valid:\n  line 2: <mj-text>: Attribute foo is illegal\n  line 3: <mj-bogus>: Element mj-bogus doesn't exist or is not registered\n",
        );
        assert.equal((await db.selectFrom('templates').select('id').where('name', '=', 'cli-bad').execute()).length, 0);
      });
    });
  });
}
