/**
 * Double opt-in through a real SMTP conversation: the runtime uses the SMTP
 * transport its configuration names (ASSENT_SMTP_URL), a real smtp-server
 * peer receives the confirmation and the receipt, and the test acts on what
 * arrived as a mail client would. SQLite only: the database path is covered
 * on both databases by signup-flow.test.ts; this file is about the wire.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import type { JWK } from 'jose';
import { extractReceiptJws, verifyLedger, verifyReceipt } from '../src/consent/index.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { openConfirm, submitForm } from './support/http.js';

interface Received {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
}

/** A real SMTP peer on an ephemeral loopback port; no TLS, no AUTH. */
async function startPeer(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom;
        received.push({
          mailFrom: from ? from.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const sqlite = (await databaseTargets()).find((t) => t.name === 'sqlite')!;

describe('double opt-in over SMTP (sqlite)', () => {
  let peer: Awaited<ReturnType<typeof startPeer>>;
  let rt: TestRuntime;

  before(async () => {
    peer = await startPeer();
    rt = await startTestRuntime(sqlite, { env: { ASSENT_SMTP_URL: peer.url }, realTransport: true });
  });
  after(async () => {
    await rt?.close();
    await peer?.close();
  });

  test('sign up, receive the link over SMTP, confirm, receive a receipt that verifies', async () => {
    assert.equal(rt.runtime.transport.kind, 'smtp');
    const signup = await submitForm(rt.app, 'newsletter', { email: 'Bob@Example.com', topics: 'newsletter' }, { remoteAddress: '203.0.113.7' });
    assert.equal(signup.statusCode, 200);
    assert.match(signup.body, /<h1>Check your inbox<\/h1>/);
    assert.equal(rt.transport.sent.length, 0, 'the memory transport must stay unused');

    assert.equal(peer.received.length, 1);
    const first = peer.received[0]!;
    assert.equal(first.mailFrom, 'no-reply@assent.example.org');
    assert.deepEqual(first.rcptTo, ['Bob@example.com']);
    const confirmation = await simpleParser(first.raw);
    assert.equal(confirmation.subject, 'Please confirm your subscription to Example Ltd');
    assert.equal(confirmation.to && !Array.isArray(confirmation.to) ? confirmation.to.text : '', 'Bob@example.com');
    const links = (confirmation.text ?? '').match(/https:\/\/assent\.example\.org\/confirm\/([A-Za-z0-9_-]+)/g) ?? [];
    assert.equal(links.length, 1);
    const token = links[0]!.split('/confirm/')[1]!;

    const events = () => rt.runtime.storage.db.selectFrom('consent_events').selectAll().orderBy('seq').execute();
    const [requested] = await events();
    assert.equal((JSON.parse(requested!.evidence) as { message_id: string }).message_id, confirmation.messageId);

    const page = await openConfirm(rt.app, 'GET', token);
    assert.equal(page.statusCode, 200);
    assert.equal(peer.received.length, 1);
    assert.equal((await events()).length, 1);

    const confirm = await openConfirm(rt.app, 'POST', token);
    assert.equal(confirm.statusCode, 200);
    assert.ok(confirm.body.includes('<h1>Thank you, you are subscribed</h1>'));
    const all = await events();
    assert.deepEqual(all.map((e) => e.type), ['requested', 'confirmed']);
    const confirmed = all[1]!;

    assert.equal(peer.received.length, 2);
    const second = peer.received[1]!;
    assert.deepEqual(second.rcptTo, ['Bob@example.com']);
    const receipt = await simpleParser(second.raw);
    assert.equal(receipt.subject, 'Your consent receipt for Newsletter');
    assert.equal(receipt.attachments.length, 1);
    const attachment = receipt.attachments[0]!;
    assert.equal(attachment.filename, 'consent-receipt.jws');
    assert.equal(attachment.contentType, 'application/jose');
    const jws = attachment.content.toString('utf8');
    assert.equal(extractReceiptJws(second.raw.toString('utf8')), jws);

    const keys = (await rt.app.inject({ method: 'GET', url: '/.well-known/assent-receipt-key.json' })).json<{ keys: JWK[] }>().keys;
    const verified = await verifyReceipt(jws, keys);
    assert.ok(verified.ok, verified.ok ? '' : verified.reason);
    assert.equal(verified.claims.assent.ledgerEventHash, confirmed.hash);
    assert.equal(verified.claims.assent.ledgerEventSeq, 2);
    assert.equal(verified.claims.consentReceiptID, confirmed.id);

    const mailLog = await rt.runtime.storage.db.selectFrom('mail_log').select(['kind', 'message_id']).orderBy('created_at').execute();
    assert.deepEqual(
      mailLog.map((m) => [m.kind, m.message_id]).sort(),
      [['confirmation', confirmation.messageId], ['receipt', receipt.messageId]].sort(),
    );
    assert.equal((await openConfirm(rt.app, 'POST', token)).statusCode, 404);
    assert.equal(peer.received.length, 2);
    assert.equal((await verifyLedger(rt.runtime.storage.db)).ok, true);
    assert.equal(rt.logs.join('').toLowerCase().includes('bob@example.com'), false);
  });
});
