/**
 * Secrets: generated on first start into <data dir>/secrets with mode 0600,
 * unless given in configuration. Each kind is a list of keys, newest first:
 * the newest signs, every one verifies, so a key can be rotated without
 * breaking links already sent or suppression entries already stored.
 */
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AppError } from '../shared/errors.js';
import { generateReceiptKey, receiptKeyFromJwk, type ReceiptPrivateKey } from '../consent/receipt-keys.js';
import type { Config } from './config.js';

export interface VersionedKey {
  version: number;
  key: Buffer;
}

export interface Secrets {
  /** HMAC keys for signed links (unsubscribe, preferences). */
  linkKeys: VersionedKey[];
  /** HMAC keys for suppression entries; never re-keyed, every version checked. */
  suppressionKeys: VersionedKey[];
  /** Wraps each contact's evidence key (crypto-shredding on erasure). */
  masterKeys: VersionedKey[];
  /** Ed25519 keys that sign consent receipts, newest first. */
  receiptKeys: ReceiptPrivateKey[];
}

interface StoredKey {
  version: number;
  key: string;
}

export async function loadSecrets(config: Config): Promise<Secrets> {
  const dir = join(config.dataDir, 'secrets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return {
    linkKeys: symmetric(dir, 'link-keys.json', config.secrets.linkKey, 'ASSENT_LINK_KEY'),
    suppressionKeys: symmetric(dir, 'suppression-keys.json', config.secrets.suppressionKey, 'ASSENT_SUPPRESSION_KEY'),
    masterKeys: symmetric(dir, 'master-keys.json', config.secrets.masterKey, 'ASSENT_MASTER_KEY'),
    receiptKeys: await receiptKeys(dir, config.secrets.receiptKey),
  };
}

function symmetric(dir: string, file: string, given: string | undefined, envKey: string): VersionedKey[] {
  if (given !== undefined) return [{ version: 1, key: decodeGiven(given, envKey) }];
  const path = join(dir, file);
  if (!existsSync(path)) writeSecret(path, [{ version: 1, key: randomBytes(32).toString('base64') }]);
  const stored = readJson(path) as StoredKey[];
  if (!Array.isArray(stored) || stored.length === 0) throw invalidFile(path);
  return stored
    .map((s) => ({ version: s.version, key: Buffer.from(s.key, 'base64') }))
    .sort((a, b) => b.version - a.version);
}

async function receiptKeys(dir: string, given: string | undefined): Promise<ReceiptPrivateKey[]> {
  if (given !== undefined) {
    try {
      return [receiptKeyFromJwk(JSON.parse(given))];
    } catch (error) {
      throw new AppError('config_invalid', `invalid configuration ASSENT_RECEIPT_KEY: ${(error as Error).message}`, {
        key: 'ASSENT_RECEIPT_KEY',
      });
    }
  }
  const path = join(dir, 'receipt-keys.json');
  if (!existsSync(path)) writeSecret(path, [(await generateReceiptKey()).privateJwk]);
  const stored = readJson(path);
  if (!Array.isArray(stored) || stored.length === 0) throw invalidFile(path);
  return stored.map((jwk) => receiptKeyFromJwk(jwk));
}

function decodeGiven(value: string, envKey: string): Buffer {
  const key = Buffer.from(value, 'base64');
  if (key.length < 32) {
    throw new AppError('config_invalid', `invalid configuration ${envKey}: must be at least 32 bytes, base64-encoded`, { key: envKey });
  }
  return key;
}

function writeSecret(path: string, value: unknown): void {
  // Written whole to a private temporary file, then linked into place: a
  // second process starting at the same moment either wins the link or
  // finds the complete file, never an empty one; nothing is overwritten.
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temp);
  }
  chmodSync(path, 0o600);
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw invalidFile(path);
  }
}

function invalidFile(path: string): AppError {
  return new AppError('config_invalid', `invalid secret file ${path}: expected a non-empty JSON list of keys`);
}
