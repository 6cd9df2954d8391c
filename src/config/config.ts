/**
 * Configuration: read once from the environment (and an optional JSON file
 * named by ASSENT_CONFIG_FILE, whose keys are the same ASSENT_* names),
 * validated, and frozen. Nothing else in Assent reads process.env.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { AppError } from '../shared/errors.js';

/** The languages of the message catalogues (src/shared/messages); the default must be one of them. */
const locales = ['en', 'bg', 'de', 'fr'] as const;

const schema = z.object({
  ASSENT_DATA_DIR: z.string().min(1).default('./data'),
  ASSENT_DATABASE_URL: z.string().min(1).optional(),
  ASSENT_HOST: z.string().min(1).default('0.0.0.0'),
  ASSENT_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  ASSENT_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  ASSENT_SMTP_URL: z
    .string()
    .refine((v) => v.split(',').every((u) => isSmtpUrl(u.trim())), 'each comma-separated relay must be an smtp:// or smtps:// URL')
    .optional(),
  // 20 per relay: what Postfix itself opens to one destination (default_destination_concurrency_limit).
  ASSENT_SMTP_CONNECTIONS: z.coerce.number().int().min(1).max(200).default(20),
  ASSENT_WORKER: z.enum(['true', 'false']).default('true'),
  ASSENT_WORKER_BATCH: z.coerce.number().int().min(1).max(10000).default(500),
  // Enough to keep every connection pipelining while DKIM signatures are computed on other threads.
  ASSENT_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(100),
  ASSENT_WORKER_LEASE_SECONDS: z.coerce.number().int().min(10).max(86400).default(300),
  ASSENT_SEND_PER_SECOND: z.coerce.number().positive().optional(),
  ASSENT_SEND_PER_HOUR: z.coerce.number().positive().optional(),
  ASSENT_DOMAIN_PER_MINUTE: z.coerce.number().positive().optional(),
  ASSENT_DOMAIN_LIMITS: z
    .string()
    .regex(/^[^=,\s]+=\d+(,[^=,\s]+=\d+)*$/, 'use group=N,domain=N (per minute)')
    .optional(),
  ASSENT_DKIM_DOMAIN: z.string().min(3).optional(),
  ASSENT_DKIM_SELECTOR: z.string().regex(/^[A-Za-z0-9._-]+$/).optional(),
  ASSENT_DKIM_KEY_FILE: z.string().min(1).optional(),
  ASSENT_RETURN_PATH: z.email().optional(),
  ASSENT_UNSUBSCRIBE_MAILTO: z.email().optional(),
  ASSENT_MAIL_FROM: z.string().min(3).optional(),
  ASSENT_CONTROLLER_NAME: z.string().min(1).default('Assent'),
  ASSENT_CONTROLLER_EMAIL: z.email().optional(),
  ASSENT_CONTROLLER_ADDRESS: z.string().min(1).optional(),
  ASSENT_PRIVACY_POLICY_URL: z.url().optional(),
  ASSENT_JURISDICTION: z.string().min(2).default('EU'),
  ASSENT_DEFAULT_LOCALE: z.enum(locales).default('en'),
  ASSENT_CONFIRMATION_TTL_DAYS: z.coerce.number().int().min(1).max(90).default(7),
  ASSENT_SIGNUP_LIMIT_PER_IP: z.coerce.number().int().min(1).default(20),
  ASSENT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ASSENT_TRUST_PROXY: z.enum(['true', 'false']).default('false'),
  ASSENT_LINK_KEY: z.string().min(32).optional(),
  ASSENT_RECEIPT_KEY: z.string().min(10).optional(),
  ASSENT_SUPPRESSION_KEY: z.string().min(32).optional(),
  ASSENT_MASTER_KEY: z.string().min(32).optional(),
});

export interface Config {
  dataDir: string;
  databaseUrl: string;
  host: string;
  port: number;
  publicUrl: string;
  smtpUrl: string | undefined;
  /** Relays parsed from ASSENT_SMTP_URL (comma-separated; `?connections=N&weight=W` per relay). */
  relays: { url: string; connections: number; weight: number }[];
  worker: { enabled: boolean; batchSize: number; concurrency: number; leaseMs: number };
  throttle: { perSecond?: number; perHour?: number; perDomainPerMinute?: number; domainLimits?: Record<string, number> };
  dkim: { domain: string; selector: string; privateKeyPem: string } | undefined;
  returnPath: string | undefined;
  unsubscribeMailto: string | undefined;
  /** Right-hand side of Message-IDs and the List-Id namespace. */
  mailDomain: string;
  outboxDir: string;
  mailFrom: string;
  controller: { name: string; email: string; address: string | undefined; policyUrl: string };
  jurisdiction: string;
  defaultLocale: (typeof locales)[number];
  confirmationTtlDays: number;
  signupLimitPerIp: number;
  logLevel: string;
  trustProxy: boolean;
  /** Secrets given in configuration; missing ones come from the data dir. */
  secrets: { linkKey?: string; receiptKey?: string; suppressionKey?: string; masterKey?: string };
}

export type Environment = Record<string, string | undefined>;

/** Reads and validates configuration; a bad value throws naming its key. */
export function loadConfig(env: Environment, options: { cwd: string }): Readonly<Config> {
  const merged = { ...readConfigFile(env.ASSENT_CONFIG_FILE, options.cwd), ...pickAssent(env) };
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? 'configuration');
    throw new AppError('config_invalid', `invalid configuration ${key}: ${issue.message}`, { key });
  }
  return Object.freeze(toConfig(parsed.data, options.cwd));
}

function toConfig(v: z.infer<typeof schema>, cwd: string): Config {
  const dataDir = isAbsolute(v.ASSENT_DATA_DIR) ? v.ASSENT_DATA_DIR : resolve(cwd, v.ASSENT_DATA_DIR);
  const publicUrl = (v.ASSENT_PUBLIC_URL ?? `http://localhost:${v.ASSENT_PORT}`).replace(/\/+$/, '');
  const host = new URL(publicUrl).hostname;
  const mailDomain = host.includes('.') ? host : 'localhost.localdomain';
  return {
    dataDir,
    databaseUrl: v.ASSENT_DATABASE_URL ?? join(dataDir, 'assent.sqlite'),
    host: v.ASSENT_HOST,
    port: v.ASSENT_PORT,
    publicUrl,
    smtpUrl: v.ASSENT_SMTP_URL,
    relays: parseRelays(v.ASSENT_SMTP_URL, v.ASSENT_SMTP_CONNECTIONS),
    worker: {
      enabled: v.ASSENT_WORKER === 'true',
      batchSize: v.ASSENT_WORKER_BATCH,
      concurrency: v.ASSENT_WORKER_CONCURRENCY,
      leaseMs: v.ASSENT_WORKER_LEASE_SECONDS * 1000,
    },
    throttle: {
      perSecond: v.ASSENT_SEND_PER_SECOND,
      perHour: v.ASSENT_SEND_PER_HOUR,
      perDomainPerMinute: v.ASSENT_DOMAIN_PER_MINUTE,
      domainLimits: v.ASSENT_DOMAIN_LIMITS
        ? Object.fromEntries(v.ASSENT_DOMAIN_LIMITS.split(',').map((pair) => [pair.split('=')[0]!, Number(pair.split('=')[1])]))
        : undefined,
    },
    dkim: readDkim(v, cwd),
    returnPath: v.ASSENT_RETURN_PATH,
    unsubscribeMailto: v.ASSENT_UNSUBSCRIBE_MAILTO,
    mailDomain,
    outboxDir: join(dataDir, 'outbox'),
    mailFrom: v.ASSENT_MAIL_FROM ?? `${v.ASSENT_CONTROLLER_NAME} <no-reply@${mailDomain}>`,
    controller: {
      name: v.ASSENT_CONTROLLER_NAME,
      email: v.ASSENT_CONTROLLER_EMAIL ?? `privacy@${mailDomain}`,
      address: v.ASSENT_CONTROLLER_ADDRESS,
      policyUrl: v.ASSENT_PRIVACY_POLICY_URL ?? `${publicUrl}/privacy`,
    },
    jurisdiction: v.ASSENT_JURISDICTION,
    defaultLocale: v.ASSENT_DEFAULT_LOCALE,
    confirmationTtlDays: v.ASSENT_CONFIRMATION_TTL_DAYS,
    signupLimitPerIp: v.ASSENT_SIGNUP_LIMIT_PER_IP,
    logLevel: v.ASSENT_LOG_LEVEL,
    trustProxy: v.ASSENT_TRUST_PROXY === 'true',
    secrets: {
      linkKey: v.ASSENT_LINK_KEY,
      receiptKey: v.ASSENT_RECEIPT_KEY,
      suppressionKey: v.ASSENT_SUPPRESSION_KEY,
      masterKey: v.ASSENT_MASTER_KEY,
    },
  };
}

function isSmtpUrl(value: string): boolean {
  try {
    return /^smtps?:$/.test(new URL(value).protocol);
  } catch {
    return false;
  }
}

function parseRelays(value: string | undefined, connections: number): Config['relays'] {
  if (!value) return [];
  return value.split(',').map((raw) => {
    const url = new URL(raw.trim());
    const relay = {
      connections: Number(url.searchParams.get('connections') ?? connections),
      weight: Number(url.searchParams.get('weight') ?? 1),
    };
    url.searchParams.delete('connections');
    url.searchParams.delete('weight');
    if (!(relay.connections >= 1) || !(relay.weight > 0)) {
      throw new AppError('config_invalid', 'invalid configuration ASSENT_SMTP_URL: connections and weight must be positive numbers', {
        key: 'ASSENT_SMTP_URL',
      });
    }
    return { url: url.toString(), ...relay };
  });
}

function readDkim(v: z.infer<typeof schema>, cwd: string): Config['dkim'] {
  const given = [v.ASSENT_DKIM_DOMAIN, v.ASSENT_DKIM_SELECTOR, v.ASSENT_DKIM_KEY_FILE].filter((x) => x !== undefined);
  if (given.length === 0) return undefined;
  if (given.length !== 3) {
    throw new AppError('config_invalid', 'invalid configuration ASSENT_DKIM_KEY_FILE: DKIM needs ASSENT_DKIM_DOMAIN, ASSENT_DKIM_SELECTOR and ASSENT_DKIM_KEY_FILE together', {
      key: 'ASSENT_DKIM_KEY_FILE',
    });
  }
  try {
    return {
      domain: v.ASSENT_DKIM_DOMAIN!,
      selector: v.ASSENT_DKIM_SELECTOR!,
      privateKeyPem: readFileSync(resolve(cwd, v.ASSENT_DKIM_KEY_FILE!), 'utf8'),
    };
  } catch {
    throw new AppError('config_invalid', `invalid configuration ASSENT_DKIM_KEY_FILE: cannot read ${v.ASSENT_DKIM_KEY_FILE}`, {
      key: 'ASSENT_DKIM_KEY_FILE',
    });
  }
}

function pickAssent(env: Environment): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith('ASSENT_') && key !== 'ASSENT_CONFIG_FILE' && value !== undefined && value !== '') out[key] = value;
  }
  return out;
}

function readConfigFile(file: string | undefined, cwd: string): Record<string, unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(resolve(cwd, file), 'utf8');
  } catch (error) {
    throw new AppError('config_invalid', `invalid configuration ASSENT_CONFIG_FILE: cannot read ${file}`, {
      key: 'ASSENT_CONFIG_FILE',
      cause: String(error),
    });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v : String(v)]));
  } catch (error) {
    throw new AppError('config_invalid', `invalid configuration ASSENT_CONFIG_FILE: ${file} is not a JSON object of ASSENT_* keys`, {
      key: 'ASSENT_CONFIG_FILE',
    });
  }
}
