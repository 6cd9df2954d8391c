/**
 * Issue 4 point 6: every public page, served by the real server (`npm start`
 * as a child process, SQLite, the outbox transport), is audited with axe-core
 * in Chromium, in English and in German (Accept-Language: de), and has no
 * serious or critical violation. Every violation axe reports, of any impact,
 * is printed as a diagnostic. The sign-up form and the preference centre are
 * also walked with the Tab key: every control is reached, in document order,
 * and the focused control shows a visible focus ring.
 *
 * The pages are reached as a visitor reaches them: the sign-up form (empty,
 * then with its validation errors), "check your inbox", the emailed confirm
 * link, "confirmed", the same link again ("not valid"), an unknown form, "send
 * me my link" and its answer, the emailed preference centre (also with an
 * error notice), the unsubscribe page of a link signed with the server's own
 * keys and its confirmation, the erase confirmation and the erased page, and
 * the re-permission page of an imported contact with its answers.
 *
 * Without /usr/bin/chromium the suite is skipped with a reason, except under
 * CI=true, where a missing browser fails it.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { ParsedMail } from 'mailparser';
import { loadConfig } from '../src/config/config.js';
import { loadSecrets } from '../src/config/secrets.js';
import { signLinkToken } from '../src/preferences/link-token.js';
import { translator } from '../src/shared/i18n.js';
import { repoRoot, runAssent, startServer, type ServerProcess } from './support/server-process.js';
import { browserSkip, launchChromium } from './support/browser.js';
import { outboxReader } from './support/outbox.js';

const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const TIMEOUT = 180_000;
const CONTROLLER = 'Assent';
/** The default form's heading: operator content, written once in the server's default language (English here). */
const FORM_TITLE = translator('en').t('defaults.form.title', { controller: CONTROLLER });

interface AxeNode {
  target: unknown[];
  html: string;
  failureSummary?: string;
}
interface AxeViolation {
  id: string;
  impact: 'minor' | 'moderate' | 'serious' | 'critical' | null;
  help: string;
  helpUrl: string;
  nodes: AxeNode[];
}

/**
 * Injects axe-core (the context bypasses the page's CSP, which allows no
 * script at all) and runs every default rule on the whole page.
 */
async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.addScriptTag({ path: axePath });
  // Browser-side code is a string: the project compiles without the DOM library.
  return (await page.evaluate(`(async () => {
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target, html: n.html, failureSummary: n.failureSummary })),
    }));
  })()`)) as AxeViolation[];
}

/** Audits the page as it is now, as a subtest named after it; prints every violation, fails on serious or critical ones. */
async function audit(t: TestContext, page: Page, name: string, lang: string): Promise<void> {
  await t.test(`${name} (${page.url().replace(/\/(u|p|r|confirm)\/[^/?#]+/, '/$1/…')})`, async (st) => {
    assert.equal(await page.getAttribute('html', 'lang'), lang, 'the page declares its language');
    const violations = await axeViolations(page);
    for (const v of violations) {
      st.diagnostic(`[${v.impact ?? 'n/a'}] ${v.id}: ${v.help} (${v.helpUrl})`);
      for (const n of v.nodes) st.diagnostic(`    ${JSON.stringify(n.target)} ${n.html.slice(0, 160)}${n.failureSummary ? `\n      ${n.failureSummary.replace(/\s+/g, ' ')}` : ''}`);
    }
    const blocking = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(
      blocking.map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => JSON.stringify(n.target)).join(' ')}`),
      [],
      'no serious or critical axe-core violations',
    );
  });
}

/** Names an element the same way on both sides of the comparison: tag|id|name|value|text. */
const describeElement = `((el) => [el.tagName.toLowerCase(), el.id, el.getAttribute('name') || '', el.getAttribute('value') || '', (el.textContent || '').trim().slice(0, 60)].join('|'))`;

interface Stop {
  key: string;
  focusVisible: boolean;
  outline: string;
}

/**
 * Presses Tab from a freshly loaded page until focus leaves the document or
 * comes round again, recording each stop and whether its focus is visible.
 */
async function tabStops(page: Page, max = 80): Promise<Stop[]> {
  const stops: Stop[] = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const stop = (await page.evaluate(`(() => {
      const el = document.activeElement;
      if (!el || el === document.body || el === document.documentElement) return null;
      const style = getComputedStyle(el);
      const outlined = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
      return {
        key: ${describeElement}(el),
        focusVisible: el.matches(':focus-visible') && (outlined || style.boxShadow !== 'none'),
        outline: style.outlineStyle + ' ' + style.outlineWidth,
      };
    })()`)) as Stop | null;
    if (!stop || stops[0]?.key === stop.key) break;
    stops.push(stop);
  }
  return stops;
}

/** The controls a keyboard user must be able to reach, in document order (what Tab should visit). */
async function tabbableInDocumentOrder(page: Page): Promise<string[]> {
  return (await page.evaluate(`[...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
    .filter((el) => el.tabIndex >= 0 && !el.disabled && el.type !== 'hidden')
    .filter((el) => el.getClientRects().length > 0 && !el.closest('[aria-hidden="true"]'))
    .map(${describeElement})`)) as string[];
}

async function checkKeyboard(t: TestContext, page: Page, name: string, expectFirst: RegExp[]): Promise<void> {
  await t.test(`${name}: Tab reaches every control in order, with visible focus`, async () => {
    await page.reload();
    const expected = await tabbableInDocumentOrder(page);
    const stops = await tabStops(page);
    assert.ok(expected.length > 0);
    assert.deepEqual(
      stops.map((s) => s.key),
      expected,
      'Tab visits every control once, in document order (one column: document order is reading order)',
    );
    for (const [i, pattern] of expectFirst.entries()) assert.match(stops[i]?.key ?? '(none)', pattern, `stop ${i + 1}`);
    const invisible = stops.filter((s) => !s.focusVisible);
    assert.deepEqual(invisible.map((s) => `${s.key} (outline: ${s.outline})`), [], 'every focused control shows a focus ring');
  });
}

function linkIn(mail: ParsedMail, server: ServerProcess, path: string): string {
  const escaped = `${server.url}/${path}/`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`${escaped}[A-Za-z0-9_.-]+`).exec(`${mail.text ?? ''}\n${mail.html || ''}`);
  assert.ok(match, `no ${server.url}/${path}/ link in "${mail.subject}":\n${mail.text}`);
  return match[0];
}

async function heading(page: Page, name: string): Promise<void> {
  await page.getByRole('heading', { level: 1, name, exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
}

describe('accessibility of every public page (axe-core in Chromium)', { skip: browserSkip }, () => {
  let browser: Browser | undefined;
  let server: ServerProcess | undefined;
  let nextMail: (to: string, subject: string) => Promise<ParsedMail>;

  const live = () => {
    assert.ok(browser && server, 'the browser and the server did not start (see the before hook)');
    return { browser, server };
  };

  before(
    async () => {
      [server, browser] = await Promise.all([
        startServer({ env: { ASSENT_LOG_LEVEL: 'warn' } }),
        launchChromium(),
      ]);
      const readOutbox = outboxReader(server);
      nextMail = async (to, subject) => (await readOutbox(to, subject, 20_000)).mail;
      const cli = async (args: string[]) => {
        const result = await runAssent(args, server!.env);
        assert.equal(result.code, 0, `assent ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
        return result.stdout;
      };
      // A second public topic, so the preference centre also offers "subscribe to more".
      await cli(['topic', 'add', 'events', '--name', 'Events', '--description', 'Invitations to our events', '--text', 'Email me invitations to events. I can unsubscribe at any time.']);
      // Imported contacts with a stored language, asked for re-permission (the /r/ page).
      const csv = join(server.dataDir, 'imported.csv');
      writeFileSync(csv, 'email,locale\nrp-en@example.org,en\nrp-de@example.org,de\n');
      await cli(['import', csv, '--topic', 'newsletter', '--report', join(server.dataDir, 'imported.report.csv')]);
      const deadline = new Date(Date.now() + 30 * 86_400_000).toISOString();
      await cli(['repermission', 'create', '--topic', 'newsletter', '--deadline', deadline, '--from', 'News <news@example.org>', '--start']);
    },
    { timeout: TIMEOUT },
  );

  after(
    async () => {
      await browser?.close().catch(() => undefined);
      await server?.dispose();
    },
    { timeout: TIMEOUT },
  );

  // The stylesheet declares `color-scheme: light dark`: contrast is checked in both.
  const runs = [
    { lang: 'en', scheme: 'light', name: 'English, light colour scheme' },
    { lang: 'de', scheme: 'dark', name: 'German (Accept-Language: de), dark colour scheme' },
  ] as const;
  for (const { lang, scheme, name } of runs) {
    it(`every page in ${name}`, { timeout: TIMEOUT }, async (t) => {
      const { browser, server } = live();
      const { t: m } = translator(lang);
      const address = `a11y-${lang}@example.org`;
      const context: BrowserContext = await browser.newContext({
        bypassCSP: true, // axe-core is injected as a script; the pages themselves allow none
        colorScheme: scheme,
        locale: lang === 'de' ? 'de-DE' : 'en-US',
        extraHTTPHeaders: { 'Accept-Language': lang === 'de' ? 'de-DE,de;q=0.9' : 'en-US,en;q=0.9' },
      });
      try {
        const page = await context.newPage();

        // The sign-up form, then its validation errors, then "check your inbox".
        assert.equal((await page.goto(`${server.url}/f/newsletter`))?.status(), 200);
        await heading(page, FORM_TITLE);
        await audit(t, page, 'sign-up form', lang);
        await checkKeyboard(t, page, 'sign-up form', [/^input\|email\|/, /^input\|topic-newsletter\|topics\|newsletter\|/]);
        await page.getByRole('button', { name: m('form.submit') }).click();
        await heading(page, FORM_TITLE);
        await page.getByRole('heading', { level: 2, name: m('form.error.title') }).waitFor();
        await audit(t, page, 'sign-up form with validation errors', lang);
        await page.getByLabel(m('form.email.label')).fill(address);
        await page.getByLabel(/Newsletter/).check();
        await page.getByRole('button', { name: m('form.submit') }).click();
        await heading(page, m('inbox.title'));
        await audit(t, page, '"check your inbox"', lang);

        // The confirmation mail is in the page's language; its link opens the confirm page.
        const confirmation = await nextMail(address, m('mail.confirm.subject', { controller: CONTROLLER }));
        const confirmUrl = linkIn(confirmation, server, 'confirm');
        assert.equal((await page.goto(confirmUrl))?.status(), 200);
        await heading(page, m('confirm.title'));
        await audit(t, page, 'confirm page', lang);
        await page.getByRole('button', { name: m('confirm.button'), exact: true }).click();
        await heading(page, m('confirmed.title'));
        await audit(t, page, 'confirmed page', lang);
        await nextMail(address, m('mail.receipt.subject', { topic: 'Newsletter' }));
        assert.equal((await page.goto(confirmUrl))?.status(), 404);
        await heading(page, m('link.invalid.title'));
        await audit(t, page, 'invalid-link page', lang);
        assert.equal((await page.goto(`${server.url}/f/no-such-form`))?.status(), 404);
        await heading(page, m('form.not_found.title'));
        await audit(t, page, 'unknown form', lang);

        // "Send me my link", its answer, and the preference centre it mails.
        assert.equal((await page.goto(`${server.url}/p`))?.status(), 200);
        await heading(page, m('link.request.title'));
        await audit(t, page, '"send me my link"', lang);
        await page.getByLabel(m('form.email.label')).fill(address);
        await page.getByRole('button', { name: m('link.request.button') }).click();
        await heading(page, m('link.sent.title'));
        await audit(t, page, '"link sent"', lang);
        const centreUrl = linkIn(await nextMail(address, m('mail.preferences.subject', { controller: CONTROLLER })), server, 'p');
        assert.equal((await page.goto(centreUrl))?.status(), 200);
        await heading(page, m('centre.title'));
        await audit(t, page, 'preference centre', lang);
        await checkKeyboard(t, page, 'preference centre', [/^a\|\|\|\|/, /^button\|/]);
        await page.getByRole('button', { name: m('centre.subscribe.button') }).click();
        await page.getByRole('alert').getByText(m('centre.subscribe.error')).waitFor();
        await audit(t, page, 'preference centre with an error notice', lang);

        // The unsubscribe page of a link signed with the server's keys, and its confirmation.
        const exported = (await (await fetch(`${centreUrl}/export.json`)).json()) as {
          profile: { id: string };
          consent_states: { topic: { id: string; slug: string } }[];
        };
        const topicId = exported.consent_states.find((s) => s.topic.slug === 'newsletter')?.topic.id;
        assert.ok(topicId, 'the export names the newsletter topic');
        const { linkKeys } = await loadSecrets(loadConfig(server.env, { cwd: repoRoot }));
        const unsubscribeToken = signLinkToken(linkKeys, { purpose: 'unsubscribe', contactId: exported.profile.id, topicId });
        assert.equal((await page.goto(`${server.url}/u/${unsubscribeToken}`))?.status(), 200);
        await heading(page, m('unsubscribe.title'));
        await audit(t, page, 'unsubscribe page', lang);
        await page.getByRole('button', { name: m('unsubscribe.button'), exact: true }).click();
        await heading(page, m('unsubscribed.title'));
        await audit(t, page, 'unsubscribed confirmation', lang);
        await page.goto(centreUrl);
        await page.getByText(m('centre.status.withdrawn'), { exact: true }).first().waitFor();
        await audit(t, page, 'preference centre after a withdrawal', lang);

        // Erasure: the confirmation step, then the erased page.
        await page.getByRole('link', { name: m('centre.data.erase') }).click();
        await heading(page, m('erase.title'));
        await audit(t, page, 'erase confirmation', lang);
        await page.getByRole('button', { name: m('erase.button') }).click();
        await heading(page, m('erased.title'));
        await audit(t, page, 'erased page', lang);

        // The re-permission page of an imported contact, in the contact's stored language.
        const request = await nextMail(`rp-${lang}@example.org`, m('mail.repermission.subject', { topic: 'Newsletter', controller: CONTROLLER }));
        const repermissionUrl = linkIn(request, server, 'r');
        assert.equal((await page.goto(repermissionUrl))?.status(), 200);
        await heading(page, m('repermission.title', { controller: CONTROLLER }));
        await audit(t, page, 're-permission page', lang);
        await page.getByRole('button', { name: m('repermission.button') }).click();
        await heading(page, m('confirmed.title'));
        await page.goto(repermissionUrl);
        await heading(page, m('repermission.already.title'));
        await audit(t, page, 're-permission already confirmed', lang);
      } finally {
        await context.close();
      }
    });
  }

  it('a contact\'s stored language wins over the browser\'s', { timeout: TIMEOUT }, async () => {
    const { browser, server } = live();
    // rp-de was imported with locale "de": its mail is German, and so is its page in an English browser.
    const { t: de } = translator('de');
    const request = await nextMail('rp-de@example.org', de('mail.repermission.subject', { topic: 'Newsletter', controller: CONTROLLER }));
    const context = await browser.newContext({ extraHTTPHeaders: { 'Accept-Language': 'en' } });
    try {
      const page = await context.newPage();
      await page.goto(linkIn(request, server, 'r'));
      const title = (await page.getByRole('heading', { level: 1 }).textContent())?.trim();
      assert.ok(
        [de('repermission.title', { controller: CONTROLLER }), de('repermission.already.title')].includes(title ?? ''),
        `a German heading, got ${JSON.stringify(title)}`,
      );
      assert.equal(await page.getAttribute('html', 'lang'), 'de');
    } finally {
      await context.close();
    }
  });
});

