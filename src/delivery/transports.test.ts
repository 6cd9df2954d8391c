import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { fixedClock } from '../shared/clock.js';
import { composeMessage, makeMessageId } from './compose.js';
import { createMemoryTransport } from './memory-transport.js';
import { createOutboxTransport, listOutbox } from './outbox-transport.js';
import { createSmtpTransport, failureResult } from './smtp-transport.js';
import { sampleMessage, transportContract } from './transport.contract.js';
import { createTransport } from './transports.js';

const clock = fixedClock(new Date('2026-11-29T14:27:33.123Z'));

interface Peer {
  url: string;
  messages: Buffer[];
  close: () => Promise<void>;
}

interface PeerOptions {
  /** Reply code to refuse RCPT TO with, per recipient address. */
  rcpt?: Record<string, number>;
  /** Reply code to refuse every message with after DATA. */
  data?: number;
}

/** A real SMTP peer on an ephemeral loopback port; no TLS, no AUTH. */
async function startPeer(options: PeerOptions = {}): Promise<Peer> {
  const messages: Buffer[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const code = options.rcpt?.[address.address];
      callback(code === undefined ? null : refusal(code, 'recipient refused by test peer'));
    },
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (options.data !== undefined) return callback(refusal(options.data, 'message refused by test peer'));
        messages.push(Buffer.concat(chunks));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function refusal(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'assent-outbox-'));
}

transportContract('outbox', async () => {
  const root = await tempDir();
  const dir = join(root, 'outbox'); // not there yet: the transport creates it
  return {
    transport: createOutboxTransport({ dir, clock }),
    received: async () => Promise.all((await listOutbox(dir)).map((p) => readFile(p))),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

transportContract('memory', async () => {
  const transport = createMemoryTransport();
  return { transport, received: async () => transport.sent.map((m) => m.raw), cleanup: async () => {} };
});

transportContract('smtp (pooled, real smtp-server peer)', async () => {
  const peer = await startPeer();
  return {
    transport: createSmtpTransport({ url: peer.url, maxConnections: 4 }),
    received: async () => [...peer.messages],
    cleanup: peer.close,
  };
});

transportContract('smtp (one connection per message)', async () => {
  const peer = await startPeer();
  return {
    transport: createSmtpTransport({ url: peer.url, pool: false }),
    received: async () => [...peer.messages],
    cleanup: peer.close,
  };
});

describe('smtp result mapping against a real peer', () => {
  async function sendTo(peerOptions: PeerOptions, to: string[]) {
    const peer = await startPeer(peerOptions);
    const transport = createSmtpTransport({ url: peer.url });
    try {
      const message = await sampleMessage({ seq: 1 });
      const result = await transport.send({ ...message, envelope: { ...message.envelope, to } });
      return { result, message, delivered: peer.messages.length };
    } finally {
      await transport.close();
      await peer.close();
    }
  }

  test('451 to RCPT is transient with code 451', async () => {
    const { result, message, delivered } = await sendTo({ rcpt: { 'later@example.net': 451 } }, ['later@example.net']);
    assert.deepEqual(result, {
      status: 'transient', messageId: message.messageId, code: 451, response: '451 recipient refused by test peer',
    });
    assert.equal(delivered, 0);
  });

  test('550 to RCPT is permanent with code 550', async () => {
    const { result, message } = await sendTo({ rcpt: { 'gone@example.net': 550 } }, ['gone@example.net']);
    assert.deepEqual(result, {
      status: 'permanent', messageId: message.messageId, code: 550, response: '550 recipient refused by test peer',
    });
  });

  test('554 after DATA is permanent with code 554', async () => {
    const { result } = await sendTo({ data: 554 }, ['someone@example.net']);
    assert.ok(result.status === 'permanent');
    assert.equal(result.code, 554);
  });

  test('one refused recipient of two still counts as sent, refusal kept in the response', async () => {
    const { result, delivered } = await sendTo({ rcpt: { 'gone@example.net': 550 } }, ['ok@example.net', 'gone@example.net']);
    assert.equal(result.status, 'sent');
    assert.match(result.response, /^250 .*\(rejected: gone@example\.net\)$/);
    assert.equal(delivered, 1);
  });

  test('421 after DATA (server closing the channel) is transient with code 421', async () => {
    const { result } = await sendTo({ data: 421 }, ['someone@example.net']);
    assert.ok(result.status === 'transient');
    assert.equal(result.code, 421);
  });

  test('a server hanging up mid-session is transient, without a reply code', async () => {
    // Greets, then closes without a reply; resume() so the client's FIN is read and close() ends.
    const server = createServer((socket) => socket.resume().end('220 hello\r\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as AddressInfo;
    const transport = createSmtpTransport({ url: `smtp://127.0.0.1:${port}` });
    try {
      const result = await transport.send(await sampleMessage({ seq: 1 }));
      assert.equal(result.status, 'transient');
      assert.equal('code' in result, false);
      assert.match(result.response, /ECONNECTION/);
    } finally {
      await transport.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a refused connection is transient, without a reply code', async () => {
    const peer = await startPeer();
    await peer.close(); // the port is now closed
    const transport = createSmtpTransport({ url: peer.url });
    const message = await sampleMessage({ seq: 1 });
    const result = await transport.send(message);
    await transport.close();
    assert.equal(result.status, 'transient');
    assert.equal('code' in result, false);
    assert.match(result.response, /ECONNREFUSED/);
  });

  test('503 is transient: a session fault, not a verdict on the message (RFC 5321 §4.2.1)', () => {
    const result = failureResult('<a@b>', Object.assign(new Error('x'), { responseCode: 503, response: '503 bad sequence' }));
    assert.deepEqual(result, { status: 'transient', messageId: '<a@b>', code: 503, response: '503 bad sequence' });
  });
});

describe('outbox', () => {
  test('writes <stamp>-<token>.eml, byte-identical, parseable, in a 0700 dir, no temp files left', async () => {
    const root = await tempDir();
    const dir = join(root, 'outbox');
    try {
      const transport = createOutboxTransport({ dir, clock });
      const pdf = Buffer.from('%PDF-1.4\n% receipt\n', 'latin1');
      const message = await sampleMessage({
        seq: 7, subject: 'Ihre Einwilligung – Quittung', text: 'Danke für Ihre Bestätigung.\n',
        attachments: [{ filename: 'quittung.pdf', contentType: 'application/pdf', content: pdf }],
      });
      const result = await transport.send(message);
      assert.equal(result.status, 'sent');
      assert.deepEqual(await readdir(dir), (await listOutbox(dir)).map((p) => p.slice(dir.length + 1)));
      const [path, ...rest] = await listOutbox(dir);
      assert.equal(rest.length, 0);
      assert.match(path!, /\/20261129T142733\.123Z-[0-9a-f]{12}\.eml$/);
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      const bytes = await readFile(path!);
      assert.ok(bytes.equals(message.raw));
      const parsed = await simpleParser(bytes);
      assert.equal(parsed.subject, 'Ihre Einwilligung – Quittung');
      assert.equal(parsed.text, 'Danke für Ihre Bestätigung.\n');
      assert.equal(parsed.attachments[0]?.filename, 'quittung.pdf');
      assert.ok(parsed.attachments[0]?.content.equals(pdf));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('listOutbox of a missing directory is empty', async () => {
    assert.deepEqual(await listOutbox(join(tmpdir(), 'assent-no-such-outbox')), []);
  });
});

describe('memory transport script', () => {
  test('answers as scripted per attempt, keeping only sent messages in sent', async () => {
    const transport = createMemoryTransport({
      script: (_m, attempt) => (attempt === 1 ? { status: 'transient', code: 421, response: '421 busy' } : 'sent'),
    });
    const message = await sampleMessage({ seq: 1 });
    assert.deepEqual(await transport.send(message), {
      status: 'transient', messageId: message.messageId, code: 421, response: '421 busy',
    });
    assert.equal((await transport.send(message)).status, 'sent');
    assert.equal(transport.sent.length, 1);
    assert.equal(transport.attempts.length, 2);
  });
});

describe('composeMessage', () => {
  const base = {
    from: 'Assent <news@assent.example.org>', to: 'Jo <jo@example.net>', subject: 'Hi', text: 'Hi\nthere',
    messageId: 'abc.1@assent.example.org', date: new Date('2026-11-29T14:27:33Z'),
  };

  test('normalises the Message-ID and derives the envelope', async () => {
    const message = await composeMessage(base);
    assert.equal(message.messageId, '<abc.1@assent.example.org>');
    assert.deepEqual(message.envelope, { from: 'news@assent.example.org', to: ['jo@example.net'] });
    const withReturnPath = await composeMessage({ ...base, returnPath: 'b+1@bounce.example.org' });
    assert.equal(withReturnPath.envelope.from, 'b+1@bounce.example.org');
  });

  test('emits CRLF lines only, ending in CRLF, with the expected header fields', async () => {
    const raw = (await composeMessage({ ...base, locale: 'fr', headers: { 'List-Id': '<l.example.org>' } })).raw.toString();
    assert.ok(raw.endsWith('\r\n'));
    assert.doesNotMatch(raw, /[^\r]\n|\r[^\n]/);
    for (const line of ['Message-ID: <abc.1@assent.example.org>', 'Date: Sun, 29 Nov 2026 14:27:33 +0000',
      'Content-Language: fr', 'List-ID: <l.example.org>', 'To: Jo <jo@example.net>']) {
      assert.ok(raw.includes(`\r\n${line}\r\n`) || raw.startsWith(`${line}\r\n`), line);
    }
  });

  test('refuses header injection and malformed ids', async () => {
    await assert.rejects(composeMessage({ ...base, headers: { 'X-A': 'x\r\nBcc: e@vil' } }), TypeError);
    await assert.rejects(composeMessage({ ...base, messageId: 'no-at-sign' }), TypeError);
    assert.equal(makeMessageId('c1.d2', 'bücher.example'), '<c1.d2@xn--bcher-kva.example>');
    assert.throws(() => makeMessageId('a b', 'example.org'), TypeError);
  });
});

test('createTransport picks smtp when a URL is set, otherwise the outbox', async () => {
  const smtp = createTransport({ smtpUrl: 'smtp://127.0.0.1:1', outboxDir: '/nonexistent', clock });
  const outbox = createTransport({ outboxDir: '/nonexistent', clock });
  assert.deepEqual([smtp.kind, outbox.kind], ['smtp', 'outbox']);
  await Promise.all([smtp.close(), outbox.close()]);
});
