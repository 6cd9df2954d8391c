import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { catalogKeys, chooseLocale, supportedLocales, translator } from './i18n.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const messagesDir = join(here, 'messages');
const srcDir = join(here, '..');
const english = JSON.parse(readFileSync(join(messagesDir, 'en.json'), 'utf8')) as Record<string, string>;

interface CatalogueDifference {
  locale: string;
  missing: string[];
  extra: string[];
}

/** Keys each catalogue lacks, or has beyond, the reference catalogue; empty when all agree. */
function catalogueDifferences(keysByLocale: Map<string, string[]>, reference = 'en'): CatalogueDifference[] {
  const expected = keysByLocale.get(reference);
  if (!expected) throw new Error(`no ${reference} catalogue to compare with`);
  const out: CatalogueDifference[] = [];
  for (const [locale, keys] of [...keysByLocale].sort(([a], [b]) => a.localeCompare(b))) {
    const missing = expected.filter((k) => !keys.includes(k)).sort();
    const extra = keys.filter((k) => !expected.includes(k)).sort();
    if (missing.length > 0 || extra.length > 0) out.push({ locale, missing, extra });
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('catalogue completeness', () => {
  test('the comparison names what a catalogue lacks and what it adds', () => {
    const synthetic = new Map([
      ['en', ['a', 'b', 'c']],
      ['de', ['a', 'c']],
      ['fr', ['a', 'b', 'c', 'd']],
      ['it', ['c', 'b', 'a']],
    ]);
    assert.deepEqual(catalogueDifferences(synthetic), [
      { locale: 'de', missing: ['b'], extra: [] },
      { locale: 'fr', missing: [], extra: ['d'] },
    ]);
    assert.deepEqual(catalogueDifferences(new Map([['en', ['a']]])), []);
    assert.throws(() => catalogueDifferences(new Map([['de', ['a']]])), /no en catalogue/);
  });

  test('every catalogue file is loaded and has exactly the keys of en.json', () => {
    const files = readdirSync(messagesDir).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();
    assert.deepEqual([...supportedLocales], files);
    assert.ok(files.includes('en'));
    const keys = catalogKeys();
    assert.deepEqual(keys.get('en'), Object.keys(english).sort());
    assert.deepEqual(catalogueDifferences(keys), []);
    for (const locale of files) {
      const catalogue = JSON.parse(readFileSync(join(messagesDir, `${locale}.json`), 'utf8')) as Record<string, unknown>;
      for (const [key, value] of Object.entries(catalogue)) {
        assert.equal(typeof value, 'string', `${locale}: ${key}`);
        assert.notEqual(String(value).trim(), '', `${locale}: ${key} is empty`);
      }
    }
  });

  test('every message key the source uses exists in en.json', () => {
    const calls = new Set<string>();
    const literals = new Set<string>();
    // Keys also travel as plain arguments (messagePage(ctx, 'inbox.title', …), messageKey: '…'):
    // any quoted literal in a catalogue namespace counts.
    const namespaces = [...new Set(Object.keys(english).map((k) => k.split('.')[0]))].join('|');
    const namespaced = new RegExp(`['"\`]((?:${namespaces})\\.[a-z0-9_.]+)['"\`]`, 'g');
    for (const file of sourceFiles(srcDir)) {
      const source = readFileSync(file, 'utf8');
      for (const m of source.matchAll(/\bt\(\s*(['"`])([^'"`$]+)\1/g)) calls.add(m[2]!);
      for (const m of source.matchAll(namespaced)) literals.add(m[1]!);
    }
    // The scan must find what the pages and mails use, or it proves nothing.
    assert.ok(calls.size >= 20, `only ${calls.size} t('…') keys found`);
    for (const key of ['inbox.title', 'form.error.csrf', 'form.error.address', 'link.invalid.body']) assert.ok(literals.has(key), key);
    const unknown = [...calls, ...literals].filter((key) => !(key in english));
    assert.deepEqual(unknown, []);
  });
});

describe('translator', () => {
  test('fills placeholders, keeps unknown ones, and throws on a missing key', () => {
    const { t, locale } = translator('en');
    assert.equal(locale, 'en');
    assert.equal(t('mail.confirm.expiry', { days: 7 }), 'The link works once and expires in 7 days.');
    assert.equal(t('mail.confirm.subject', {}), 'Please confirm your subscription to {controller}');
    assert.throws(() => t('no.such.key'), /missing message "no\.such\.key" for en/);
  });

  test('an unsupported locale falls back to English', () => {
    const { t, locale } = translator('tlh');
    assert.equal(locale, 'en');
    assert.equal(t('form.submit'), english['form.submit']);
  });
});

describe('chooseLocale', () => {
  test('the four shipped languages: English, Bulgarian, German and French', () => {
    assert.deepEqual([...supportedLocales], ['bg', 'de', 'en', 'fr']);
    for (const locale of supportedLocales) {
      const { t, locale: chosen } = translator(locale);
      assert.equal(chosen, locale);
      // Placeholders survive translation: the same {names} in every language.
      for (const key of Object.keys(english)) {
        const names = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
        assert.deepEqual(names(t(key)), names(english[key]!), `${locale}: ${key} keeps its placeholders`);
      }
    }
    assert.equal(translator('de').t('form.submit'), 'Abonnieren');
    assert.equal(translator('fr').t('mail.confirm.expiry', { days: 7 }), 'Ce lien ne fonctionne qu’une seule fois et expire dans 7 jours.');
  });

  test('with the shipped catalogues: stored, then Accept-Language, then the fallback', () => {
    assert.equal(chooseLocale({ stored: 'en', acceptLanguage: 'de', fallback: 'xx' }), 'en');
    assert.equal(chooseLocale({ stored: 'bg', acceptLanguage: 'de, fr', fallback: 'en' }), 'bg');
    assert.equal(chooseLocale({ stored: 'tlh', acceptLanguage: 'en-GB,en;q=0.9', fallback: 'xx' }), 'en');
    assert.equal(chooseLocale({ stored: null, acceptLanguage: 'de-DE, fr;q=0.8, en;q=0.1', fallback: 'xx' }), 'de');
    assert.equal(chooseLocale({ stored: null, acceptLanguage: 'it, bg-BG;q=0.5, en;q=0.1', fallback: 'xx' }), 'bg');
    assert.equal(chooseLocale({ acceptLanguage: 'it, es', fallback: 'fr' }), 'fr');
    assert.equal(chooseLocale({ acceptLanguage: 'it, en;q=0', fallback: 'xx' }), 'xx');
    assert.equal(chooseLocale({ acceptLanguage: '*', fallback: 'xx' }), 'xx');
    assert.equal(chooseLocale({ fallback: 'xx' }), 'xx');
  });

  /**
   * Ranking needs more than one catalogue. The module is copied verbatim, with
   * synthetic catalogues beside it, so the real loader and ranking are tested
   * without touching src/shared/messages.
   */
  describe('with three catalogues (a copy of the module beside synthetic de.json and fr.json)', () => {
    let dir: string;
    let copy: typeof import('./i18n.js');

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'assent-i18n-'));
      mkdirSync(join(dir, 'messages'));
      copyFileSync(join(here, 'i18n.ts'), join(dir, 'i18n.mts'));
      copyFileSync(join(messagesDir, 'en.json'), join(dir, 'messages', 'en.json'));
      const german = Object.fromEntries(Object.keys(english).map((k) => [k, `de:${k}`]));
      delete german['form.submit'];
      german['form.extra'] = 'de:extra';
      writeFileSync(join(dir, 'messages', 'de.json'), JSON.stringify(german));
      writeFileSync(join(dir, 'messages', 'fr.json'), JSON.stringify(Object.fromEntries(Object.keys(english).map((k) => [k, `fr:${k}`]))));
      copy = (await import(pathToFileURL(join(dir, 'i18n.mts')).href)) as typeof import('./i18n.js');
    });
    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('a catalogue missing a key (or adding one) is caught', () => {
      assert.deepEqual([...copy.supportedLocales], ['de', 'en', 'fr']);
      assert.deepEqual(catalogueDifferences(copy.catalogKeys()), [{ locale: 'de', missing: ['form.submit'], extra: ['form.extra'] }]);
      assert.throws(() => copy.translator('de').t('form.submit'), /missing message "form\.submit" for de/);
      assert.equal(copy.translator('fr').t('form.submit'), 'fr:form.submit');
    });

    const cases: [string, { stored?: string | null; acceptLanguage?: string }, string][] = [
      ['stored wins over Accept-Language', { stored: 'de', acceptLanguage: 'fr, en' }, 'de'],
      ['an unsupported stored locale is skipped', { stored: 'tlh', acceptLanguage: 'fr' }, 'fr'],
      ['highest q wins, whatever the order', { acceptLanguage: 'de;q=0.5, fr;q=0.9, en;q=0.7' }, 'fr'],
      ['no q means 1', { acceptLanguage: 'de;q=0.9, fr' }, 'fr'],
      ['equal q keeps the order given', { acceptLanguage: 'de, fr' }, 'de'],
      ['a region falls back to its language', { acceptLanguage: 'de-AT;q=0.8, fr-CA;q=0.7' }, 'de'],
      ['unsupported tags are passed over', { acceptLanguage: 'it, es;q=0.9, fr;q=0.1' }, 'fr'],
      ['q=0 means "not acceptable"', { acceptLanguage: 'fr;q=0, de;q=0.2' }, 'de'],
      ['a malformed q is ignored', { acceptLanguage: 'fr;q=abc, de;q=0.1' }, 'de'],
      ['tags are case-insensitive', { acceptLanguage: 'FR-ca' }, 'fr'],
      ['optional white space around ";" (RFC 9110 §12.4.2)', { acceptLanguage: 'fr ; q=0.9, de ;q=0.5' }, 'fr'],
      ['the "q" name is case-insensitive (RFC 9110 §12.4.2)', { acceptLanguage: 'fr;Q=0.1, de;q=0.5' }, 'de'],
      ['nothing supported: the fallback', { acceptLanguage: 'it, es' }, 'xx'],
      ['no header: the fallback', {}, 'xx'],
    ];
    for (const [name, input, expected] of cases) {
      test(name, () => {
        assert.equal(copy.chooseLocale({ ...input, fallback: 'xx' }), expected);
      });
    }
  });
});
