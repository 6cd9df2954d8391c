import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { VersionedKey } from '../config/secrets.js';
import { signLinkToken, verifyLinkToken, type LinkClaims } from './link-token.js';

const key1: VersionedKey = { version: 1, key: Buffer.alloc(32, 0x11) };
const key2: VersionedKey = { version: 2, key: Buffer.alloc(32, 0x22) };
const foreign: VersionedKey = { version: 1, key: Buffer.alloc(32, 0x99) };

const full: LinkClaims = {
  purpose: 'unsubscribe',
  contactId: '0f8b6c1e-3a5d-4e7f-9b2c-1d0e8f7a6b5c',
  topicId: 'topic_newsletter',
  campaignId: '9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d',
};

/** Every character a token could plausibly be mutated to, URL-safe or not. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ %~';

describe('link tokens (EML-06, RFC 8058 §3.1)', () => {
  test('EML-06: a token round-trips its claims and is compact and URL-safe', () => {
    const token = signLinkToken([key1], full);
    assert.match(token, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    // 1 flags byte + 2 x 17 UUID bytes + 17 for the short topic id -> 70 base64url chars.
    assert.equal(token.length, 'v1.'.length + 70 + 1 + 22);
    assert.deepEqual(verifyLinkToken([key1], token, 'unsubscribe'), { ok: true, claims: full });
  });

  test('EML-06: optional ids stay absent, preferences purpose round-trips, non-ASCII ids survive', () => {
    const bare: LinkClaims = { purpose: 'preferences', contactId: 'c_01HZX3K8Q2M4' };
    assert.deepEqual(verifyLinkToken([key1], signLinkToken([key1], bare), 'preferences'), { ok: true, claims: bare });
    const odd: LinkClaims = { purpose: 'unsubscribe', contactId: 'KONTAKT-ÄÖ-ю', campaignId: 'C' };
    assert.deepEqual(verifyLinkToken([key1], signLinkToken([key1], odd), 'unsubscribe'), { ok: true, claims: odd });
  });

  test('EML-06: the payload holds the ids and nothing else (no address, no PII)', () => {
    const token = signLinkToken([key1], { purpose: 'preferences', contactId: 'c_42' });
    const payload = Buffer.from(token.split('.')[1] as string, 'base64url');
    assert.deepEqual([...payload], [0b10, 4, ...Buffer.from('c_42')]);
  });

  test('EML-06: a token for one purpose does not work for the other', () => {
    const token = signLinkToken([key1], full);
    assert.deepEqual(verifyLinkToken([key1], token, 'preferences'), { ok: false });
    const prefs = signLinkToken([key1], { ...full, purpose: 'preferences' });
    assert.deepEqual(verifyLinkToken([key1], prefs, 'unsubscribe'), { ok: false });
  });

  test('EML-06: every single-character change of a token fails', () => {
    const token = signLinkToken([key2, key1], full);
    let tried = 0;
    for (let i = 0; i < token.length; i++) {
      for (const c of ALPHABET) {
        if (c === token[i]) continue;
        const changed = token.slice(0, i) + c + token.slice(i + 1);
        assert.deepEqual(verifyLinkToken([key2, key1], changed, 'unsubscribe'), { ok: false }, `position ${i} -> ${c}`);
        tried++;
      }
      // deleting or doubling a character is a change too
      assert.deepEqual(verifyLinkToken([key2, key1], token.slice(0, i) + token.slice(i + 1), 'unsubscribe'), { ok: false });
      assert.deepEqual(verifyLinkToken([key2, key1], token.slice(0, i + 1) + token.slice(i), 'unsubscribe'), { ok: false });
    }
    assert.equal(tried, token.length * (ALPHABET.length - 1));
  });

  test('EML-06: every truncation and every extension fails', () => {
    const token = signLinkToken([key1], full);
    for (let n = 0; n < token.length; n++) {
      assert.deepEqual(verifyLinkToken([key1], token.slice(0, n), 'unsubscribe'), { ok: false }, `first ${n} chars`);
    }
    for (const tail of ['A', '.', '.x', '=', ' ', '\n', '%00']) {
      assert.deepEqual(verifyLinkToken([key1], token + tail, 'unsubscribe'), { ok: false });
    }
  });

  test('EML-06: a token signed by a key that is not configured fails, even under a known version', () => {
    const token = signLinkToken([foreign], full);
    assert.ok(token.startsWith('v1.'));
    assert.deepEqual(verifyLinkToken([key1], token, 'unsubscribe'), { ok: false });
    assert.deepEqual(verifyLinkToken([key2, key1], token, 'unsubscribe'), { ok: false });
    assert.deepEqual(verifyLinkToken([], signLinkToken([key1], full), 'unsubscribe'), { ok: false });
  });

  test('EML-06: a forged payload under a real MAC, or a MAC moved to another version, fails', () => {
    const a = signLinkToken([key1], full);
    const b = signLinkToken([key1], { ...full, contactId: 'someone-else' });
    const [, payloadB] = b.split('.');
    const [, , macA] = a.split('.');
    assert.deepEqual(verifyLinkToken([key1], `v1.${payloadB}.${macA}`, 'unsubscribe'), { ok: false });
    assert.deepEqual(verifyLinkToken([key2, { version: 3, key: key1.key }], `v3${a.slice(2)}`, 'unsubscribe'), { ok: false });
  });

  test('EML-06: rotation — the newest key signs, older keys still verify', () => {
    const old = signLinkToken([key1], full);
    const rotated = [key2, key1];
    const fresh = signLinkToken(rotated, full);
    assert.ok(fresh.startsWith('v2.'));
    assert.deepEqual(verifyLinkToken(rotated, old, 'unsubscribe'), { ok: true, claims: full });
    assert.deepEqual(verifyLinkToken(rotated, fresh, 'unsubscribe'), { ok: true, claims: full });
    // a key that was removed from configuration no longer verifies what it signed
    assert.deepEqual(verifyLinkToken([key2], old, 'unsubscribe'), { ok: false });
    assert.deepEqual(verifyLinkToken([key1], fresh, 'unsubscribe'), { ok: false });
  });

  test('EML-06: garbage never throws', () => {
    for (const junk of [undefined, null, 42, {}, '', '.', '..', 'v', 'v1', 'v1..', 'v1.AA.', 'v01.AA.AA', 'x'.repeat(5000)]) {
      assert.deepEqual(verifyLinkToken([key1], junk, 'unsubscribe'), { ok: false });
    }
  });

  test('signing refuses programmer errors: no key, empty or oversized ids', () => {
    assert.throws(() => signLinkToken([], full), TypeError);
    assert.throws(() => signLinkToken([key1], { ...full, contactId: '' }), TypeError);
    assert.throws(() => signLinkToken([key1], { ...full, topicId: 'x'.repeat(201) }), TypeError);
    assert.throws(() => signLinkToken([key1], { ...full, contactId: '\ud800' }), TypeError);
  });
});
