import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.js';
import { loadSecrets } from './secrets.js';
import { isAppError } from '../shared/errors.js';

const cwd = mkdtempSync(join(tmpdir(), 'assent-config-'));

test('defaults: SQLite in ./data, port 8080, the outbox, public URL from the port', () => {
  const config = loadConfig({}, { cwd });
  assert.equal(config.dataDir, join(cwd, 'data'));
  assert.equal(config.databaseUrl, join(cwd, 'data', 'assent.sqlite'));
  assert.equal(config.port, 8080);
  assert.equal(config.publicUrl, 'http://localhost:8080');
  assert.equal(config.smtpUrl, undefined);
  assert.equal(config.outboxDir, join(cwd, 'data', 'outbox'));
  assert.equal(config.confirmationTtlDays, 7);
  assert.ok(Object.isFrozen(config));
});

test('values from the environment; the public URL follows the port and loses a trailing slash', () => {
  const config = loadConfig(
    { ASSENT_PORT: '9090', ASSENT_DATABASE_URL: 'postgres://u@db/assent', ASSENT_SMTP_URL: 'smtp://relay:2525' },
    { cwd },
  );
  assert.equal(config.publicUrl, 'http://localhost:9090');
  assert.equal(config.databaseUrl, 'postgres://u@db/assent');
  assert.equal(config.smtpUrl, 'smtp://relay:2525');
  assert.equal(loadConfig({ ASSENT_PUBLIC_URL: 'https://news.example.org/' }, { cwd }).publicUrl, 'https://news.example.org');
});

for (const [key, value] of [
  ['ASSENT_PORT', 'eighty'],
  ['ASSENT_PORT', '70000'],
  ['ASSENT_PUBLIC_URL', 'ftp://x'],
  ['ASSENT_SMTP_URL', 'http://relay'],
  ['ASSENT_CONFIRMATION_TTL_DAYS', '0'],
  ['ASSENT_LOG_LEVEL', 'loud'],
  ['ASSENT_MASTER_KEY', 'short'],
] as const) {
  test(`a bad ${key}=${value} stops start-up with a message naming the key`, () => {
    assert.throws(
      () => loadConfig({ [key]: value }, { cwd }),
      (error: unknown) => isAppError(error, 'config_invalid') && error.message.includes(key),
    );
  });
}

test('a config file supplies values; the environment wins over it', () => {
  const file = join(cwd, 'assent.json');
  writeFileSync(file, JSON.stringify({ ASSENT_PORT: 7000, ASSENT_CONTROLLER_NAME: 'From File' }));
  const config = loadConfig({ ASSENT_CONFIG_FILE: file, ASSENT_PORT: '7001' }, { cwd });
  assert.equal(config.port, 7001);
  assert.equal(config.controller.name, 'From File');
  writeFileSync(file, '[1,2]');
  assert.throws(() => loadConfig({ ASSENT_CONFIG_FILE: file }, { cwd }), /ASSENT_CONFIG_FILE/);
});

test('secrets are generated once into the data dir with mode 0600 and reused', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'assent-secrets-'));
  const config = loadConfig({ ASSENT_DATA_DIR: dataDir }, { cwd });
  const first = await loadSecrets(config);
  const second = await loadSecrets(config);
  for (const file of ['link-keys.json', 'suppression-keys.json', 'master-keys.json', 'receipt-keys.json']) {
    assert.equal(statSync(join(dataDir, 'secrets', file)).mode & 0o777, 0o600, file);
  }
  assert.equal(statSync(join(dataDir, 'secrets')).mode & 0o777, 0o700);
  assert.deepEqual(first.masterKeys, second.masterKeys);
  assert.equal(first.receiptKeys[0]!.kid, second.receiptKeys[0]!.kid);
  assert.equal(first.masterKeys[0]!.key.length, 32);
  assert.ok(!readFileSync(join(dataDir, 'secrets', 'receipt-keys.json'), 'utf8').includes('"d": ""'));
});

test('secrets given in configuration are used instead of files', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'assent-secrets-'));
  const key = Buffer.alloc(32, 7).toString('base64');
  const config = loadConfig({ ASSENT_DATA_DIR: dataDir, ASSENT_MASTER_KEY: key }, { cwd });
  const secrets = await loadSecrets(config);
  assert.deepEqual(secrets.masterKeys, [{ version: 1, key: Buffer.alloc(32, 7) }]);
  const bad = loadConfig({ ASSENT_DATA_DIR: dataDir, ASSENT_RECEIPT_KEY: '{"kty":"oct","k":"abc"}' }, { cwd });
  await assert.rejects(loadSecrets(bad), /ASSENT_RECEIPT_KEY/);
});
