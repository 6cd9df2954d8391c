import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { createPipeliningTransport, SMTPUTF8_UNSUPPORTED, type PipeliningTransportOptions } from './smtp-pool-transport.js';
import { dotStuff, ReplyParser, type Reply } from './smtp-wire.js';
import { transportContract } from './transport.contract.js';
import type { OutgoingMessage } from './transport.js';

interface PeerOptions {
  rcpt?: Record<string, number>;
  /** Reply code for the first MAIL FROM of the peer's life; later ones pass. */
  firstMail?: number;
  data?: number;
  /** Hang up on the first message while its data arrives. */
  dropFirstData?: boolean;
  smtpUtf8?: boolean;
  pipelining?: boolean;
  auth?: { user: string; pass: string; methods: string[] };
  tls?: 'starttls' | 'implicit';
}

/** A real smtp-server on loopback that records what arrived and how many sessions it saw. */
async function startPeer(options: PeerOptions = {}) {
  const arrivals: ReturnType<typeof arrival>[] = [];
  const sockets = new Map<number, Socket>();
  const seen = { connections: 0, open: 0, maxOpen: 0, mails: 0, dropped: 0 };
  const server = new SMTPServer({
    logger: false, size: 10 * 1024 * 1024, secure: options.tls === 'implicit',
    authOptional: options.auth === undefined, allowInsecureAuth: true, authMethods: options.auth?.methods ?? ['PLAIN'],
    disabledCommands: [...(options.tls === 'starttls' ? [] : ['STARTTLS']), ...(options.auth ? [] : ['AUTH'])],
    hideSMTPUTF8: options.smtpUtf8 === false, hidePIPELINING: options.pipelining === false,
    onConnect(_session, callback) {
      seen.connections += 1;
      seen.maxOpen = Math.max(seen.maxOpen, ++seen.open);
      callback();
    },
    onClose: () => void (seen.open -= 1),
    onAuth(auth, _session, callback) {
      const ok = auth.username === options.auth?.user && auth.password === options.auth?.pass;
      callback(ok ? null : refusal(535, 'bad credentials'), ok ? { user: auth.username } : undefined);
    },
    onMailFrom(_address, _session, callback) {
      callback(++seen.mails === 1 && options.firstMail ? refusal(options.firstMail, 'not now') : null);
    },
    onRcptTo(address, _session, callback) {
      const code = options.rcpt?.[address.address];
      callback(code === undefined ? null : refusal(code, 'recipient refused by test peer'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      if (options.dropFirstData && seen.dropped++ === 0) {
        // Hang up as the first bytes arrive, without ever answering the message.
        return void stream.once('data', () => sockets.get(session.remotePort)?.destroy()).resume();
      }
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (options.data !== undefined) return callback(refusal(options.data, 'message refused by test peer'));
        arrivals.push(arrival(Buffer.concat(chunks), session));
        callback();
      });
    },
  });
  const tcp = server.server as unknown as { on(e: 'connection', f: (s: Socket) => void): void; address(): AddressInfo };
  tcp.on('connection', (socket) => sockets.set(socket.remotePort!, socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const auth = options.auth ? `${encodeURIComponent(options.auth.user)}:${encodeURIComponent(options.auth.pass)}@` : '';
  const scheme = options.tls === 'implicit' ? 'smtps' : 'smtp';
  return {
    url: `${scheme}://${auth}127.0.0.1:${tcp.address().port}?tls.rejectUnauthorized=false`,
    arrivals, seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What the peer keeps of each accepted message. */
function arrival(raw: Buffer, session: SMTPServerSession) {
  const envelope = session.envelope as typeof session.envelope & { smtpUtf8?: boolean };
  return { raw, to: envelope.rcptTo.map((r) => r.address), smtpUtf8: envelope.smtpUtf8 === true, secure: session.secure, user: session.user as unknown };
}

function refusal(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

/** A small hand-built message; `body` lines are joined with CRLF. */
function message(seq: number, { to = [`p${seq}@example.net`], body = ['Hello.'] } = {}): OutgoingMessage {
  const messageId = `<m${seq}@assent.test>`;
  const raw = Buffer.from([`Message-ID: ${messageId}`, 'Subject: test', '', ...body, ''].join('\r\n'));
  return { envelope: { from: 'bounce@assent.test', to }, messageId, raw };
}

async function withPeer(peerOptions: PeerOptions, run: (peer: Awaited<ReturnType<typeof startPeer>>,
  transport: ReturnType<typeof createPipeliningTransport>) => Promise<void>, options: Partial<PipeliningTransportOptions> = {}) {
  const peer = await startPeer(peerOptions);
  const transport = createPipeliningTransport({ url: peer.url, connections: 2, ...options });
  try {
    await run(peer, transport);
  } finally {
    await transport.close();
    await peer.close();
  }
}

transportContract('pipelining smtp', async () => {
  const peer = await startPeer();
  return {
    transport: createPipeliningTransport({ url: peer.url, connections: 4 }),
    received: async () => peer.arrivals.map((a) => a.raw),
    cleanup: peer.close,
  };
});

describe('pipelining smtp: replies map to results', () => {
  test('451 to RCPT is transient 451, 550 permanent 550, and the session carries on', () =>
    withPeer({ rcpt: { 'later@example.net': 451, 'gone@example.net': 550 } }, async (peer, transport) => {
      const [later, gone, fine] = await Promise.all([ // overlapping on the one session
        transport.send(message(1, { to: ['later@example.net'] })),
        transport.send(message(2, { to: ['gone@example.net'] })),
        transport.send(message(3)),
      ]);
      assert.deepEqual(later, { status: 'transient', messageId: '<m1@assent.test>', code: 451, response: '451 recipient refused by test peer' });
      assert.deepEqual(gone, { status: 'permanent', messageId: '<m2@assent.test>', code: 550, response: '550 recipient refused by test peer' });
      assert.equal(fine.status, 'sent');
      assert.deepEqual(peer.arrivals.map((a) => a.to), [['p3@example.net']]);
      assert.equal(peer.seen.connections, 1); // RSET, not a new session, after each refusal
    }, { connections: 1 }));

  test('one refused recipient of two: sent, the refusal named in the response', () =>
    withPeer({ rcpt: { 'gone@example.net': 550 } }, async (peer, transport) => {
      const result = await transport.send(message(1, { to: ['ok@example.net', 'gone@example.net'] }));
      assert.equal(result.status, 'sent');
      assert.match(result.response, /^250 .*\(rejected: gone@example\.net\)$/);
      assert.deepEqual(peer.arrivals.map((a) => a.to), [['ok@example.net']]);
    }));

  test('421 to MAIL is transient 421 and the session is replaced', () =>
    withPeer({ firstMail: 421 }, async (peer, transport) => {
      const first = await transport.send(message(1));
      assert.deepEqual([first.status, 'code' in first && first.code], ['transient', 421]);
      assert.equal((await transport.send(message(2))).status, 'sent');
      assert.equal(peer.seen.connections, 2);
      assert.equal(peer.arrivals.length, 1);
    }, { connections: 1 }));

  test('554 after DATA is permanent 554', () =>
    withPeer({ data: 554 }, async (peer, transport) => {
      const result = await transport.send(message(1));
      assert.deepEqual(result, { status: 'permanent', messageId: '<m1@assent.test>', code: 554, response: '554 message refused by test peer' });
      assert.equal(peer.arrivals.length, 0);
    }));

  test('a connection dropped mid-DATA is transient without a code; the next message goes on a new one', () =>
    withPeer({ dropFirstData: true }, async (peer, transport) => {
      const lost = await transport.send(message(1, { body: ['x'.repeat(70)] }));
      assert.equal(lost.status, 'transient');
      assert.equal('code' in lost, false);
      assert.match(lost.response, /^ECONN/);
      assert.equal((await transport.send(message(2))).status, 'sent');
      assert.equal(peer.seen.connections, 2);
      assert.deepEqual(peer.arrivals.map((a) => a.to), [['p2@example.net']]);
    }, { connections: 1 }));

  test('without PIPELINING, commands go one by one with the same results', () =>
    withPeer({ pipelining: false, rcpt: { 'gone@example.net': 550 } }, async (peer, transport) => {
      assert.equal((await transport.send(message(1, { to: ['gone@example.net'] }))).status, 'permanent');
      assert.equal((await transport.send(message(2, { to: ['ok@example.net', 'gone@example.net'] }))).status, 'sent');
      assert.deepEqual(peer.arrivals.map((a) => a.to), [['ok@example.net']]);
    }));
});

describe('pipelining smtp: wire details', () => {
  test('dot-stuffing round trip: lines ".", "..", ".foo" arrive byte-identical', () =>
    withPeer({}, async (peer, transport) => {
      const sent = message(1, { body: ['.', '..', '.foo', 'a.b', '...', '', '.'] });
      assert.equal((await transport.send(sent)).status, 'sent');
      assert.ok(peer.arrivals[0]?.raw.equals(sent.raw), 'the bytes differ');
    }));

  test('dotStuff: leading dot, dots after every line start, end mark added once', () => {
    const stuff = (s: string): string => Buffer.concat(dotStuff(Buffer.from(s))).toString();
    assert.equal(stuff('.a\r\n..b\r\nc.\r\n'), '..a\r\n...b\r\nc.\r\n.\r\n');
    assert.equal(stuff('no final newline'), 'no final newline\r\n.\r\n');
    assert.equal(stuff('x\n.\r\n'), 'x\n..\r\n.\r\n'); // a bare LF cannot smuggle an end mark
  });

  test('ReplyParser: multi-line replies (RFC 5321 §4.2) split across chunks, several per chunk', () => {
    const replies: Reply[] = [];
    const parser = new ReplyParser((r) => replies.push(r));
    parser.feed(Buffer.from('250-mx.example\r\n250-PIPE'));
    parser.feed(Buffer.from('LINING\r\n250 SIZE 100\r\n354 go\r\n25'));
    parser.feed(Buffer.from('0 ok\r\n'));
    assert.deepEqual(replies.map((r) => [r.code, r.lines]), [[250, ['mx.example', 'PIPELINING', 'SIZE 100']], [354, ['go']], [250, ['ok']]]);
    assert.throws(() => parser.feed(Buffer.from('hello\r\n')), /not an SMTP reply/);
  });

  test('SMTPUTF8 advertised: a non-ASCII mailbox goes out with the SMTPUTF8 parameter', () =>
    withPeer({}, async (peer, transport) => {
      assert.equal((await transport.send(message(1, { to: ['jürgen@bücher.example'] }))).status, 'sent');
      assert.deepEqual(peer.arrivals.map((a) => [a.to, a.smtpUtf8]), [[['jürgen@bücher.example'], true]]);
    }));

  test('SMTPUTF8 not advertised: permanent smtputf8_unsupported without a code (ADR-05), nothing sent', () =>
    withPeer({ smtpUtf8: false }, async (peer, transport) => {
      const refused = await transport.send(message(1, { to: ['jürgen@example.net'] }));
      assert.deepEqual(refused, { status: 'permanent', messageId: '<m1@assent.test>', response: SMTPUTF8_UNSUPPORTED });
      assert.equal((await transport.send(message(2))).status, 'sent'); // the session is still good
      assert.deepEqual(peer.arrivals.map((a) => a.to), [['p2@example.net']]);
    }));

  test('without SMTPUTF8 an IDN domain goes as its A-label; SIZE and BODY parameters as advertised', () =>
    withSink({}, async (sink, transport) => {
      const idn = message(1, { to: ['user@bücher.example'], body: ['Grüße'] });
      assert.equal((await transport.send(idn)).status, 'sent');
      assert.deepEqual(sink.commands.filter((c) => /^(MAIL|RCPT)/.test(c)), [
        `MAIL FROM:<bounce@assent.test> SIZE=${idn.raw.length} BODY=8BITMIME`, 'RCPT TO:<user@xn--bcher-kva.example>',
      ]);
    }));

  test('a relay that never answers the end of data times out as transient, without a code', () =>
    withSink({ finalReply: false }, async (_sink, transport) => {
      const result = await transport.send(message(1));
      assert.deepEqual([result.status, 'code' in result, result.response.slice(0, 9)], ['transient', false, 'ETIMEDOUT']);
    }, { timeouts: { dataMs: 200 } }));

  test('with PIPELINING the next envelope rides in the same write as the message before it (RFC 2920 §3.1)', () =>
    withSink({}, async (sink, transport) => {
      const results = await Promise.all([1, 2, 3, 4].map((i) => transport.send(message(i))));
      assert.deepEqual(results.map((r) => r.status), ['sent', 'sent', 'sent', 'sent']);
      assert.equal(sink.stats.maxGroup, 4); // 250 for a message, then 250, 250, 354 for the next envelope
    }));

  test('a server refusing EHLO gets HELO, then commands one at a time', () =>
    withSink({ refuseEhlo: true }, async (sink, transport) => {
      const results = await Promise.all([1, 2, 3].map((i) => transport.send(message(i))));
      assert.deepEqual(results.map((r) => r.status), ['sent', 'sent', 'sent']);
      assert.deepEqual([sink.stats.messages, sink.stats.helo, sink.stats.maxGroup], [3, 1, 1]);
    }));

  test('a refused connection is transient, without a code', async () => {
    const sink = await startSink();
    await sink.close(); // the port is now closed
    const transport = createPipeliningTransport({ url: sink.url });
    const result = await transport.send(message(1));
    await transport.close();
    assert.deepEqual([result.status, 'code' in result], ['transient', false]);
    assert.match(result.response, /^ECONNREFUSED/);
  });
});

describe('pipelining smtp: sessions', () => {
  const credentials = { user: 'assent', pass: 'p@ss w:rd/ü' };
  for (const methods of [['PLAIN', 'LOGIN'], ['LOGIN']]) {
    test(`AUTH ${methods[0]} with the URL's credentials; wrong ones are transient, nothing sent`, async () => {
      await withPeer({ auth: { ...credentials, methods } }, async (peer, transport) => {
        assert.equal((await transport.send(message(1))).status, 'sent');
        assert.deepEqual(peer.arrivals.map((a) => a.user), ['assent']);
      });
      await withPeer({ auth: { ...credentials, methods } }, async (peer) => {
        const wrong = createPipeliningTransport({ url: peer.url.replace('assent:', 'assent:x'), connections: 1 });
        const result = await wrong.send(message(2));
        await wrong.close();
        assert.deepEqual([result.status, 'code' in result], ['transient', false]);
        assert.match(result.response, /^EAUTH: AUTH refused: 535/);
        assert.equal(peer.arrivals.length, 0);
      });
    });
  }

  test('STARTTLS when offered, and implicit TLS for smtps://', async () => {
    for (const tls of ['starttls', 'implicit'] as const) {
      await withPeer({ tls }, async (peer, transport) => {
        assert.equal((await transport.send(message(1))).status, 'sent');
        assert.deepEqual(peer.arrivals.map((a) => a.secure), [true]);
      });
    }
  });

  test('2,000 messages over 10 connections each arrive exactly once', () =>
    withPeer({}, async (peer, transport) => {
      const messages = Array.from({ length: 2000 }, (_, i) => message(i));
      const results = await Promise.all(messages.map((m) => transport.send(m)));
      assert.deepEqual(new Set(results.map((r) => r.status)), new Set(['sent']));
      const ids = peer.arrivals.map((a) => /^Message-ID: (\S+)/.exec(a.raw.toString())?.[1]);
      assert.deepEqual(ids.sort(), messages.map((m) => m.messageId).sort());
      assert.equal(peer.seen.maxOpen, 10);
      assert.deepEqual(transport.stats(), { open: 10, inFlight: 0, queued: 0 });
    }, { connections: 10 }));

  test('after maxMessagesPerConnection a session QUITs and a new one takes over', () =>
    withPeer({}, async (peer, transport) => {
      await Promise.all(Array.from({ length: 120 }, (_, i) => transport.send(message(i))));
      assert.equal(peer.arrivals.length, 120);
      assert.equal(peer.seen.connections, 3);
    }, { connections: 1, maxMessagesPerConnection: 50 }));

  // A QUIT taking a connection's turn in front of a message already handed to
  // that connection once left the message (and every later one) waiting
  // forever: it happened when a drained queue restarted two pumps on a lane
  // and the second one's message reached the recycle count. Waves of 1-3
  // messages drain the queue every time and hit every position of the count.
  test('recycling between waves that drain the queue: every message arrives once, none hangs', { timeout: 30_000 }, () =>
    withPeer({}, async (peer, transport) => {
      let seq = 0;
      const deadline = Date.now() + 20_000;
      for (let wave = 0; wave < 150; wave++) {
        const messages = Array.from({ length: 1 + (wave % 3) }, () => message(seq++));
        const results = await Promise.race([
          Promise.all(messages.map((m) => transport.send(m))),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`stalled at wave ${wave}: ${JSON.stringify(transport.stats())}`)), Math.max(1, deadline - Date.now())).unref()),
        ]);
        assert.deepEqual(new Set(results.map((r) => r.status)), new Set(['sent']));
      }
      assert.equal(peer.arrivals.length, seq);
      assert.equal(new Set(peer.arrivals.map((a) => /^Message-ID: (\S+)/m.exec(a.raw.toString())?.[1])).size, seq);
      assert.ok(peer.seen.connections >= seq / 7, `${peer.seen.connections} connections for ${seq} messages`);
    }, { connections: 1, maxMessagesPerConnection: 7 }));
});

interface SinkOptions {
  refuseEhlo?: boolean;
  /** false: swallow the message and never answer it. */
  finalReply?: boolean;
  /** Keep every command line in `commands` (on unless benchmarking). */
  record?: boolean;
}

/**
 * A bare-bones sink: one reply per command line (so pipelined groups work), 354
 * after DATA, 250 after the end-of-data mark; the data itself is discarded.
 */
async function startSink(options: SinkOptions = {}) {
  const stats = { messages: 0, helo: 0, maxGroup: 0 };
  const commands: string[] = [];
  const sockets = new Set<Socket>();
  const ehlo = '250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800';
  const server = createServer((socket) => {
    let inData = false;
    let tail = Buffer.alloc(0); // the last bytes of data, for a mark split across chunks
    let partial = '';
    sockets.add(socket.once('close', () => sockets.delete(socket)));
    socket.setNoDelay(true);
    socket.write('220 sink ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      const replies: string[] = [];
      let pos = 0;
      while (pos < chunk.length) {
        if (inData) {
          const end = endOfData(tail, chunk, pos);
          if (end === -1) {
            tail = chunk.length - pos >= 4 ? Buffer.from(chunk.subarray(-4)) : Buffer.concat([tail, chunk.subarray(pos)]).subarray(-4);
            break;
          }
          [pos, inData] = [end, false];
          stats.messages += 1;
          if (options.finalReply !== false) replies.push('250 2.0.0 queued');
          continue;
        }
        const lf = chunk.indexOf(10, pos);
        if (lf === -1) {
          partial += chunk.toString('latin1', pos); // commands are ASCII in these tests
          break;
        }
        const line = partial + chunk.toString('latin1', pos, lf > pos && chunk[lf - 1] === 13 ? lf - 1 : lf);
        if (options.record !== false) commands.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        [partial, pos] = ['', lf + 1];
        if (verb === 'EHLO') replies.push(options.refuseEhlo ? '502 5.5.1 no' : ehlo);
        else if (verb === 'HELO') replies.push(`250 sink (HELO ${++stats.helo})`);
        else if (verb === 'QUIT') return void socket.end('221 bye\r\n');
        else if (verb !== 'DATA') replies.push('250 2.0.0 ok');
        else {
          [inData, tail] = [true, Buffer.from('\r\n')]; // the DATA line's CRLF may open the mark
          replies.push('354 go ahead');
        }
      }
      stats.maxGroup = Math.max(stats.maxGroup, replies.length);
      if (replies.length > 0) socket.write(`${replies.join('\r\n')}\r\n`);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`, port, stats, commands,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      sockets.forEach((socket) => socket.destroy());
    }),
  };
}

async function withSink(options: SinkOptions, run: (sink: Awaited<ReturnType<typeof startSink>>,
  transport: ReturnType<typeof createPipeliningTransport>) => Promise<void>, transportOptions: Partial<PipeliningTransportOptions> = {}) {
  const sink = await startSink(options);
  const transport = createPipeliningTransport({ url: sink.url, connections: 1, ...transportOptions });
  try {
    await run(sink, transport);
  } finally {
    await transport.close();
    await sink.close();
  }
}

const END_MARK = Buffer.from('\r\n.\r\n');

/** Where the data ends in `chunk` (just past CRLF.CRLF), also when the mark began in the previous chunk. */
function endOfData(tail: Buffer, chunk: Buffer, pos: number): number {
  const straddle = Buffer.concat([tail, chunk.subarray(pos, pos + 4)]).indexOf(END_MARK);
  if (straddle !== -1) return pos + straddle + END_MARK.length - tail.length;
  const at = chunk.indexOf(END_MARK, pos);
  return at === -1 ? -1 : at + END_MARK.length;
}

describe('pipelining smtp: throughput (a diagnostic, not an assertion)', () => {
  test('5,000 prebuilt 16 KB messages over 10 connections, beside nodemailer\'s pool, same sink', async (t) => {
    const sink = await startSink({ record: false });
    const line = `${'0123456789abcdef'.repeat(4)}0123456789\r\n`; // 76 octets + CRLF
    const body = Buffer.from(`Subject: bench\r\nMIME-Version: 1.0\r\n\r\n${line.repeat(Math.ceil(16_384 / line.length))}`);
    const batch = (n: number, tag: string): OutgoingMessage[] => Array.from({ length: n }, (_, i) => {
      const messageId = `<${tag}.${i}@bench.assent.test>`;
      return { messageId, envelope: { from: 'bounce@assent.test', to: [`p${i}@example.net`] }, raw: Buffer.concat([Buffer.from(`Message-ID: ${messageId}\r\n`), body]) };
    });
    const runs = {
      pipelining: async (messages: OutgoingMessage[]) => {
        const transport = createPipeliningTransport({ url: sink.url, connections: 10 });
        const results = await Promise.all(messages.map((m) => transport.send(m)));
        await transport.close();
        return results.filter((r) => r.status === 'sent').length;
      },
      nodemailer: async (messages: OutgoingMessage[]) => {
        const mailer = nodemailer.createTransport({ pool: true, maxConnections: 10, host: '127.0.0.1', port: sink.port, secure: false, ignoreTLS: true });
        const results = await Promise.allSettled(messages.map((m) => mailer.sendMail({ envelope: { ...m.envelope }, raw: m.raw })));
        mailer.close();
        return results.filter((r) => r.status === 'fulfilled').length;
      },
    };
    const seconds = { pipelining: 0, nodemailer: 0 };
    await runs.pipelining(batch(500, 'warm-p'));
    await runs.nodemailer(batch(500, 'warm-n'));
    // A-B-B-A order, so a neighbour's load drifting during the run hits both sides alike.
    for (const [round, name] of (['pipelining', 'nodemailer', 'nodemailer', 'pipelining'] as const).entries()) {
      const messages = batch(5000, `${name}-${round}`);
      const started = process.hrtime.bigint();
      assert.equal(await runs[name](messages), 5000);
      seconds[name] += Number(process.hrtime.bigint() - started) / 1e9;
    }
    await sink.close();
    const [ours, theirs] = [10_000 / seconds.pipelining, 10_000 / seconds.nodemailer];
    t.diagnostic(`pipelining transport: ${ours.toFixed(0)} msg/s; nodemailer pool: ${theirs.toFixed(0)} msg/s (sink in this process)`);
    t.diagnostic(`ratio pipelining / nodemailer: ${(ours / theirs).toFixed(2)} (issue 3 target: >= 3)`);
    assert.equal(sink.stats.messages, 21_000);
  });
});
