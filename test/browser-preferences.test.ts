/**
 * Issue 4 acceptance in a real browser: withdrawal as easy as consent. The
 * server runs as `npm start` runs it (a child process, SQLite, the outbox
 * transport, its in-process worker), Debian's Chromium is driven by
 * playwright-core, and a person walks it as they would:
 *
 * 1. signs up for three topics on a form and confirms by the emailed link;
 * 2. receives a campaign (template, `campaign create`, `campaign start`, all
 *    through the CLI), whose captured message carries List-Unsubscribe;
 * 3. opens that unsubscribe link, clicks once, and sees the confirmation;
 * 4. opens the preference centre from the message and withdraws a second
 *    topic, while the third stays subscribed;
 * 5. downloads their data, which holds every consent event of theirs;
 * 6. erases their data (a confirmation step, then the erased page), after
 *    which their links name no one;
 * 7. and `assent ledger verify` still passes once the server has stopped.
 *
 * Without /usr/bin/chromium the suite is skipped with a reason, except under
 * CI=true, where a missing browser fails it (CI installs it, see .ci/run).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { ParsedMail } from 'mailparser';
import { repoRoot, runAssent, startServer, type ServerProcess } from './support/server-process.js';
import { browserSkip, launchChromium, watchPage } from './support/browser.js';
import { outboxReader } from './support/outbox.js';

const TIMEOUT = 90_000;
const ADDRESS = 'reader@example.org';
const SUBJECT = `News for ${ADDRESS}`;
const TOPICS = { newsletter: 'Newsletter', events: 'Events', offers: 'Offers' } as const;
type Slug = keyof typeof TOPICS;

/** A header of the raw message, unfolded (RFC 5322 §2.2.3). */
function rawHeader(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.search(/\r?\n\r?\n/)).replace(/\r?\n[ \t]+/g, ' ');
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(head)?.[1]?.trim();
}

function linksIn(mail: ParsedMail): string[] {
  return [...`${mail.text ?? ''}\n${mail.html || ''}`.matchAll(/https?:\/\/[^\s"'<>\]]+/g)].map((m) => m[0].replace(/&amp;/g, '&'));
}

async function heading(page: Page, name: string): Promise<void> {
  await page.getByRole('heading', { level: 1, name, exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
}

interface ExportedEvent {
  id: string;
  seq: number;
  type: string;
  topic: { id: string; slug: string; name: string } | null;
  evidence: { method: string; actor: string };
}
interface Exported {
  format: string;
  profile: { id: string; address: string | null };
  consent_events: ExportedEvent[];
  consent_states: { topic: { slug: string }; state: string }[];
  messages: { system: { kind: string }[]; campaigns: { campaign_id: string; subject: string; status: string }[] };
}

describe('withdrawal in a real browser: one-click unsubscribe, preference centre, export, erasure (sqlite)', { skip: browserSkip }, () => {
  let browser: Browser | undefined;
  let server: ServerProcess | undefined;
  let context: BrowserContext | undefined;
  let campaignId = '';
  let unsubscribeUrl = '';
  let preferencesUrl = '';
  let contactId = '';

  const live = () => {
    assert.ok(browser && server && context, 'the browser and the server did not start (see the before hook)');
    return { browser, server, context };
  };
  const cli = async (args: string[]): Promise<string> => {
    const result = await runAssent(args, live().server.env);
    assert.equal(result.code, 0, `assent ${args.join(' ')} exits 0\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  };

  before(
    async () => {
      [server, browser] = await Promise.all([
        startServer({ env: { ASSENT_LOG_LEVEL: 'warn' } }),
        launchChromium(),
      ]);
      context = await browser.newContext({ acceptDownloads: true, extraHTTPHeaders: { 'Accept-Language': 'en' } });
      // Two more topics and a form offering all three, so one topic is left after two withdrawals.
      for (const slug of ['events', 'offers'] as const) {
        await cli(['topic', 'add', slug, '--name', TOPICS[slug], '--description', `${TOPICS[slug]} from Assent`]);
      }
      await cli(['form', 'add', 'all', '--title', 'Everything from Assent', '--topic', 'newsletter', '--topic', 'events', '--topic', 'offers']);
      await cli(['template', 'add', 'newsletter', '--file', join(repoRoot, 'examples', 'newsletter.mjml')]);
    },
    { timeout: TIMEOUT },
  );

  after(
    async () => {
      await context?.close().catch(() => undefined);
      await browser?.close().catch(() => undefined);
      await server?.dispose();
    },
    { timeout: TIMEOUT },
  );

  it('signs up for three topics and confirms by the emailed link', { timeout: TIMEOUT }, async () => {
    const { server, context } = live();
    const page = await context.newPage();
    const problems = watchPage(page);
    await page.goto(`${server.url}/f/all`);
    await heading(page, 'Everything from Assent');
    await page.getByLabel('Email address').fill(ADDRESS);
    for (const name of Object.values(TOPICS)) {
      const box = page.getByRole('checkbox', { name: new RegExp(`^${name}\\b`) });
      assert.equal(await box.isChecked(), false, `${name} is not ticked for the visitor`);
      await box.check();
    }
    await page.getByRole('button', { name: 'Subscribe' }).click();
    await heading(page, 'Check your inbox');

    const { mail } = await outboxReader(server)(ADDRESS, 'Please confirm your subscription to Assent');
    const confirmUrl = linksIn(mail).find((u) => u.startsWith(`${server.url}/confirm/`));
    assert.ok(confirmUrl, `a confirm link in:\n${mail.text}`);
    await page.goto(confirmUrl);
    await heading(page, 'Confirm your subscription');
    await page.getByRole('button', { name: 'Confirm', exact: true }).click();
    await heading(page, 'Thank you, you are subscribed');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('a campaign started from the CLI reaches them with List-Unsubscribe and a preference link', { timeout: TIMEOUT }, async () => {
    const { server } = live();
    const created = await cli(['campaign', 'create', '--topic', 'newsletter', '--template', 'newsletter', '--subject', 'News for {{ contact.email }}', '--from', 'News <news@example.org>']);
    campaignId = created.trim().split('\n').at(-1)!;
    assert.match(campaignId, /^[0-9a-f-]{36}$/);
    await cli(['campaign', 'start', campaignId]);

    const { raw, mail } = await outboxReader(server)(ADDRESS, SUBJECT);
    // RFC 8058: an HTTPS/HTTP URI in List-Unsubscribe and the one-click POST marker.
    const listUnsubscribe = rawHeader(raw, 'List-Unsubscribe') ?? '';
    assert.equal(rawHeader(raw, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
    const fromHeader = /<(https?:\/\/[^>]+)>/.exec(listUnsubscribe)?.[1];
    assert.ok(fromHeader && fromHeader.startsWith(`${server.url}/u/`), `List-Unsubscribe names ${server.url}/u/…: ${listUnsubscribe}`);
    unsubscribeUrl = fromHeader;
    const links = linksIn(mail);
    assert.ok(links.includes(unsubscribeUrl), 'the body carries the same unsubscribe link');
    const prefs = links.find((u) => u.startsWith(`${server.url}/p/`));
    assert.ok(prefs, `a preference-centre link in the body:\n${mail.text}`);
    preferencesUrl = prefs;
  });

  it('opens the unsubscribe link, clicks once, and sees the confirmation', { timeout: TIMEOUT }, async () => {
    const { context } = live();
    const page = await context.newPage();
    const problems = watchPage(page);
    const response = await page.goto(unsubscribeUrl);
    assert.equal(response?.status(), 200);
    await heading(page, 'Unsubscribe');
    await page.getByText('Press the button to stop receiving “Newsletter” from Assent.').waitFor();
    // The GET changed nothing: the centre still shows the newsletter as subscribed.
    const centre = await context.newPage();
    await centre.goto(preferencesUrl);
    await centre.getByRole('region', { name: 'Newsletter' }).getByText('Subscribed', { exact: true }).waitFor();
    await centre.close();

    const buttons = page.getByRole('button');
    assert.equal(await buttons.count(), 1, 'one button');
    await buttons.click();
    await heading(page, 'You are unsubscribed');
    await page.getByText('You will no longer receive “Newsletter”. This took effect at once.').waitFor();
    assert.ok(await page.getByRole('link', { name: 'Manage all your subscriptions and your data' }).isVisible());
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('opens the preference centre from the message and withdraws one topic; the others keep their state', { timeout: TIMEOUT }, async () => {
    const { context } = live();
    const page = await context.newPage();
    const problems = watchPage(page);
    await page.goto(preferencesUrl);
    await heading(page, 'Your subscriptions');
    const section = (slug: Slug) => page.getByRole('region', { name: TOPICS[slug], exact: true });
    await section('newsletter').getByText('Unsubscribed', { exact: true }).waitFor();
    await section('events').getByText('Subscribed', { exact: true }).waitFor();
    await section('offers').getByText('Subscribed', { exact: true }).waitFor();

    await section('events').getByRole('button', { name: 'Unsubscribe from Events' }).click();
    await heading(page, 'Your subscriptions');
    await page.getByRole('status').getByText('You are unsubscribed from “Events”.').waitFor();
    await section('events').getByText('Unsubscribed', { exact: true }).waitFor();
    await section('offers').getByText('Subscribed', { exact: true }).waitFor();
    assert.equal(await section('offers').getByRole('button', { name: 'Unsubscribe from Offers' }).count(), 1, 'Offers can still be withdrawn');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('downloads their data: every consent event of theirs, with how each withdrawal came', { timeout: TIMEOUT }, async () => {
    const { context, server } = live();
    const page = await context.newPage();
    await page.goto(preferencesUrl);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download all your data (JSON)' }).click()]);
    assert.equal(download.suggestedFilename(), 'my-data.json');
    const path = await download.path();
    const data = JSON.parse(readFileSync(path, 'utf8')) as Exported;
    await page.close();

    assert.equal(data.format, 'assent-export/1');
    assert.equal(data.profile.address, ADDRESS);
    contactId = data.profile.id;
    const typesOf = (slug: Slug) => data.consent_events.filter((e) => e.topic?.slug === slug).map((e) => e.type);
    for (const slug of Object.keys(TOPICS) as Slug[]) {
      assert.ok(typesOf(slug).includes('requested'), `${slug}: requested`);
      assert.ok(typesOf(slug).includes('confirmed'), `${slug}: confirmed`);
    }
    const withdrawal = (slug: Slug) => data.consent_events.find((e) => e.topic?.slug === slug && e.type === 'withdrawn');
    assert.equal(withdrawal('newsletter')?.evidence.method, 'footer_page', 'the newsletter was withdrawn on the unsubscribe page');
    assert.equal(withdrawal('events')?.evidence.method, 'preference_centre', 'events were withdrawn in the centre');
    assert.equal(withdrawal('offers'), undefined, 'offers were not withdrawn');
    assert.deepEqual(
      Object.fromEntries(data.consent_states.map((s) => [s.topic.slug, s.state])),
      { newsletter: 'withdrawn', events: 'withdrawn', offers: 'confirmed' },
    );
    assert.ok(data.messages.campaigns.some((c) => c.campaign_id === campaignId), 'the campaign message is listed');

    // Exactly the ledger's events for this person: none missing, none of anyone else.
    // Read-only: the server still has the file open.
    const options: Database.Options = { fileMustExist: true };
    options.readonly = true;
    const db = new Database(join(server.dataDir, 'assent.sqlite'), options);
    try {
      const rows = db.prepare('select id from consent_events where contact_id = ? order by seq').all(contactId) as { id: string }[];
      assert.deepEqual(data.consent_events.map((e) => e.id), rows.map((r) => r.id));
    } finally {
      db.close();
    }
  });

  it('erases their data after a confirmation step; their links then name no one', { timeout: TIMEOUT }, async () => {
    const { context } = live();
    const page = await context.newPage();
    const problems = watchPage(page);
    await page.goto(preferencesUrl);
    await page.getByRole('link', { name: 'Erase all your data' }).click();
    await heading(page, 'Erase your data');
    // The confirmation step offers a way back that changes nothing.
    assert.ok(await page.getByRole('link', { name: 'Keep my data and go back' }).isVisible());
    await page.getByRole('button', { name: 'Erase my data' }).click();
    await heading(page, 'Your data is erased');
    assert.deepEqual(problems, []);

    for (const url of [preferencesUrl, unsubscribeUrl]) {
      const response = await page.goto(url);
      assert.equal(response?.status(), 404, url);
      await heading(page, 'This link is not valid');
    }
    await page.close();
  });

  it('stops cleanly, and the ledger still verifies after the erasure', { timeout: TIMEOUT }, async () => {
    const { server } = live();
    await server.stop();
    const result = await runAssent(['ledger', 'verify'], server.env);
    assert.equal(result.code, 0, `assent ledger verify exits 0\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /ledger intact/);
  });
});
