/**
 * The conformance suite every Transport passes (STYLE.md: one shared suite per
 * narrow interface). Each test gets a fresh transport from `make` and asserts on
 * what actually arrived at the far side, read back through `received`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { composeMessage, makeMessageId, type ComposeInput } from './compose.js';
import type { OutgoingMessage, Transport } from './transport.js';

export interface TransportHarness {
  transport: Transport;
  /** Every message the far side holds, in any order, as the bytes it stored. */
  received: () => Promise<Buffer[]>;
  cleanup: () => Promise<void>;
}

const CRLF = Buffer.from('\r\n');

export function transportContract(name: string, make: () => Promise<TransportHarness>): void {
  describe(`transport contract: ${name}`, () => {
    test('delivers the message byte for byte, with its Message-ID', () =>
      withHarness(make, async ({ transport, received }) => {
        const message = await sampleMessage({ seq: 1 });
        const result = await transport.send(message);
        assert.equal(result.status, 'sent', result.response);
        assert.equal(result.messageId, message.messageId);
        const [only, ...rest] = await received();
        assert.equal(rest.length, 0);
        assertCarries(only, message);
        assert.equal((await simpleParser(only!)).messageId, message.messageId);
      }));

    test('non-ASCII subject and body survive', () =>
      withHarness(make, async ({ transport, received }) => {
        const subject = 'Grüße aus Köln – 東京 🎉 « déjà vu »';
        const text = 'Hallo Jürgen,\nÜmlaute, Ελληνικά, 日本語, emoji 📬.\n';
        const html = '<p>Hallo Jürgen — <b>日本語</b> 📬</p>';
        const message = await sampleMessage({ seq: 2, subject, text, html });
        assert.equal((await transport.send(message)).status, 'sent');
        const [only] = await received();
        assertCarries(only, message);
        const parsed = await simpleParser(only!);
        assert.equal(parsed.subject, subject);
        assert.equal(parsed.text, text);
        assert.equal(parsed.html, html);
      }));

    test('an attachment survives', () =>
      withHarness(make, async ({ transport, received }) => {
        const content = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
        const attachment = { filename: 'Einwilligung-München.pdf', contentType: 'application/pdf', content };
        const message = await sampleMessage({ seq: 3, attachments: [attachment] });
        assert.equal((await transport.send(message)).status, 'sent');
        const [only] = await received();
        assertCarries(only, message);
        const [got, ...others] = (await simpleParser(only!)).attachments;
        assert.equal(others.length, 0);
        assert.equal(got?.filename, attachment.filename);
        assert.equal(got?.contentType, attachment.contentType);
        assert.ok(got?.content.equals(content), 'attachment bytes differ');
      }));

    test('sends after close are refused', () =>
      withHarness(make, async ({ transport, received }) => {
        await transport.close();
        await transport.close(); // idempotent: shutdown paths may close twice
        const message = await sampleMessage({ seq: 4 });
        await assert.rejects(transport.send(message), /closed/);
        assert.deepEqual(await received(), []);
      }));

    test('50 concurrent sends each arrive exactly once', () =>
      withHarness(make, async ({ transport, received }) => {
        const messages = await Promise.all(Array.from({ length: 50 }, (_, i) => sampleMessage({ seq: 100 + i })));
        const results = await Promise.all(messages.map((m) => transport.send(m)));
        assert.deepEqual(results.map((r) => r.status), messages.map(() => 'sent'));
        const got = await received();
        const ids = await Promise.all(got.map(async (raw) => (await simpleParser(raw)).messageId));
        assert.deepEqual([...ids].sort(), messages.map((m) => m.messageId).sort());
        const byId = new Map(messages.map((m) => [m.messageId, m]));
        got.forEach((raw, i) => assertCarries(raw, byId.get(ids[i]!)!));
      }));
  });
}

async function withHarness(make: () => Promise<TransportHarness>, run: (h: TransportHarness) => Promise<void>) {
  const harness = await make();
  try {
    await run(harness);
  } finally {
    await harness.transport.close();
    await harness.cleanup();
  }
}

/**
 * The received bytes are the original message, possibly after trace fields a relay
 * prepends (RFC 5321 §4.4: Received and Return-Path go on top, nothing else changes).
 */
function assertCarries(received: Buffer | undefined, message: OutgoingMessage): void {
  assert.ok(received, 'nothing was received');
  const firstLine = message.raw.subarray(0, message.raw.indexOf(CRLF) + 2);
  const start = received.indexOf(firstLine);
  assert.ok(start >= 0, 'the first original header line is missing');
  const trace = received.subarray(0, start).toString('latin1');
  assert.match(trace, /^(?:(?:Received|Return-Path):[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*$/);
  assert.ok(received.subarray(start).equals(message.raw), 'the message bytes differ');
}

interface SampleOptions extends Partial<ComposeInput> {
  seq: number;
}

/** A realistic campaign message: both parts, list headers, long URL lines. */
export async function sampleMessage({ seq, ...overrides }: SampleOptions): Promise<OutgoingMessage> {
  const unsubscribe = `https://assent.example.org/u/${'t'.repeat(90)}${seq}`;
  return composeMessage({
    from: 'Assent Newsletter <news@assent.example.org>',
    to: `person${seq}@example.net`,
    subject: `Issue ${seq}`,
    text: `Hello,\nthis is issue ${seq}.\nUnsubscribe: ${unsubscribe}\n`,
    html: `<p>Hello, this is issue ${seq}.</p><p><a href="${unsubscribe}">Unsubscribe</a></p>`,
    messageId: makeMessageId(`contract.${seq}`, 'assent.example.org'),
    date: new Date('2026-11-29T14:27:33.123Z'),
    headers: {
      'List-Id': 'Monthly newsletter <monthly.assent.example.org>',
      'List-Unsubscribe': `<${unsubscribe}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
    returnPath: `bounce+${seq}@assent.example.org`,
    locale: 'de',
    ...overrides,
  });
}
