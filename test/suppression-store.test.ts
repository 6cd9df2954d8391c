/**
 * COMPLIANCE.md SUP-04: the suppression store is separate from subscriber
 * data and excluded from marketing use.
 *
 * (c) An architecture test over the source tree: the store is read only by
 * the code that screens against it (the send gate and the claim that
 * evaluates it, sign-up and re-subscription, import screening), by the
 * re-permission confirm click, the preference centre that tells the person
 * they are suppressed, and the person's own Art. 15 export (their entries,
 * found by their own hashes). Segmentation (the campaign audience) and
 * templates never read it, so no list of people can be built from it. A new reader fails this test until it
 * is added here, knowingly.
 *
 * (d) The erase confirmation page tells the person, in every language the
 * pages speak, that a minimal suppression record (a one-way code of the
 * address) is kept so they are never mailed again.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { erasePage } from '../src/http/public/preference-views.js';
import { escapeHtml } from '../src/shared/html.js';
import { supportedLocales, translator } from '../src/shared/i18n.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** Every source file of the product (tests, migrations and the schema declaration aside). */
function sourceFiles(dir: string = SRC): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'migrations' ? [] : sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.test.ts') && !path.endsWith('/storage/schema.ts') ? [path] : [];
  });
}

/** SQL on the table itself (Kysely or raw), or a call of one of consent/'s suppression readers. */
const READS = [
  /(?:selectFrom|innerJoin|leftJoin|rightJoin|fullJoin)\(\s*['"]suppressions(?:\s+as\s+\w+)?['"]/,
  /\b(?:from|join)\s+"?suppressions"?\b/i,
  /\b(?:findSuppressions|findSuppressionRows|findSuppressionHits|findSuppressionEntries)\s*\(/,
];

function readers(): string[] {
  return sourceFiles()
    .filter((path) => READS.some((re) => re.test(readFileSync(path, 'utf8'))))
    .map((path) => relative(SRC, path))
    .sort();
}

const ALLOWED = [
  'campaigns/repermission-confirm.service.ts', // a confirm click of someone suppressed since confirms nothing
  'consent/gate.service.ts', // the one gate function (DESIGN.md)
  'consent/suppression.repository.ts', // the store's own queries
  'contacts/import-plan.ts', // import screening (EPR-06, SUP-04 b)
  'contacts/import.repository.ts', // its query
  'delivery/claim.repository.ts', // the gate evaluated in the batch claim's read
  'dsr/dsr.repository.ts', // the person's own entries, for their export (Art. 15)
  'dsr/export.service.ts', // idem, by the person's own hashes and events
  'forms/confirmation.service.ts', // a confirmation through an old link does not undo a later objection
  'forms/resubscription.service.ts', // screening a request from the centre
  'forms/signup.service.ts', // screening a sign-up
  'preferences/centre.service.ts', // telling the person they are suppressed
  'preferences/withdrawal.service.ts', // not suppressing twice
].sort();

describe('the suppression store (SUP-04)', () => {
  test('SUP-04 c: only screening code, the person\'s centre and their own export read it; segmentation and templates never do', () => {
    const found = readers();
    assert.deepEqual(found, ALLOWED, 'a new reader of the suppression store must be reviewed and listed here');
    const segmentation = /^(campaigns\/(audience|campaign|repermission)\.|campaigns\/dedupe|templates\/)/;
    for (const path of found) assert.ok(!segmentation.test(path), `${path} is segmentation or content code`);
  });

  test('SUP-04 c: the check itself sees a read in each form it looks for', () => {
    const samples = [
      "db.selectFrom('suppressions').selectAll()",
      "trx.innerJoin('suppressions as s', 's.key_hash', 'h.key')",
      'sql`select 1 from suppressions where key_hash = ${h}`',
      'await findSuppressions(trx, hashes, topics)',
    ];
    for (const sample of samples) assert.ok(READS.some((re) => re.test(sample)), sample);
    assert.ok(!READS.some((re) => re.test("import { ALL_SCOPE } from '../consent/index.js'; // suppressions")), 'a mere mention is not a read');
  });

  test('SUP-04 d: the erase confirmation page says, in every language, that a one-way code of the address is kept so no mail comes again', () => {
    assert.deepEqual([...supportedLocales], ['bg', 'de', 'en', 'fr']);
    for (const locale of supportedLocales) {
      const { t } = translator(locale);
      const page = erasePage({ t, locale, controller: 'Example Ltd', policyUrl: 'https://example.org/privacy' }, { token: 'tok' });
      assert.ok(page.includes(escapeHtml(t('erase.body'))), `${locale}: the page shows erase.body`);
    }
    // Each language says both halves: a one-way code of the address is kept, so no mail comes again.
    const says: Record<string, RegExp[]> = {
      en: [/one-way code/, /never email you again/],
      de: [/nicht umkehrbarer Code/, /nie wieder/],
      fr: [/code irréversible/, /plus jamais/],
      bg: [/необратим код/, /никога повече/],
    };
    for (const locale of supportedLocales) for (const phrase of says[locale]!) assert.match(translator(locale).t('erase.body'), phrase, locale);
  });
});
