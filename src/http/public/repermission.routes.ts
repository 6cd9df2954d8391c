import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { confirmRepermission, formatDeadline, inspectRepermission, type RepermissionDeps } from '../../campaigns/index.js';
import { html } from '../../shared/html.js';
import { pageContext } from './signup.routes.js';
import { layout, messagePage, type PageContext } from './views.js';

export interface RepermissionRouteOptions {
  deps: RepermissionDeps;
  defaultLocale: string;
  /** Per-IP limit of the POST, as for the other public forms. */
  limitPerIp: number;
}

type TokenRequest = FastifyRequest<{ Params: { token: string }; Body: unknown }>;

/**
 * The re-permission confirm link (issue 5 point 4). The link is its own
 * capability (a signed token scoped to contact, topic and campaign), so the
 * form needs no CSRF cookie; the GET changes nothing (link scanners); every
 * failure, including a passed deadline, is the same neutral 404 page.
 */
export function registerRepermissionRoutes(app: FastifyInstance, options: RepermissionRouteOptions): void {
  const pages = pageContext({ deps: options.deps, defaultLocale: options.defaultLocale, signupLimitPerIp: options.limitPerIp });
  const perIp = { rateLimit: { max: options.limitPerIp, timeWindow: '1 hour' } };
  const { deps } = options;
  const noStore = { onSend: async (_req: FastifyRequest, reply: FastifyReply) => void reply.header('cache-control', 'no-store') };

  app.get<{ Params: { token: string } }>('/r/:token', { ...noStore }, show); // reads only
  app.post<{ Params: { token: string }; Body: unknown }>('/r/:token', { ...noStore, config: perIp }, confirm);

  async function show(req: FastifyRequest<{ Params: { token: string } }>, reply: FastifyReply) {
    const view = await inspectRepermission(deps, req.params.token);
    if (!view.valid) return invalidLink(pages(req), reply);
    const ctx = pages(req, view.locale);
    if (view.alreadyConfirmed) return reply.type('text/html').send(messagePage(ctx, 'repermission.already.title', 'repermission.already.body'));
    return reply.type('text/html').send(repermissionPage(ctx, { token: req.params.token, ...view }));
  }

  async function confirm(req: TokenRequest, reply: FastifyReply) {
    const version = Number(fieldsOf(req.body).text_version);
    const answer = await confirmRepermission(deps, {
      token: req.params.token,
      textVersion: version,
      ip: req.ip,
      userAgent: String(req.headers['user-agent'] ?? '').slice(0, 512),
    });
    if (answer.kind === 'invalid') return invalidLink(pages(req), reply);
    const ctx = pages(req, answer.locale);
    if (answer.kind === 'already_confirmed') return reply.type('text/html').send(messagePage(ctx, 'repermission.already.title', 'repermission.already.body'));
    return reply.type('text/html').send(messagePage(ctx, 'confirmed.title', 'confirmed.body'));
  }
}

/** The question, the exact consent text (its version goes back with the POST), the deadline, one button. */
function repermissionPage(ctx: PageContext, view: { token: string; topicName: string; text: { version: number; body: string }; deadline: Date }): string {
  const { t } = ctx;
  const body = html`
<p>${t('repermission.body', { topic: view.topicName })}</p>
<blockquote class="consent-text">${view.text.body}</blockquote>
<p>${t('repermission.deadline', { date: formatDeadline(view.deadline, ctx.locale) })}</p>
<form method="post" action="/r/${view.token}">
<input type="hidden" name="text_version" value="${view.text.version}">
<button type="submit">${t('repermission.button')}</button>
</form>`;
  return layout(ctx, t('repermission.title', { controller: ctx.controller }), body);
}

function invalidLink(ctx: PageContext, reply: FastifyReply) {
  return reply.code(404).type('text/html').send(messagePage(ctx, 'link.invalid.title', 'link.invalid.body'));
}

function fieldsOf(body: unknown): Record<string, unknown> {
  if (typeof body === 'string') return Object.fromEntries(new URLSearchParams(body));
  return body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
}
