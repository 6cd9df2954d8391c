import type {} from '@fastify/csrf-protection';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RECEIPT_FILENAME } from '../../consent/index.js';
import { eraseContact, exportContactData } from '../../dsr/index.js';
import {
  centreReceipt,
  inspectUnsubscribe,
  loadCentre,
  objectToAll,
  oneClickChannel,
  parseMultipartFields,
  preferencesUrl,
  requestPreferenceLink,
  resolveLink,
  subscribeFromCentre,
  unsubscribeByLink,
  withdrawFromCentre,
  ONE_CLICK_BODY_LIMIT,
  type PreferenceDeps,
  type ResolvedLink,
} from '../../preferences/index.js';
import { pageContext } from './signup.routes.js';
import { messagePage, type PageContext } from './views.js';
import { centrePage, erasePage, linkRequestPage, unsubscribePage, unsubscribedPage, type CentreNotice } from './preference-views.js';

export interface PreferenceRouteOptions {
  deps: PreferenceDeps;
  defaultLocale: string;
  /** Per-IP limit of the forms here, as for the sign-up form. */
  limitPerIp: number;
}

type TokenRequest = FastifyRequest<{ Params: { token: string } }>;
type FieldsRequest = FastifyRequest<{ Params: { token: string }; Body: unknown }>;

/**
 * Unsubscribe links and the preference centre. Every route is one line here
 * with its protection visible. `/u/` and `/p/:token` links are their own
 * capability (a signed token): their forms need no cookie, so CSRF adds
 * nothing; their POSTs carry a per-IP limit, except the RFC 8058 one-click
 * POST, which mailbox providers send from a few shared addresses and must
 * never refuse. GETs change nothing, so link scanners are harmless.
 */
export async function registerPreferenceRoutes(app: FastifyInstance, options: PreferenceRouteOptions): Promise<void> {
  const pages = pageContext({ deps: options.deps, defaultLocale: options.defaultLocale, signupLimitPerIp: options.limitPerIp });
  const perIp = { rateLimit: { max: options.limitPerIp, timeWindow: '1 hour' } };
  const { deps } = options;

  await app.register(async (scope) => {
    // RFC 8058 §3.2 allows multipart/form-data; this scope alone parses it, and only small bodies.
    scope.addContentTypeParser('multipart/form-data', { parseAs: 'string', bodyLimit: ONE_CLICK_BODY_LIMIT }, (req, body, done) =>
      done(null, parseMultipartFields(String(body), String(req.headers['content-type'] ?? '')) ?? {}),
    );
    // A client that sends no or an odd content type still unsubscribes; the body is read as urlencoded text.
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: ONE_CLICK_BODY_LIMIT }, (_req, body, done) => done(null, String(body)));
    // Personal pages and capability URLs: never cached by a browser or proxy.
    scope.addHook('onSend', async (_req, reply) => {
      reply.header('cache-control', 'no-store');
    });

    scope.get<{ Params: { token: string } }>('/u/:token', showUnsubscribe); // reads only
    scope.post<{ Params: { token: string } }>('/u/:token', { bodyLimit: ONE_CLICK_BODY_LIMIT }, unsubscribe); // RFC 8058: no cookie, no CSRF, no limit
    scope.get('/p', showLinkRequest); // sets the CSRF cookie
    scope.post<{ Body: unknown }>('/p', { config: perIp, preHandler: scope.csrfProtection }, requestLink);
    scope.get<{ Params: { token: string } }>('/p/:token', showCentre);
    scope.get<{ Params: { token: string; eventId: string } }>('/p/:token/receipts/:eventId', downloadReceipt);
    scope.get<{ Params: { token: string } }>('/p/:token/export.json', exportData);
    scope.post<{ Params: { token: string } }>('/p/:token/withdraw', { config: perIp }, withdraw);
    scope.post<{ Params: { token: string } }>('/p/:token/object', { config: perIp }, object);
    scope.post<{ Params: { token: string } }>('/p/:token/subscribe', { config: perIp }, subscribe);
    scope.get<{ Params: { token: string } }>('/p/:token/erase', showErase); // a confirmation step, reads only
    scope.post<{ Params: { token: string } }>('/p/:token/erase', { config: perIp }, erase);
  });

  async function showUnsubscribe(req: TokenRequest, reply: FastifyReply) {
    const link = await inspectUnsubscribe(deps, req.params.token);
    if (!link) return invalidLink(pages(req), reply);
    const ctx = pages(req, link.contact.locale);
    const view = { action: `/u/${req.params.token}`, topicName: link.topic.name, preferencesUrl: preferencesUrl(deps, link.contact.id) };
    return reply.type('text/html').send(unsubscribePage(ctx, view));
  }

  /** 200 and a page, never a redirect or a cookie (RFC 8058 §3.2); idempotent. */
  async function unsubscribe(req: FieldsRequest, reply: FastifyReply) {
    const channel = oneClickChannel(fieldsOf(req.body));
    const done = await unsubscribeByLink(deps, { token: req.params.token, channel, ip: req.ip, userAgent: userAgentOf(req) });
    if (!done) return invalidLink(pages(req), reply);
    const ctx = pages(req, done.contact.locale);
    return reply.type('text/html').send(unsubscribedPage(ctx, { topicName: done.topic.name, preferencesUrl: preferencesUrl(deps, done.contact.id) }));
  }

  async function showLinkRequest(req: FastifyRequest, reply: FastifyReply) {
    return reply.type('text/html').send(linkRequestPage(pages(req), { csrfToken: reply.generateCsrf() }));
  }

  /** The same answer whether or not the address is known (ABU-04); only a malformed address is told so. */
  async function requestLink(req: FastifyRequest<{ Body: unknown }>, reply: FastifyReply) {
    const ctx = pages(req);
    const fields = fieldsOf(req.body);
    const address = typeof fields.email === 'string' ? fields.email : '';
    if (fields.website) return reply.type('text/html').send(messagePage(ctx, 'link.sent.title', 'link.sent.body'));
    const result = await requestPreferenceLink(deps, { address, locale: ctx.locale });
    if (result.kind === 'invalid') {
      const page = linkRequestPage(ctx, { csrfToken: reply.generateCsrf(), error: ctx.t('form.error.address'), address });
      return reply.code(422).type('text/html').send(page);
    }
    return reply.type('text/html').send(messagePage(ctx, 'link.sent.title', 'link.sent.body'));
  }

  async function showCentre(req: TokenRequest, reply: FastifyReply) {
    return withCentreLink(req, reply, (link, ctx) => renderCentre(reply, ctx, link));
  }

  async function downloadReceipt(req: FastifyRequest<{ Params: { token: string; eventId: string } }>, reply: FastifyReply) {
    return withCentreLink(req, reply, async (link, ctx) => {
      const jws = await centreReceipt(deps, link.contact, req.params.eventId.slice(0, 100));
      if (!jws) return invalidLink(ctx, reply);
      return reply.type('application/jose').header('content-disposition', `attachment; filename="${RECEIPT_FILENAME}"`).send(jws);
    });
  }

  /** GDPR Art. 15 and 20: everything held about the person, as JSON. */
  async function exportData(req: TokenRequest, reply: FastifyReply) {
    return withCentreLink(req, reply, async (link) => {
      const data = await exportContactData(deps, link.contact.id);
      return reply
        .type('application/json; charset=utf-8')
        .header('content-disposition', 'attachment; filename="my-data.json"')
        .send(JSON.stringify(data, null, 2));
    });
  }

  async function withdraw(req: FieldsRequest, reply: FastifyReply) {
    return withCentreLink(req, reply, async (link, ctx) => {
      const slug = fieldsOf(req.body).topic;
      const input = { contact: link.contact, topicSlug: typeof slug === 'string' ? slug : '', ip: req.ip, userAgent: userAgentOf(req) };
      const { outcome, topicName } = await withdrawFromCentre(deps, input);
      const notice: CentreNotice = outcome === 'withdrawn' && topicName ? { kind: 'withdrawn', topic: topicName } : { kind: 'unchanged' };
      return renderCentre(reply, ctx, link, notice);
    });
  }

  /** GDPR Art. 21(3): an objection to direct marketing is absolute and acts at once. */
  async function object(req: TokenRequest, reply: FastifyReply) {
    return withCentreLink(req, reply, async (link, ctx) => {
      await objectToAll(deps, { contactId: link.contact.id, channel: 'preference_centre', ip: req.ip, userAgent: userAgentOf(req) });
      return renderCentre(reply, ctx, link, { kind: 'objected' });
    });
  }

  async function subscribe(req: FieldsRequest, reply: FastifyReply) {
    return withCentreLink(req, reply, async (link, ctx) => {
      const topics = fieldsOf(req.body).topics;
      const topicSlugs = (Array.isArray(topics) ? topics : [topics]).filter((x): x is string => typeof x === 'string');
      const result = await subscribeFromCentre(deps, { contact: link.contact, topicSlugs, ip: req.ip, userAgent: userAgentOf(req), locale: ctx.locale });
      if (result.kind === 'invalid') return renderCentre(reply.code(422), ctx, link, { kind: 'subscribe_error' });
      return reply.type('text/html').send(messagePage(ctx, 'inbox.title', 'inbox.body'));
    });
  }

  async function showErase(req: TokenRequest, reply: FastifyReply) {
    return withCentreLink(req, reply, (_link, ctx) => reply.type('text/html').send(erasePage(ctx, { token: req.params.token })));
  }

  /** GDPR Art. 17: erased before the answer; the link names no one afterwards. */
  async function erase(req: TokenRequest, reply: FastifyReply) {
    return withCentreLink(req, reply, async (link, ctx) => {
      await eraseContact(deps, { contactId: link.contact.id, channel: 'preference_centre' });
      return reply.type('text/html').send(messagePage(ctx, 'erased.title', 'erased.body'));
    });
  }

  /** Runs `work` for a valid preference link; anything else gets the one neutral 404 page. */
  async function withCentreLink(
    req: FastifyRequest<{ Params: { token: string } }>,
    reply: FastifyReply,
    work: (link: ResolvedLink, ctx: PageContext) => Promise<FastifyReply> | FastifyReply,
  ) {
    const link = await resolveLink(deps, req.params.token, 'preferences');
    if (!link) return invalidLink(pages(req), reply);
    return work(link, pages(req, link.contact.locale));
  }

  async function renderCentre(reply: FastifyReply, ctx: PageContext, link: ResolvedLink, notice?: CentreNotice) {
    const token = (reply.request.params as { token: string }).token;
    const centre = await loadCentre(deps, link.contact);
    return reply.type('text/html').send(centrePage(ctx, { token, centre, ...(notice ? { notice } : {}) }));
  }
}

function invalidLink(ctx: PageContext, reply: FastifyReply) {
  return reply.code(404).type('text/html').send(messagePage(ctx, 'link.invalid.title', 'link.invalid.body'));
}

/** Form fields, from any of the parsers (urlencoded, multipart, or plain text read as urlencoded). */
function fieldsOf(body: unknown): Record<string, unknown> {
  if (typeof body === 'string') return Object.fromEntries(new URLSearchParams(body));
  return body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
}

function userAgentOf(req: FastifyRequest): string {
  return String(req.headers['user-agent'] ?? '').slice(0, 512);
}
