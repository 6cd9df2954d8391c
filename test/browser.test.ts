/**
 * End to end in a real browser: the server runs as `npm start` runs it (a
 * child process, the outbox transport), Debian's Chromium is driven by
 * playwright-core, and the double opt-in is walked as a visitor would walk
 * it, with the keyboard: form, inbox, confirmation link, receipt, ledger.
 *
 * Without /usr/bin/chromium the suite is skipped with a reason, except under
 * CI=true, where a missing browser fails it (CI installs it, see .ci/run).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { simpleParser } from 'mailparser';
import { databaseTargets, type TestDatabase } from './support/databases.js';
import { runAssent, startServer, type ServerProcess } from './support/server-process.js';
import { browserSkip, launchChromium, watchPage } from './support/browser.js';

const TIMEOUT = 60_000;

/** Undoes quoted-printable: soft line breaks, then =XX escapes (=3D is "="). */
export function decodeQuotedPrintable(raw: string): string {
  return raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The first /confirm/<token> link in a raw .eml. */
export function confirmLink(raw: string, publicUrl: string): string {
  const text = decodeQuotedPrintable(raw);
  const escaped = publicUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`${escaped}/confirm/[A-Za-z0-9_-]+`).exec(text);
  assert.ok(match, `no ${publicUrl}/confirm/ link in the confirmation mail:\n${text.slice(0, 4000)}`);
  return match[0];
}

for (const target of await databaseTargets()) {
  describe(`sign-up in a real browser (${target.name})`, { skip: browserSkip || target.skip }, () => {
    let browser: Browser | undefined;
    let server: ServerProcess | undefined;
    let database: TestDatabase | undefined;
    const address = `visitor.${target.name}@example.com`;
    const noJsAddress = `no-js.${target.name}@example.com`;

    const live = (): { browser: Browser; server: ServerProcess } => {
      assert.ok(browser && server, 'the browser and the server did not start (see the before hook)');
      return { browser, server };
    };

    before(
      async () => {
        const env: Record<string, string> = {};
        if (target.name === 'postgres') {
          database = await target.open({ migrate: false });
          await database.storage.close();
          env.ASSENT_DATABASE_URL = database.url;
        }
        [server, browser] = await Promise.all([
          startServer({ env }),
          launchChromium(),
        ]);
      },
      { timeout: TIMEOUT },
    );

    after(
      async () => {
        await browser?.close().catch(() => undefined);
        await server?.dispose();
        await database?.cleanup();
      },
      { timeout: TIMEOUT },
    );

    it('offers a labelled form with nothing ticked, submitted by keyboard (GDPR-03)', { timeout: TIMEOUT }, async () => {
      const { browser, server } = live();
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const problems = watchPage(page);
        const response = await page.goto(`${server.url}/f/newsletter`);
        assert.equal(response?.status(), 200);

        const email = page.getByLabel('Email address');
        const topic = page.getByLabel(/Newsletter/);
        await email.waitFor({ state: 'visible' });
        await topic.waitFor({ state: 'visible' });
        assert.equal(await topic.getAttribute('type'), 'checkbox', 'the Newsletter label names the topic checkbox');
        assert.equal(await topic.isChecked(), false, 'no consent box may be pre-ticked (GDPR-03)');
        // The consent text itself is part of the box's accessible name.
        await page.getByRole('checkbox', { name: /I would like to receive/ }).waitFor({ state: 'visible' });

        await email.focus();
        await page.keyboard.type(address);
        await topic.focus();
        await page.keyboard.press('Space');
        assert.equal(await topic.isChecked(), true, 'Space ticks the focused box');

        const submit = page.getByRole('button', { name: 'Subscribe' });
        await submit.focus();
        await page.keyboard.press('Enter');
        await page.getByRole('heading', { name: 'Check your inbox' }).waitFor({ state: 'visible' });
        assert.deepEqual(problems, [], 'the form page and its submission load cleanly');
      } finally {
        await context.close();
      }
    });

    it('confirms through the emailed link', { timeout: TIMEOUT }, async () => {
      const { browser, server } = live();
      const raw = readFileSync(await server.waitForMail(1), 'utf8');
      assert.match(raw, new RegExp(`^To: .*${address.replace(/\./g, '\\.')}`, 'mi'), 'the confirmation goes to the address typed');
      const link = confirmLink(raw, server.url);

      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const problems = watchPage(page);
        const response = await page.goto(link);
        assert.equal(response?.status(), 200);
        await page.getByRole('heading', { name: 'Confirm your subscription' }).waitFor({ state: 'visible' });
        const confirm = page.getByRole('button', { name: 'Confirm' });
        await confirm.waitFor({ state: 'visible' });
        await confirm.click();
        await page.getByRole('heading', { name: 'Thank you, you are subscribed' }).waitFor({ state: 'visible' });
        assert.deepEqual(problems, [], 'the confirmation pages load cleanly');

        // The link is single-use: opening it again offers nothing.
        const again = await page.goto(link);
        assert.equal(again?.status(), 404);
        await page.getByRole('heading', { name: 'This link is not valid' }).waitFor({ state: 'visible' });
      } finally {
        await context.close();
      }
    });

    it('mails a signed receipt that verifies', { timeout: TIMEOUT }, async () => {
      const { server } = live();
      const file = await server.waitForMail(2);
      const mail = await simpleParser(readFileSync(file));
      assert.match(mail.subject ?? '', /consent receipt/i);
      const jws = mail.attachments.find((a) => a.filename === 'consent-receipt.jws');
      assert.ok(jws, `the receipt mail carries consent-receipt.jws (attachments: ${mail.attachments.map((a) => a.filename).join(', ') || 'none'})`);
      assert.match(jws.content.toString('utf8').trim(), /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a compact JWS');

      const verified = await runAssent(['receipt', 'verify', file], server.env);
      assert.equal(verified.code, 0, `assent receipt verify exits 0\n${verified.stdout}\n${verified.stderr}`);
    });

    it('accepts a submission with JavaScript disabled', { timeout: TIMEOUT }, async () => {
      const { browser, server } = live();
      const context = await browser.newContext({ javaScriptEnabled: false });
      try {
        const page = await context.newPage();
        const problems = watchPage(page);
        await page.goto(`${server.url}/f/newsletter`);
        await page.getByLabel('Email address').fill(noJsAddress);
        const topic = page.getByLabel(/Newsletter/);
        assert.equal(await topic.isChecked(), false);
        await topic.check();
        await page.getByRole('button', { name: 'Subscribe' }).click();
        await page.getByRole('heading', { name: 'Check your inbox' }).waitFor({ state: 'visible' });
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
      const raw = readFileSync(await server.waitForMail(3), 'utf8');
      assert.match(raw, new RegExp(`^To: .*${noJsAddress.replace(/\./g, '\\.')}`, 'mi'), 'a confirmation went to the no-JS address');
      confirmLink(raw, server.url);
    });

    it('stops cleanly on SIGTERM and leaves an intact ledger', { timeout: TIMEOUT }, async () => {
      const { server } = live();
      await server.stop();
      const result = await runAssent(['ledger', 'verify'], server.env);
      assert.equal(result.code, 0, `assent ledger verify exits 0\n${result.stdout}\n${result.stderr}`);
      assert.match(result.stdout, /ledger intact/);
    });
  });
}

describe('sign-up over plain HTTP on a host name that is not loopback', { skip: browserSkip }, () => {
  // Browsers treat http://localhost and http://127.0.0.1 as secure; a LAN name
  // or address is not, which is where a CSP upgrade-insecure-requests would
  // send the stylesheet and the form POST to https:// and block the sign-up.
  const host = 'assent.test';
  let browser: Browser | undefined;
  let server: ServerProcess | undefined;

  before(
    async () => {
      [server, browser] = await Promise.all([
        startServer({ publicHost: host }),
        launchChromium({ extraArgs: [`--host-resolver-rules=MAP ${host} 127.0.0.1`] }),
      ]);
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

  it('loads the stylesheet and submits the form', { timeout: TIMEOUT }, async () => {
    assert.ok(browser && server);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const problems = watchPage(page);
      const requested: string[] = [];
      page.on('request', (req) => requested.push(req.url()));
      await page.goto(`${server.url}/f/newsletter`);
      await page.getByLabel('Email address').fill('lan.visitor@example.com');
      await page.getByLabel(/Newsletter/).check();
      await page.getByRole('button', { name: 'Subscribe' }).click();
      await page.getByRole('heading', { name: 'Check your inbox' }).waitFor({ state: 'visible' });
      assert.deepEqual(requested.filter((u) => u.startsWith('https:')), [], 'nothing is upgraded to https://');
      assert.ok(requested.includes(`${server.url}/assets/assent.css`), 'the stylesheet is loaded over http');
      // Chromium reports a harmless console error about COOP on untrustworthy origins.
      assert.deepEqual(problems.filter((p) => !/Cross-Origin-Opener-Policy/.test(p)), []);
    } finally {
      await context.close();
    }
    await server.waitForMail(1);
    await server.stop();
  });
});
