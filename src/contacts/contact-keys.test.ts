/** Per-contact keys: the import's sealing opens like any sealed value, and its nonces and keys never repeat. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, seal } from '../shared/crypto.js';
import { createContactKey, openPersonal, sealFast, sealPersonal, unwrapContactKey } from './contact-keys.js';

const master = [{ version: 2, key: Buffer.alloc(32, 9) }];

test('sealFast writes what seal writes: open() reads it, with and without associated data, and a wrong AAD fails', () => {
  const key = Buffer.alloc(32, 5);
  assert.equal(open(key, sealFast(key, 'héllo', 'aad'), 'aad'), 'héllo');
  assert.equal(open(key, sealFast(key, 'plain')), 'plain');
  assert.throws(() => open(key, sealFast(key, 'x', 'one'), 'two'));
  assert.equal(sealFast(key, 'same').length, seal(key, 'same').length, 'the same self-describing format');
});

test('keys and nonces come fresh for every call, across slab refills', () => {
  const nonces = new Set<string>();
  const keys = new Set<string>();
  const key = Buffer.alloc(32, 1);
  for (let i = 0; i < 12_000; i++) {
    nonces.add(Buffer.from(sealFast(key, 'x').slice('enc:v1:'.length), 'base64url').subarray(0, 12).toString('hex'));
    keys.add(createContactKey(master, `c${i}`).key.toString('hex'));
  }
  assert.equal(nonces.size, 12_000);
  assert.equal(keys.size, 12_000);
});

test('a wrapped key opens only for its contact; sealed personal data opens with the key', () => {
  const { key, wrapped } = createContactKey(master, 'contact-1');
  assert.match(wrapped, /^2:enc:v1:/);
  assert.deepEqual(unwrapContactKey(master, 'contact-1', wrapped), key);
  assert.throws(() => unwrapContactKey(master, 'contact-2', wrapped));
  assert.deepEqual(openPersonal(key, sealPersonal(key, { address: 'a@example.org', ip: '192.0.2.1' })), { address: 'a@example.org', ip: '192.0.2.1' });
});
