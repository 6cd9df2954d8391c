/**
 * buildApp(deps): the HTTP surface without listen(), so tests use inject().
 * Public routes only: there are no admin HTTP routes yet (operators use the
 * CLI), and nothing that changes data is reachable without a form token or a
 * capability link of its own.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import { sql } from 'kysely';
import { publicKeySet, RECEIPT_KEY_PATH } from '../consent/index.js';
import type { SignupDeps } from '../forms/index.js';
import { messagePage, stylesheet } from './public/views.js';
import { pageContext, registerSignupRoutes } from './public/signup.routes.js';
import { registerPreferenceRoutes } from './public/preferences.routes.js';
import { registerRepermissionRoutes } from './public/repermission.routes.js';
import type { VersionedKey } from '../config/secrets.js';
import { redactUrl, statusFor } from './error-mapper.js';

export interface AppDeps {
  signup: SignupDeps;
  /** Keys of the signed unsubscribe and preference links, newest first. */
  linkKeys: VersionedKey[];
  logger: FastifyBaseLogger;
  defaultLocale: string;
  signupLimitPerIp: number;
  trustProxy: boolean;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    // Request logging is our own (below): the default one writes client IPs and raw URLs with tokens.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: deps.trustProxy,
    bodyLimit: 64 * 1024,
  });
  const secureCookies = deps.signup.settings.publicUrl.startsWith('https:');
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        'default-src': ["'self'"],
        'form-action': ["'self'"],
        'script-src': ["'none'"],
        // Only on HTTPS: served over plain HTTP (a LAN host, a first `npm start`),
        // the upgrade sends the stylesheet and the form POST to https:// and the
        // browser blocks the sign-up (form-action 'self' no longer matches).
        'upgrade-insecure-requests': secureCookies ? [] : null,
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
  });
  await app.register(formbody);
  await app.register(cookie);
  await app.register(csrf, {
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'lax', secure: secureCookies, signed: false },
  });
  await app.register(rateLimit, { global: false, errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, code: 'rate_limited', ttl: ctx.ttl }) });

  const routeOptions = { deps: deps.signup, defaultLocale: deps.defaultLocale, signupLimitPerIp: deps.signupLimitPerIp };
  const pages = pageContext(routeOptions);

  app.addHook('onResponse', async (req, reply) => {
    req.log.info({ method: req.method, url: redactUrl(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.setErrorHandler(async (error, req, reply) => {
    const ctx = pages(req);
    const code = (error as { code?: string }).code ?? '';
    if (code.startsWith('FST_CSRF')) {
      return reply.code(403).type('text/html').send(messagePage(ctx, 'form.error.title', 'form.error.csrf'));
    }
    const status = statusFor(error);
    if (status === 429) return reply.code(429).type('text/html').send(messagePage(ctx, 'form.error.title', 'form.error.rate'));
    if (status >= 500) req.log.error({ err: error, url: redactUrl(req.url) }, 'request failed');
    // Never a stack trace or a hint of internals on a public page.
    return reply.code(status).type('text/html').send(messagePage(ctx, 'error.title', 'error.body'));
  });
  app.setNotFoundHandler(async (req, reply) => reply.code(404).type('text/html').send(messagePage(pages(req), 'form.not_found.title', 'form.not_found.body')));

  app.get('/healthz', async (_req, reply) => {
    try {
      await sql`select 1`.execute(deps.signup.db);
      return reply.send({ status: 'ok' });
    } catch {
      return reply.code(503).send({ status: 'unavailable' });
    }
  });
  app.get(RECEIPT_KEY_PATH, async (_req, reply) =>
    reply.header('cache-control', 'public, max-age=3600').send(publicKeySet(deps.signup.keys.receiptKeys)),
  );
  app.get('/assets/assent.css', async (_req, reply) =>
    reply.type('text/css').header('cache-control', 'public, max-age=86400').send(stylesheet),
  );
  registerSignupRoutes(app, routeOptions);
  await registerPreferenceRoutes(app, {
    deps: { ...deps.signup, linkKeys: deps.linkKeys },
    defaultLocale: deps.defaultLocale,
    limitPerIp: deps.signupLimitPerIp,
  });
  registerRepermissionRoutes(app, { deps: { ...deps.signup, linkKeys: deps.linkKeys }, defaultLocale: deps.defaultLocale, limitPerIp: deps.signupLimitPerIp });
  return app;
}
