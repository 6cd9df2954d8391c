/**
 * In-process HTTP helpers for the public sign-up pages: fetch a form with
 * its CSRF token and cookie, submit it as a browser would, read the link out
 * of a confirmation mail, and count what a request wrote.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Db } from '../../src/storage/index.js';
import type { OutgoingMessage } from '../../src/delivery/transport.js';

export interface ClientOptions {
  /** The client's address as the socket reports it (inject defaults to 127.0.0.1). */
  remoteAddress?: string;
  headers?: Record<string, string>;
}

export interface LoadedPage {
  response: LightMyRequestResponse;
  /** The hidden _csrf field of the form. */
  csrf: string;
  /** `_csrf=…`, the secret cookie that goes with the token. */
  cookie: string;
}

/** GET /f/:slug, returning the CSRF token from the form and the cookie that pairs with it. */
export async function getForm(app: FastifyInstance, slug: string, options: ClientOptions = {}): Promise<LoadedPage> {
  const response = await app.inject({
    method: 'GET',
    url: `/f/${slug}`,
    ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
    headers: options.headers ?? {},
  });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(response.body)?.[1] ?? '';
  const cookie = response.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  return { response, csrf, cookie };
}

export type FormFields = Record<string, string | string[]>;

/** application/x-www-form-urlencoded, a repeated name for each value of a list (as browsers send checkboxes). */
export function encodeForm(fields: FormFields): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) params.append(name, v);
  }
  return params.toString();
}

/**
 * POST /f/:slug. By default it first loads the form, as a browser does, and
 * sends its CSRF token and cookie; `csrf: false` sends neither, and a
 * `session` reuses a page already loaded.
 */
export async function submitForm(
  app: FastifyInstance,
  slug: string,
  fields: FormFields,
  options: ClientOptions & { csrf?: false; session?: { csrf: string; cookie: string } } = {},
): Promise<LightMyRequestResponse> {
  const session = options.csrf === false ? undefined : (options.session ?? (await getForm(app, slug, options)));
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    ...(session ? { cookie: session.cookie } : {}),
    ...options.headers,
  };
  return app.inject({
    method: 'POST',
    url: `/f/${slug}`,
    ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
    headers,
    payload: encodeForm(session ? { ...fields, _csrf: session.csrf } : fields),
  });
}

/** GET or POST on a confirmation link. */
export async function openConfirm(
  app: FastifyInstance,
  method: 'GET' | 'POST',
  token: string,
  options: ClientOptions = {},
): Promise<LightMyRequestResponse> {
  return app.inject({
    method,
    url: `/confirm/${token}`,
    ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
    headers: options.headers ?? {},
  });
}

/** RFC 2045 §6.7 quoted-printable: soft line breaks joined, =XX octets decoded as UTF-8. */
export function decodeQuotedPrintable(text: string): string {
  const joined = text.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < joined.length; i += 1) {
    const hex = /^=([0-9A-Fa-f]{2})/.exec(joined.slice(i, i + 3));
    if (hex) {
      bytes.push(parseInt(hex[1]!, 16));
      i += 2;
    } else bytes.push(...Buffer.from(joined[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The whole message with quoted-printable undone, for searching its text. */
export function decodedMessage(message: OutgoingMessage | Buffer | string): string {
  const raw = typeof message === 'string' ? message : Buffer.isBuffer(message) ? message.toString('utf8') : message.raw.toString('utf8');
  return decodeQuotedPrintable(raw);
}

/** The token of the one /confirm/ link in a confirmation mail (the same link in text and HTML parts). */
export function confirmLinkFrom(message: OutgoingMessage | Buffer | string): { url: string; token: string } {
  const links = [...decodedMessage(message).matchAll(/https?:\/\/[^\s"<>]*\/confirm\/([A-Za-z0-9_-]+)/g)];
  const distinct = [...new Set(links.map((m) => m[0]))];
  if (distinct.length !== 1) throw new Error(`expected one confirmation link, found ${distinct.length}`);
  return { url: distinct[0]!, token: links[0]![1]! };
}

/** A header field of a raw message, unfolded (RFC 5322 §2.2.3); undefined when absent. */
export function headerOf(message: OutgoingMessage, name: string): string | undefined {
  const raw = message.raw.toString('utf8');
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

export interface RecordCounts {
  contacts: number;
  contact_keys: number;
  consent_events: number;
  consent_states: number;
  confirmation_tokens: number;
  used_tokens: number;
  suppressions: number;
  mail_log: number;
}

/** How many rows each table that a sign-up or confirmation writes holds now. */
export async function recordCounts(db: Db): Promise<RecordCounts> {
  const count = async (table: 'contacts' | 'contact_keys' | 'consent_events' | 'consent_states' | 'confirmation_tokens' | 'suppressions' | 'mail_log') =>
    Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const used = await db
    .selectFrom('confirmation_tokens')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('used_at', 'is not', null)
    .executeTakeFirstOrThrow();
  return {
    contacts: await count('contacts'),
    contact_keys: await count('contact_keys'),
    consent_events: await count('consent_events'),
    consent_states: await count('consent_states'),
    confirmation_tokens: await count('confirmation_tokens'),
    used_tokens: Number(used.n),
    suppressions: await count('suppressions'),
    mail_log: await count('mail_log'),
  };
}

