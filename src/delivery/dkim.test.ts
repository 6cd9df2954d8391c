import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { createDkimSigner, dkimTxtRecord, relaxedBodyHash, relaxedHeader, type DkimSigner } from './dkim.js';

const corpus = (path: string): string => readFileSync(new URL(`../../../shared/corpora/dkim/${path}`, import.meta.url), 'latin1');
const crlf = (text: string): string => text.replace(/\r?\n/g, '\r\n');

/** RFC 8410 §7: PKCS#8 wrapping of a raw 32-byte Ed25519 seed, as the corpus stores them. */
function ed25519Pem(seedBase64: string): string {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seedBase64.trim(), 'base64')]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
}

// RFC 8463 Appendix A keys, published by the corpus (README.md, dkimpy/ and mailauth-ec/dns.json).
const ED_PEM = ed25519Pem(corpus('dkimpy/rfc8032_7_1.key'));
const ED_RECORD = 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';
const RSA_PEM = corpus('dkimpy/test.private');
const RSA_RECORD = corpus('dkimpy/test.txt').trim();
const RSA2048_PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

const NOW = new Date('2026-03-01T09:00:00Z');
const records: Record<string, string> = {
  'brisbane._domainkey.football.example.com': ED_RECORD,
  'test._domainkey.football.example.com': RSA_RECORD,
  'big._domainkey.football.example.com': dkimTxtRecord(RSA2048_PEM),
};

/** Offline DNS for mailauth: the TXT record or NXDOMAIN, never the network. */
async function resolver(name: string, type: string): Promise<string[][]> {
  const record = type === 'TXT' ? records[name] : undefined;
  if (record === undefined) throw Object.assign(new Error(`no ${type} for ${name}`), { code: 'ENOTFOUND' });
  return [[record]];
}

async function verify(message: Buffer | string, extra: Record<string, string> = {}) {
  const lookup = async (name: string, type: string) => (extra[name] ? [[extra[name]]] : resolver(name, type));
  const result = await dkimVerify(Buffer.from(message as string), { resolver: lookup, strict: true, curTime: NOW });
  return result.results.map((r) => ({ result: r.status.result, comment: r.status.comment || false, algo: r.algo }));
}

const signer = (selector: string, privateKeyPem: string): DkimSigner =>
  createDkimSigner({ domain: 'football.example.com', selector, privateKeyPem, now: () => NOW });

const message = crlf(`From: Example News <news@football.example.com>
To: suzie@shopping.example.net
Subject: Is dinner ready?
Date: Sun, 01 Mar 2026 09:00:00 +0000
Message-ID: <c.1.2@football.example.com>
MIME-Version: 1.0
List-Id: News <news.football.example.com>
List-Unsubscribe: <https://football.example.com/u/v1.AAAA.BBBB>
List-Unsubscribe-Post: List-Unsubscribe=One-Click
Content-Type: text/plain; charset=utf-8

Hi.   We lost  the game.\t
Are you hungry yet?  \t 

`);

describe('DKIM signer (RFC 6376, RFC 8463)', () => {
  for (const [name, selector, pem] of [
    ['rsa-sha256 (1024-bit corpus key)', 'test', RSA_PEM],
    ['rsa-sha256 (2048-bit key)', 'big', RSA2048_PEM],
    ['ed25519-sha256 (RFC 8463 key)', 'brisbane', ED_PEM],
  ] as const) {
    test(`EML-03: ${name} signature verifies as pass with mailauth (strict)`, async () => {
      const signed = signer(selector, pem).sign(Buffer.from(message));
      assert.deepEqual(await verify(signed), [
        { result: 'pass', comment: false, algo: selector === 'brisbane' ? 'ed25519-sha256' : 'rsa-sha256' },
      ]);
      assert.ok(signed.subarray(-message.length).equals(Buffer.from(message)), 'the message itself is untouched');
    });

    test(`EML-03: ${name} signed off the event loop (signAsync) verifies the same way`, async () => {
      const signed = await signer(selector, pem).signAsync(Buffer.from(message));
      assert.deepEqual(await verify(signed), [
        { result: 'pass', comment: false, algo: selector === 'brisbane' ? 'ed25519-sha256' : 'rsa-sha256' },
      ]);
    });
  }

  test('EML-03 / EML-18: h= signs the list headers and over-signs from, subject and list-unsubscribe*; no l=', () => {
    const field = signer('brisbane', ED_PEM).sign(Buffer.from(message)).toString('latin1').split(/\r\n(?![ \t])/)[0] as string;
    const tags = Object.fromEntries(
      field.slice('DKIM-Signature:'.length).replace(/\s+/g, '').split(';').filter(Boolean).map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]),
    );
    assert.deepEqual(Object.keys(tags), ['v', 'a', 'c', 'd', 's', 't', 'h', 'bh', 'b']);
    assert.equal(tags.c, 'relaxed/relaxed');
    assert.equal(tags.t, String(NOW.getTime() / 1000));
    assert.equal(
      tags.h,
      'from:from:subject:subject:date:message-id:to:list-unsubscribe:list-unsubscribe:' +
        'list-unsubscribe-post:list-unsubscribe-post:list-id:mime-version:content-type',
    );
    for (const line of field.split('\r\n')) assert.ok(line.length <= 78, `line too long: ${line}`);
  });

  test('EML-03: a changed body byte fails the body hash', async () => {
    for (const pem of [RSA_PEM, ED_PEM]) {
      const signed = signer(pem === ED_PEM ? 'brisbane' : 'test', pem).sign(Buffer.from(message));
      const tampered = Buffer.from(signed.toString('latin1').replace('hungry', 'hungrY'), 'latin1');
      assert.deepEqual((await verify(tampered)).map((r) => [r.result, r.comment]), [['fail', 'body hash did not verify']]);
    }
  });

  test('EML-03: a changed Subject fails the signature', async () => {
    const signed = signer('brisbane', ED_PEM).sign(Buffer.from(message)).toString('latin1');
    const tampered = signed.replace('Subject: Is dinner ready?', 'Subject: Is dinner ready!');
    assert.deepEqual((await verify(tampered)).map((r) => [r.result, r.comment]), [['fail', 'bad signature']]);
  });

  test('EML-18: an added second From (or List-Unsubscribe) fails, thanks to over-signing', async () => {
    const signed = signer('test', RSA_PEM).sign(Buffer.from(message)).toString('latin1');
    const cut = signed.indexOf('\r\nFrom:') + 2;
    for (const added of ['From: Evil <evil@attacker.example>\r\n', 'List-Unsubscribe: <https://attacker.example/x>\r\n']) {
      for (const at of [cut, signed.indexOf('\r\n\r\n') + 2]) {
        const tampered = signed.slice(0, at) + added + signed.slice(at);
        assert.equal((await verify(tampered))[0]?.result, 'fail', `${added.trim()} at ${at}`);
      }
    }
  });

  test('EML-18: the signer refuses to be configured without from in h=, or to sign a message without From', () => {
    assert.throws(() => createDkimSigner({ domain: 'x.example', selector: 's', privateKeyPem: ED_PEM, headers: ['subject', 'to'] }), /must include from/);
    const s = createDkimSigner({ domain: 'x.example', selector: 's', privateKeyPem: ED_PEM, headers: ['FROM', 'Subject'] });
    assert.deepEqual(s.headers, ['from', 'subject']);
    assert.throws(() => s.sign(Buffer.from('Subject: x\r\n\r\nbody\r\n')), /no From/);
    const weak = generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.throws(() => createDkimSigner({ domain: 'x.example', selector: 's', privateKeyPem: weak }), /1024/);
  });

  test('dkimTxtRecord publishes exactly the corpus records for the corpus keys', () => {
    assert.equal(dkimTxtRecord(ED_PEM), ED_RECORD);
    assert.equal(dkimTxtRecord(RSA_PEM), RSA_RECORD.replace(' g=*;', ''));
  });

  test('relaxed body canonicalisation (RFC 6376 §3.4.4) matches the spec cases and RFC 8463 A.3 bh=', () => {
    const sha = (s: string) => createHash('sha256').update(s, 'latin1').digest('base64');
    const cases: Array<[string, string]> = [
      ['', ''],
      ['\r\n\r\n', ''],
      ['abc', 'abc\r\n'],
      [' C \r\nD \t E\r\n\r\n\r\n', ' C\r\nD E\r\n'],
      ['a\t\tb  \t\r\n \r\n', 'a b\r\n'],
      ['x \r\n\t', 'x\r\n'],
    ];
    for (const [body, canonical] of cases) assert.equal(relaxedBodyHash(Buffer.from(body, 'latin1')), sha(canonical), JSON.stringify(body));
    const a3 = crlf(corpus('mailauth-ec/signed.eml'));
    assert.equal(relaxedBodyHash(Buffer.from(a3.slice(a3.indexOf('\r\n\r\n') + 4))), '2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=');
  });

  test('relaxed header canonicalisation reproduces both RFC 8463 A.3 signatures byte for byte', () => {
    const a3 = crlf(corpus('mailauth-ec/signed.eml'));
    const fields = a3.slice(0, a3.indexOf('\r\n\r\n')).split(/\r\n(?![ \t])/);
    const named = (n: string) => fields.find((f) => f.toLowerCase().startsWith(`${n}:`)) as string;
    // h=from:to:subject:date:message-id:from:subject:date — the repeats sign absent fields.
    const signedFields = ['from', 'to', 'subject', 'date', 'message-id'].map((n) => relaxedHeader(named(n))).join('');
    for (const [index, pem] of [[0, ED_PEM], [1, RSA_PEM]] as const) {
      const field = fields[index] as string;
      const b = field.slice(field.indexOf('b=', field.indexOf('bh=') + 3) + 2);
      const data = Buffer.from(signedFields + relaxedHeader(field.slice(0, field.length - b.length)).slice(0, -2), 'latin1');
      const signature = pem === ED_PEM ? cryptoSign(null, createHash('sha256').update(data).digest(), pem) : cryptoSign('sha256', data, pem);
      assert.equal(signature.toString('base64'), b.replace(/\s+/g, ''));
    }
  });

  test('the verifier harness reproduces mailauth-verify-results.tsv for the stalwart vectors', async () => {
    const expected = new Map(corpus('mailauth-verify-results.tsv').trim().split('\n').map((l) => l.split('\t') as [string, string]));
    for (const n of ['001', '002', '003', '004', '005', '006']) {
      const text = corpus(`stalwart-mail-auth/${n}.txt`);
      const blank = text.indexOf('\n\n');
      const dns = Object.fromEntries(text.slice(0, blank).split('\n').map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
      const result = await dkimVerify(Buffer.from(crlf(text.slice(blank + 2)), 'latin1'), {
        resolver: async (name: string) => (dns[name] ? [[dns[name]]] : []),
        curTime: 1667843664 * 1000,
      });
      const summary = result.results.map((r) => `${r.signingDomain}/${r.selector}/${r.algo}:${r.status.result}`).join(' ; ');
      assert.equal(summary, expected.get(`stalwart-mail-auth/${n}.txt`), n);
    }
  });

  test('EML-03: random bodies and folded headers verify (mailauth agrees with our canonicalisation)', async () => {
    const pieces = [' ', '  ', '\t', ' \t ', 'a', 'xyz', '=', '\r\n', '\r\n\r\n', 'é'];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const ed = signer('brisbane', ED_PEM);
    for (let round = 0; round < 150; round++) {
      let body = '';
      for (let i = next() % 40; i > 0; i--) body += pieces[next() % pieces.length];
      const head = `From:  Joe \t<joe@football.example.com> \r\nSubject: a\r\n \t b  c\r\nTo: x@y.example\r\n\r\n`;
      const results = await verify(ed.sign(Buffer.from(head + body, 'utf8')));
      assert.deepEqual(results.map((r) => r.result), ['pass'], JSON.stringify(body));
    }
  });

  test('sign rate for a 16 KB message (diagnostic, no assertion on time)', (t) => {
    const line = '<p style="margin:0;  padding:0">A line of a campaign body with a tracked link https://example.com/x?u=1</p>  \r\n';
    const raw = Buffer.from(message.slice(0, message.indexOf('\r\n\r\n') + 4) + line.repeat(Math.ceil(16384 / line.length)));
    for (const [name, s] of [['rsa-2048', signer('big', RSA2048_PEM)], ['ed25519', signer('brisbane', ED_PEM)]] as const) {
      for (let i = 0; i < 50; i++) s.sign(raw);
      const n = name === 'ed25519' ? 4000 : 1000;
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) s.sign(raw);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      t.diagnostic(`DKIM ${name}: ${Math.round(n / seconds)} signatures/s (${((seconds / n) * 1e6).toFixed(0)} µs each, ${raw.length} B)`);
    }
    const start = process.hrtime.bigint();
    const scratch = { buffer: Buffer.alloc(64 * 1024) };
    for (let i = 0; i < 4000; i++) relaxedBodyHash(raw, scratch);
    t.diagnostic(`relaxed body hash alone: ${(Number(process.hrtime.bigint() - start) / 4000 / 1000).toFixed(1)} µs per 16 KB body`);
  });
});
