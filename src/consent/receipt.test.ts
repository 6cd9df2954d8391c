import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompactSign, calculateJwkThumbprint, importJWK } from 'jose';
import {
  buildReceiptClaims,
  extractReceiptJws,
  renderReceiptText,
  signReceipt,
  verifyReceipt,
  type ReceiptInput,
} from './receipt.js';
import { generateReceiptKey, publicKeySet, receiptKeyFromJwk, type ReceiptPrivateKey } from './receipt-keys.js';

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const input: ReceiptInput = {
  receiptId: '4f1c2b7e-0d3a-4c55-9a8e-2f6b1d0c9e11',
  controller: {
    name: 'Example Books Ltd',
    contact: 'Data Protection Officer',
    email: 'privacy@example.org',
    address: '1 High Street, Leeds LS1 1AA, UK',
    url: 'https://news.example.org',
  },
  policyUrl: 'https://news.example.org/privacy/v3',
  jurisdiction: 'GB',
  language: 'en',
  subject: 'c_01HZX3K8Q2M4',
  topic: { slug: 'new-releases', name: 'New releases' },
  consentText: {
    id: 'ct_new_releases',
    version: 3,
    sha256: 'a3f1c0de9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817060504',
    body: 'Email me about new releases.\nI can unsubscribe at any time.',
  },
  consentedAt: new Date('2025-03-01T10:00:00.750Z'),
  confirmedAt: new Date('2025-03-01T10:04:31.200Z'),
  method: 'web_form_double_opt_in',
  formId: 'form_homepage',
  ledgerEventHash: '9c1e5b0f7a3d2e4c6b8a0f1e3d5c7b9a1e3f5d7c9b0a2e4f6d8c0b1a3e5f7d9c',
  ledgerEventSeq: 42,
};

let cachedKeys: Promise<[ReceiptPrivateKey, ReceiptPrivateKey]> | undefined;
function keys(): Promise<[ReceiptPrivateKey, ReceiptPrivateKey]> {
  cachedKeys ??= Promise.all([generateReceiptKey(), generateReceiptKey()]);
  return cachedKeys;
}

/** Signs arbitrary header and payload, to build receipts our own signer refuses to make. */
async function forge(header: Record<string, unknown>, payload: unknown, key: ReceiptPrivateKey): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'EdDSA', ...header })
    .sign(await importJWK(key.privateJwk, 'EdDSA'));
}

function reasonOf(result: Awaited<ReturnType<typeof verifyReceipt>>): string {
  assert.equal(result.ok, false, 'expected verification to fail');
  return result.ok ? '' : result.reason;
}

test('GDPR-04 EDPB-02: a signed receipt verifies and returns exactly the claims that were signed', async () => {
  const [key] = await keys();
  const claims = buildReceiptClaims(input);
  const jws = await signReceipt(claims, key);
  const result = await verifyReceipt(jws, publicKeySet([key]).keys);
  assert.deepEqual(result, { ok: true, claims, kid: key.kid });
  const header = JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString('utf8')) as unknown;
  assert.deepEqual(header, { alg: 'EdDSA', kid: key.kid, typ: 'assent-receipt+jws' });
});

test('Kantara CR 4.3.1 and 4.3.3: version is KI-CR-v1.1.0 and consentTimestamp is integer seconds', () => {
  const claims = buildReceiptClaims(input);
  assert.equal(claims.version, 'KI-CR-v1.1.0');
  assert.equal(claims.consentTimestamp, 1740823200);
  assert.ok(Number.isInteger(claims.consentTimestamp));
  assert.equal(claims.iat, 1740823471);
  assert.equal(claims.assent.confirmedAt, 1740823471);
});

test('EDPB-02: claims name controller, topic, text version and hash, method and ledger event, not the address', () => {
  const claims = buildReceiptClaims(input);
  assert.deepEqual(claims.piiControllers, [
    {
      piiController: 'Example Books Ltd',
      contact: 'Data Protection Officer',
      email: 'privacy@example.org',
      address: '1 High Street, Leeds LS1 1AA, UK',
      piiControllerUrl: 'https://news.example.org',
    },
  ]);
  assert.equal(claims.piiPrincipalId, 'c_01HZX3K8Q2M4');
  assert.equal(claims.iss, 'https://news.example.org');
  assert.equal(claims.collectionMethod, 'web_form_double_opt_in');
  assert.deepEqual(claims.services[0]?.purposes[0]?.purposeCategory, ['marketing']);
  assert.equal(claims.services[0]?.purposes[0]?.consentType, 'EXPLICIT');
  assert.equal(claims.services[0]?.purposes[0]?.purpose, input.consentText.body);
  assert.deepEqual(claims.assent, {
    topic: 'new-releases',
    consentTextId: 'ct_new_releases',
    consentTextVersion: 3,
    consentTextSha256: input.consentText.sha256,
    confirmedAt: 1740823471,
    method: 'web_form_double_opt_in',
    formId: 'form_homepage',
    ledgerEventHash: input.ledgerEventHash,
    ledgerEventSeq: 42,
  });
  assert.throws(() => buildReceiptClaims({ ...input, subject: 'ann@example.com' }), /opaque contact id/);
});

test('optional controller fields and formId are left out, not null', () => {
  const claims = buildReceiptClaims({ ...input, controller: { name: 'X', contact: 'Y', email: 'z@x.io' }, formId: undefined });
  assert.deepEqual(claims.piiControllers, [{ piiController: 'X', contact: 'Y', email: 'z@x.io' }]);
  assert.equal('iss' in claims, false);
  assert.equal('formId' in claims.assent, false);
});

test('GDPR-04: changing any single character of the compact JWS makes verification fail', async () => {
  const [key] = await keys();
  const jws = await signReceipt(buildReceiptClaims(input), key);
  const publicKeys = publicKeySet([key]).keys;
  for (let i = 0; i < jws.length; i += 1) {
    const index = BASE64URL.indexOf(jws.charAt(i));
    // index ^ 1 flips only the lowest bit: the hardest case, since the last
    // character of a segment carries spare bits a lax decoder would ignore.
    const replacement = index === -1 ? 'A' : BASE64URL.charAt(index ^ 1);
    const tampered = `${jws.slice(0, i)}${replacement}${jws.slice(i + 1)}`;
    const result = await verifyReceipt(tampered, publicKeys);
    assert.equal(result.ok, false, `position ${i} (${jws.charAt(i)} -> ${replacement}) still verified`);
  }
});

test('GDPR-04: a receipt signed by another key fails, even under our kid', async () => {
  const [ours, theirs] = await keys();
  const claims = buildReceiptClaims(input);
  const byThem = await signReceipt(claims, theirs);
  assert.match(reasonOf(await verifyReceipt(byThem, publicKeySet([ours]).keys)), /unknown key id/);
  const forged = await forge({ kid: ours.kid, typ: 'assent-receipt+jws' }, claims, theirs);
  assert.match(reasonOf(await verifyReceipt(forged, publicKeySet([ours]).keys)), /signature does not verify/);
});

test('unknown kid fails; the right key is picked from a key set by kid', async () => {
  const [a, b] = await keys();
  const jws = await signReceipt(buildReceiptClaims(input), b);
  assert.match(reasonOf(await verifyReceipt(jws, [])), /unknown key id/);
  const result = await verifyReceipt(jws, publicKeySet([a, b]).keys);
  assert.equal(result.ok && result.kid, b.kid);
});

test('wrong alg, wrong typ, extra header parameters and malformed input fail without throwing', async () => {
  const [key] = await keys();
  const claims = buildReceiptClaims(input);
  const keySet = publicKeySet([key]).keys;
  const segment = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const hs256 = `${segment({ alg: 'HS256', kid: key.kid, typ: 'assent-receipt+jws' })}.${segment(claims)}.c2ln`;
  assert.match(reasonOf(await verifyReceipt(hs256, keySet)), /unsupported alg/);
  const none = `${segment({ alg: 'none', kid: key.kid, typ: 'assent-receipt+jws' })}.${segment(claims)}.`;
  assert.match(reasonOf(await verifyReceipt(none, keySet)), /malformed/);
  const jwt = await forge({ kid: key.kid, typ: 'JWT' }, claims, key);
  assert.match(reasonOf(await verifyReceipt(jwt, keySet)), /wrong typ/);
  const jku = await forge({ kid: key.kid, typ: 'assent-receipt+jws', jku: 'https://evil.example/k' }, claims, key);
  assert.match(reasonOf(await verifyReceipt(jku, keySet)), /unexpected header parameter\(s\): jku/);
  for (const bad of ['', 'abc', 'a.b', 'a.b.c.d', '..', 'e30.e30.e30', ' '.repeat(10), 42, null, undefined]) {
    assert.equal((await verifyReceipt(bad as string, keySet)).ok, false, `accepted ${String(bad)}`);
  }
  assert.equal((await verifyReceipt(await signReceipt(claims, key), null as unknown as [])).ok, false);
});

test('Kantara CR 4.2: a correctly signed payload without the required shape fails', async () => {
  const [key] = await keys();
  const claims = buildReceiptClaims(input);
  const header = { kid: key.kid, typ: 'assent-receipt+jws' };
  const keySet = publicKeySet([key]).keys;
  const cases: [unknown, RegExp][] = [
    [{ ...claims, consentTimestamp: 1740823200.5 }, /consentTimestamp/],
    [{ ...claims, consentTimestamp: 1740823200750 }, /consentTimestamp/],
    [{ ...claims, version: 'KI-CR-v1.0.0' }, /version/],
    [{ ...claims, piiPrincipalId: undefined }, /piiPrincipalId/],
    [{ ...claims, piiControllers: [] }, /piiControllers/],
    [{ ...claims, assent: { ...claims.assent, ledgerEventSeq: '42' } }, /assent\.ledgerEventSeq/],
    [[claims], /root/],
    ['a string', /root/],
  ];
  for (const [payload, field] of cases) {
    assert.match(reasonOf(await verifyReceipt(await forge(header, payload, key), keySet)), field);
  }
  await assert.rejects(signReceipt({ ...claims, jurisdiction: '' }, key), /jurisdiction/);
});

test('receipt key: kid is the RFC 7638 thumbprint and both JWKs carry kid, alg, use, crv', async () => {
  const [key] = await keys();
  assert.equal(key.kid, await calculateJwkThumbprint(key.publicJwk));
  for (const jwk of [key.privateJwk, key.publicJwk]) {
    assert.equal(jwk.kid, key.kid);
    assert.equal(jwk.alg, 'EdDSA');
    assert.equal(jwk.use, 'sig');
    assert.equal(jwk.crv, 'Ed25519');
    assert.equal(jwk.kty, 'OKP');
  }
  assert.equal(typeof key.privateJwk.d, 'string');
  assert.equal(key.publicJwk.d, undefined);
});

test('receipt key: a stored private JWK rebuilds the same key; anything else is refused clearly', async () => {
  const [key, other] = await keys();
  assert.deepEqual(receiptKeyFromJwk(JSON.parse(JSON.stringify(key.privateJwk))), key);
  assert.throws(() => receiptKeyFromJwk(key.publicJwk), /no private part/);
  assert.throws(() => receiptKeyFromJwk({ ...key.privateJwk, crv: 'X25519' }), /Ed25519/);
  assert.throws(() => receiptKeyFromJwk({ ...key.privateJwk, x: other.publicJwk.x }), /not the public key/);
  assert.throws(() => receiptKeyFromJwk({ ...key.privateJwk, kid: other.kid }), /thumbprint/);
  assert.throws(() => receiptKeyFromJwk({ ...key.privateJwk, d: 'AAAA' }), /"d"/);
  assert.throws(() => receiptKeyFromJwk('not a key'), /JSON object/);
});

test('GDPR-25: publicKeySet never contains d, from keys or from private JWKs', async () => {
  const [a, b] = await keys();
  for (const set of [publicKeySet([a, b]), publicKeySet([a.privateJwk, b.privateJwk])]) {
    assert.deepEqual(set, { keys: [a.publicJwk, b.publicJwk] });
    assert.equal(JSON.stringify(set).includes('"d"'), false);
  }
});

test('extractReceiptJws: a bare JWS is trimmed; text without a JWS gives null', async () => {
  const [key] = await keys();
  const jws = await signReceipt(buildReceiptClaims(input), key);
  assert.equal(extractReceiptJws(`\n  ${jws}\r\n`), jws);
  assert.equal(extractReceiptJws('hello'), null);
  assert.equal(extractReceiptJws(''), null);
});

test('extractReceiptJws: finds the base64 consent-receipt.jws attachment in a nested multipart .eml', async () => {
  const [key] = await keys();
  const jws = await signReceipt(buildReceiptClaims(input), key);
  const base64 = Buffer.from(jws).toString('base64').replace(/.{76}/g, '$&\r\n');
  const eml = [
    'From: Example Books <news@example.org>',
    'To: ann@example.com',
    'Subject: Your consent receipt',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed;',
    '\tboundary="----=_outer; 1"',
    '',
    'This is a multi-part message in MIME format.',
    '------=_outer; 1',
    'Content-Type: multipart/alternative; boundary=inner',
    '',
    '--inner',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Decoy: a.b.c',
    '--inner--',
    '------=_outer; 1',
    'Content-Type: application/jose; name="consent-receipt.jws"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="consent-receipt.jws"',
    '',
    base64,
    '------=_outer; 1--',
    '',
  ].join('\r\n');
  const found = extractReceiptJws(eml);
  assert.equal(found, jws);
  assert.equal((await verifyReceipt(found ?? '', publicKeySet([key]).keys)).ok, true);
  assert.equal(extractReceiptJws(eml.replace(base64, 'bm90IGEgSldT')), null);
});

test('Kantara CR 4.7: the human-readable receipt says what was agreed and how to verify it', () => {
  const text = renderReceiptText(buildReceiptClaims(input));
  for (const expected of [
    'Example Books Ltd',
    'New releases (topic "new-releases")',
    '  | Email me about new releases.\n  | I can unsubscribe at any time.',
    `ct_new_releases, version 3, SHA-256 ${input.consentText.sha256}`,
    'Consented at:     2025-03-01T10:00:00Z',
    'Confirmed at:     2025-03-01T10:04:31Z',
    'web_form_double_opt_in (form form_homepage)',
    `#42, hash ${input.ledgerEventHash}`,
    input.receiptId,
    'assent receipt verify consent-receipt.jws',
    'https://news.example.org/.well-known/assent-receipt-key.json',
  ]) {
    assert.ok(text.includes(expected), `missing ${JSON.stringify(expected)} in:\n${text}`);
  }
  assert.equal(text.includes('ann@example.com'), false);
});
