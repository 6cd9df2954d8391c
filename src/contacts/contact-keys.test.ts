/** Per-contact keys and sealing: sealed values open only with their key and AAD, and nonces and keys never repeat. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, seal } from '../shared/crypto.js';
import { createContactKey, openPersonal, sealPersonal, unwrapContactKey } from './contact-keys.js';

const master = [{ version: 2, key: Buffer.alloc(32, 9) }];

test('seal: open() reads it, with and without associated data; a wrong AAD or key fails', () => {
  const key = Buffer.alloc(32, 5);
  assert.equal(open(key, seal(key, 'héllo', 'aad'), 'aad'), 'héllo');
  assert.equal(open(key, seal(key, 'plain')), 'plain');
  assert.throws(() => open(key, seal(key, 'x', 'one'), 'two'));
  assert.throws(() => open(Buffer.alloc(32, 6), seal(key, 'x')));
});

test('keys and nonces come fresh for every call, across slab refills', () => {
  const nonces = new Set<string>();
  const keys = new Set<string>();
  const key = Buffer.alloc(32, 1);
  for (let i = 0; i < 12_000; i++) {
    nonces.add(Buffer.from(seal(key, 'x').slice('enc:v1:'.length), 'base64url').subarray(0, 12).toString('hex'));
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
