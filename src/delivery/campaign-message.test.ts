import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import type { VersionedKey } from '../config/secrets.js';
import { signLinkToken, verifyLinkToken } from '../preferences/link-token.js';
import {
  campaignMessageId,
  parseCampaignMessageId,
  prepareCampaignMessage,
  quotedPrintable,
  type CampaignMessageOptions,
  type CampaignRecipient,
} from './campaign-message.js';
import { joinSplit } from '../templates/index.js';
import { composeMessage } from './compose.js';
import { createDkimSigner, dkimTxtRecord } from './dkim.js';

const CAMPAIGN = '9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d';
const CONTACT = '0f8b6c1e-3a5d-4e7f-9b2c-1d0e8f7a6b5c';
const linkKeys: VersionedKey[] = [{ version: 1, key: Buffer.alloc(32, 7) }];
const token = signLinkToken(linkKeys, { purpose: 'unsubscribe', contactId: CONTACT, campaignId: CAMPAIGN, topicId: 'news' });
const NOW = new Date('2026-03-01T09:00:00Z');

const options: CampaignMessageOptions = {
  from: 'Example Books <news@example.org>',
  subject: 'New releases for March',
  listId: { name: 'Example Books news', id: 'news.lists.example.org' },
  domain: 'example.org',
  returnPath: 'bounces@example.org',
};

const recipient: CampaignRecipient = {
  to: 'Jane.Doe@example.net',
  contactId: CONTACT,
  campaignId: CAMPAIGN,
  html: '<p>Hello Jane</p>\n<p><a href="https://example.org/books">Books</a></p>\n',
  text: 'Hello Jane\n\nBooks: https://example.org/books\n',
  unsubscribeUrl: `https://example.org/u/${token}`,
  messageDate: NOW,
};

const headerBlock = (raw: Buffer) => raw.toString('utf8').slice(0, raw.indexOf('\r\n\r\n') + 2);
const ed25519Pem = (seed: string) =>
  createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed, 'base64')]), format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
const ED_PEM = ed25519Pem(readFileSync(new URL('../../../shared/corpora/dkim/dkimpy/rfc8032_7_1.key', import.meta.url), 'latin1').trim());
const RSA_PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

async function verifyDkim(raw: Buffer, selector: string, pem: string) {
  const record = dkimTxtRecord(pem);
  const resolver = async (name: string) => (name === `${selector}._domainkey.example.org` ? [[record]] : []);
  const result = await dkimVerify(raw, { resolver, strict: true, curTime: NOW });
  return result.results.map((r) => `${r.status.result}${r.status.comment ? ` (${r.status.comment})` : ''}`);
}

describe('campaign messages (EML-01, EML-02, EML-03, EML-08)', () => {
  test('EML-01 / EML-02 / EML-08: the header block is exactly as specified', () => {
    const message = prepareCampaignMessage(options).build(recipient);
    assert.equal(
      headerBlock(message.raw),
      'From: Example Books <news@example.org>\r\n' +
        'To: Jane.Doe@example.net\r\n' +
        'Subject: New releases for March\r\n' +
        'Date: Sun, 01 Mar 2026 09:00:00 +0000\r\n' +
        `Message-ID: <c.${CAMPAIGN}.${CONTACT}@example.org>\r\n` +
        `List-Unsubscribe: <https://example.org/u/${token}>\r\n` +
        'MIME-Version: 1.0\r\n' +
        'List-Id: Example Books news <news.lists.example.org>\r\n' +
        'List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n' +
        'Content-Type: multipart/alternative;\r\n boundary="' + /boundary="([^"]+)"/.exec(message.raw.toString())?.[1] + '"\r\n',
    );
    assert.deepEqual(message.envelope, { from: 'bounces@example.org', to: ['Jane.Doe@example.net'] });
    assert.equal(message.messageId, `<c.${CAMPAIGN}.${CONTACT}@example.org>`);
  });

  test('EML-01 / EML-06: mailparser reads the list headers; the token in the URL verifies', async () => {
    const built = prepareCampaignMessage({ ...options, unsubscribeMailto: 'unsubscribe@example.org' }).build(recipient);
    const parsed = await simpleParser(built.raw);
    const line = (key: string) => parsed.headerLines.filter((h) => h.key === key).map((h) => h.line);
    assert.deepEqual(line('list-unsubscribe-post'), ['List-Unsubscribe-Post: List-Unsubscribe=One-Click']);
    assert.deepEqual(line('list-unsubscribe'), [
      `List-Unsubscribe: <https://example.org/u/${token}>,\r\n <mailto:unsubscribe@example.org?subject=unsubscribe%20${token}>`,
    ]);
    // EML-02: exactly one https URI, and it comes first (RFC 2369 §2: order of preference).
    assert.equal((line('list-unsubscribe')[0]?.match(/<https:/g) ?? []).length, 1);
    const list = parsed.headers.get('list') as unknown as Record<string, unknown>;
    assert.deepEqual(list.id, { id: 'news.lists.example.org', name: 'Example Books news' });
    assert.deepEqual(list.unsubscribe, { url: `https://example.org/u/${token}`, mail: `unsubscribe@example.org?subject=unsubscribe%20${token}` });
    const url = /<(https:[^>]+)>/.exec(line('list-unsubscribe')[0] ?? '')?.[1] ?? '';
    const claims = verifyLinkToken(linkKeys, url.slice(url.lastIndexOf('/') + 1), 'unsubscribe');
    assert.deepEqual(claims, { ok: true, claims: { purpose: 'unsubscribe', contactId: CONTACT, topicId: 'news', campaignId: CAMPAIGN } });
  });

  test('bodies decode to the input; text and html are a multipart/alternative pair', async () => {
    const parsed = await simpleParser(prepareCampaignMessage(options).build(recipient).raw);
    assert.equal(parsed.text, recipient.text);
    assert.equal(parsed.html, recipient.html);
    assert.match(String(parsed.headers.get('content-type') && (parsed.headers.get('content-type') as { value: string }).value), /^multipart\/alternative$/);
  });

  test('non-ASCII subject, display names and body text round-trip (RFC 2047, RFC 2045 §6.7)', async () => {
    const subject = 'Нови книги за март — Übersicht & «nouveautés» 📚 '.repeat(3).trim();
    const built = prepareCampaignMessage({ ...options, from: 'Librairie Éléonore <news@example.org>' }).build({
      ...recipient,
      toName: 'Zoë "Z" O\'Brien',
      subject,
      text: 'Grüße, Zoë!\nЗдравейте.\n',
      html: '<p>Grüße, Zoë — à bientôt</p>\n',
    });
    const head = headerBlock(built.raw);
    assert.match(head, /^[\x20-\x7e\r\n\t]*$/, 'headers are pure ASCII');
    // RFC 5322 §2.1.1: 78 is a SHOULD; only an unfoldable msg-id or URI may pass it, never 998.
    for (const l of head.split('\r\n')) {
      assert.ok(l.length <= (/^(Message-ID|List-Unsubscribe):/.test(l) ? 998 : 78), `header line too long: ${l}`);
    }
    const parsed = await simpleParser(built.raw);
    assert.equal(parsed.subject, subject);
    assert.deepEqual(parsed.from?.value, [{ address: 'news@example.org', name: 'Librairie Éléonore' }]);
    assert.deepEqual((Array.isArray(parsed.to) ? parsed.to[0] : parsed.to)?.value, [{ address: 'Jane.Doe@example.net', name: 'Zoë "Z" O\'Brien' }]);
    assert.equal(parsed.text, 'Grüße, Zoë!\nЗдравейте.\n');
    assert.equal(parsed.html, '<p>Grüße, Zoë — à bientôt</p>\n');
  });

  test('long lines, long URLs, trailing spaces, "=" and "From " survive; every body line is at most 76', async () => {
    const url = `https://example.org/track/${'x'.repeat(1500)}?a=1&b=%20`;
    const html = `<a href="${url}">link</a>   \nFrom here on\n\t<b>tab</b>\t\n=3D is literal\n`;
    const text = `${'é'.repeat(300)}\n${url}\n`;
    const built = prepareCampaignMessage(options).build({ ...recipient, html, text });
    const raw = built.raw.toString('utf8');
    for (const l of raw.slice(raw.indexOf('\r\n\r\n') + 4).split('\r\n')) assert.ok(l.length <= 76, `body line ${l.length}`);
    assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(raw), 'only CRLF line ends');
    const parsed = await simpleParser(built.raw);
    assert.equal(parsed.html, html);
    assert.equal(parsed.text, text);
  });

  test('a mostly Cyrillic body is base64, a Latin one quoted-printable', async () => {
    const cyrillic = 'Здравейте, това е бюлетинът за март. '.repeat(40);
    const built = prepareCampaignMessage(options).build({ ...recipient, text: cyrillic, html: `<p>${cyrillic}</p>` });
    const raw = built.raw.toString();
    assert.equal((raw.match(/Content-Transfer-Encoding: base64/g) ?? []).length, 2);
    const parsed = await simpleParser(built.raw);
    assert.equal(parsed.text, cyrillic);
    assert.equal((raw.match(/Content-Transfer-Encoding: quoted-printable/g) ?? []).length, 0);
    assert.equal(quotedPrintable('a=b \nFrom x\r\n\tü'), 'a=3Db=20\r\n=46rom x\r\n\t=C3=BC');
  });

  test('a body split at its personal values decodes to exactly the joined text, with lines of at most 76, and DKIM verifies', async () => {
    const statics = [
      `<p>Dear `,
      `,</p>\n<p>${'Long line with = signs and ümlauts, '.repeat(6)}</p>\n<p>From here: <a href="`,
      `">unsubscribe</a></p>\n`,
    ];
    const htmlSplit = { statics, values: ['Zoë O&#39;Brien', `https://example.org/u/${token}?a=1&b=2`] };
    const textSplit = { statics: ['Dear ', ' \nFrom the team\n'], values: ['Zoë'] };
    const other = (b: ReturnType<typeof prepareCampaignMessage>) =>
      b.build({ ...recipient, html: { statics, values: ['Al', 'https://example.org/u/x'] }, text: { statics: textSplit.statics, values: ['Al'] } });
    const signer = createDkimSigner({ domain: 'example.org', selector: 'brisbane', privateKeyPem: ED_PEM });
    const builder = prepareCampaignMessage({ ...options, dkim: signer });
    const split = builder.build({ ...recipient, html: htmlSplit, text: textSplit });
    const joined = builder.build({ ...recipient, html: joinSplit(htmlSplit), text: 'Dear Zoë \nFrom the team\n' });
    const [a, b] = [await simpleParser(split.raw), await simpleParser(joined.raw)];
    assert.equal(a.html, b.html);
    assert.equal(a.text, b.text);
    assert.match(String(a.html), /Dear Zoë O&#39;Brien,/);
    // The split path itself ran: both parts quoted-printable, not a base64 fallback.
    for (const raw of [split.raw, other(builder).raw]) assert.equal((raw.toString().match(/Content-Transfer-Encoding: quoted-printable/g) ?? []).length, 2);
    const body = split.raw.toString('utf8').slice(split.raw.indexOf('\r\n\r\n'));
    assert.ok(body.split('\r\n').every((line) => line.length <= 76), 'quoted-printable lines of at most 76 characters');
    assert.doesNotMatch(body, /^From /m);
    assert.deepEqual(await verifyDkim(split.raw, 'brisbane', ED_PEM), ['pass']);
    // A second recipient of the same shape (its statics encoded once already) still decodes exactly.
    const parsed = await simpleParser(other(builder).raw);
    assert.equal(parsed.text, 'Dear Al \nFrom the team\n');
  });

  test('Message-ID is unique per campaign x contact and parses back; odd ids are hashed', () => {
    assert.equal(campaignMessageId('c1', 'k1', 'example.org'), '<c.c1.k1@example.org>');
    assert.notEqual(campaignMessageId('c1', 'k2', 'example.org'), campaignMessageId('c2', 'k1', 'example.org'));
    assert.deepEqual(parseCampaignMessageId(`<c.${CAMPAIGN}.${CONTACT}@example.org>`), { campaignId: CAMPAIGN, contactId: CONTACT });
    const odd = campaignMessageId('camp.1', 'x@y', 'example.org');
    assert.match(odd, /^<h\.[0-9a-f]{40}@example\.org>$/);
    assert.equal(odd, campaignMessageId('camp.1', 'x@y', 'example.org'));
    assert.equal(parseCampaignMessageId(odd), null);
  });

  test('EML-02 / EML-08: refuses http URLs, header injection, bad List-Ids and bad addresses', () => {
    const prepared = prepareCampaignMessage(options);
    assert.throws(() => prepared.build({ ...recipient, unsubscribeUrl: 'http://example.org/u/x' }), /https/);
    assert.throws(() => prepared.build({ ...recipient, unsubscribeUrl: 'https://example.org/u/x>, <https://evil' }), /https/);
    assert.throws(() => prepared.build({ ...recipient, to: 'a@b.example\r\nBcc: x@evil.example' }), /recipient/);
    assert.throws(() => prepareCampaignMessage({ ...options, listId: { name: 'x', id: 'no-dot' } }), /RFC 2919/);
    assert.throws(() => prepareCampaignMessage({ ...options, from: 'a@b.example, c@d.example' }), /one mailbox/);
    const injected = prepared.build({ ...recipient, subject: 'Hi\r\nBcc: victim@example.net' });
    assert.ok(!/^Bcc:/im.test(headerBlock(injected.raw)), 'CR LF in a subject is encoded, never a new field');
  });

  test('VERP: returnPath may be computed per recipient', () => {
    const built = prepareCampaignMessage({ ...options, returnPath: (r) => `b+${r.contactId}@example.org` }).build(recipient);
    assert.equal(built.envelope.from, `b+${CONTACT}@example.org`);
  });

  for (const [name, selector, pem] of [['rsa-sha256', 'rsa', RSA_PEM], ['ed25519-sha256', 'ed', ED_PEM]] as const) {
    test(`EML-03: the ${name}-signed message verifies with mailauth and covers the list headers`, async () => {
      const dkim = createDkimSigner({ domain: 'example.org', selector, privateKeyPem: pem, now: () => NOW });
      const built = prepareCampaignMessage({ ...options, dkim, unsubscribeMailto: 'unsubscribe@example.org' }).build(recipient);
      assert.deepEqual(await verifyDkim(built.raw, selector, pem), ['pass']);
      const h = /\bh=([^;]+);/.exec(built.raw.toString())?.[1]?.replace(/\s+/g, '').split(':') ?? [];
      for (const required of ['from', 'list-unsubscribe', 'list-unsubscribe-post', 'list-id', 'subject', 'date', 'message-id']) {
        assert.ok(h.includes(required), required);
      }
      const swapped = Buffer.from(built.raw.toString().replace(`/u/${token}`, `/u/${token.slice(0, -1)}A`));
      assert.deepEqual(await verifyDkim(swapped, selector, pem), ['fail (bad signature)']);
    });
  }

  test('build rate for a ~16 KB HTML body (diagnostic; no timing assertion)', async (t) => {
    const row = (i: number) =>
      `        <tr>\n          <td align="left" style="font-size:0px;padding:10px 25px;word-break:break-word;">\n` +
      `            <div style="font-family:Ubuntu, Helvetica, Arial, sans-serif;font-size:16px;line-height:1;text-align:left;color:#000000;">Paragraph ${i} about books, café and naïve readers <a href="https://example.org/t/0123456789abcdef/${i}?utm_source=newsletter&amp;utm_medium=email">read more</a></div>\n          </td>\n        </tr>\n`;
    let html = '<!doctype html>\n<html>\n<body>\n<table>\n';
    for (let i = 0; html.length < 16 * 1024; i++) html += row(i);
    html += '</table>\n</body>\n</html>\n';
    const text = html.replace(/<[^>]+>/g, '').replace(/\n\s+/g, '\n');
    const input = { ...recipient, html, text };
    const rsa = createDkimSigner({ domain: 'example.org', selector: 'rsa', privateKeyPem: RSA_PEM });
    const ed = createDkimSigner({ domain: 'example.org', selector: 'ed', privateKeyPem: ED_PEM });
    const rate = (build: () => unknown, n: number) => {
      for (let i = 0; i < Math.min(200, n); i++) build();
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) build();
      return n / (Number(process.hrtime.bigint() - start) / 1e9);
    };
    const rates: Record<string, number> = {};
    for (const [label, dkim, n] of [['DKIM off', undefined, 3000], ['DKIM rsa-2048', rsa, 600], ['DKIM ed25519', ed, 2000]] as const) {
      const prepared = prepareCampaignMessage({ ...options, ...(dkim ? { dkim } : {}) });
      rates[label] = rate(() => prepared.build({ ...input, contactId: `k${n}` }), n);
    }
    const started = process.hrtime.bigint();
    const composed = 300;
    for (let i = 0; i < composed; i++) {
      await composeMessage({ from: options.from, to: input.to, subject: options.subject ?? '', text, html, messageId: `<m${i}@example.org>`, date: NOW });
    }
    const nodemailer = composed / (Number(process.hrtime.bigint() - started) / 1e9);
    const size = prepareCampaignMessage(options).build(input).raw.length;
    t.diagnostic(`message size ${size} B (html ${Buffer.byteLength(html)} B, text ${Buffer.byteLength(text)} B)`);
    for (const [label, value] of Object.entries(rates)) {
      t.diagnostic(`${label}: ${Math.round(value)} messages/s (${(1e6 / value).toFixed(0)} µs each)`);
    }
    t.diagnostic(`nodemailer composeMessage, same input: ${Math.round(nodemailer)} messages/s; DKIM-off ratio ${((rates['DKIM off'] ?? 0) / nodemailer).toFixed(1)}x`);
  });
});
