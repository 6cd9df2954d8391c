import type {} from '@fastify/csrf-protection';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { chooseLocale, translator } from '../../shared/i18n.js';
import { submitSignup, loadForm, inspectConfirmation, confirmSubscription, type SignupDeps } from '../../forms/index.js';
import { confirmPage, formPage, messagePage, type FormView, type PageContext } from './views.js';

export interface PublicRouteOptions {
  deps: SignupDeps;
  defaultLocale: string;
  signupLimitPerIp: number;
}

interface SignupBody {
  email?: string;
  topics?: string | string[];
  website?: string;
  _csrf?: string;
}

/**
 * Public sign-up and confirmation routes. Every route is one line here, with
 * its protection visible: forms carry CSRF and a per-IP limit; confirmation
 * links are their own capability (a random, hashed, single-use token).
 */
export function registerSignupRoutes(app: FastifyInstance, options: PublicRouteOptions): void {
  const pages = pageContext(options);
  const perIp = { rateLimit: { max: options.signupLimitPerIp, timeWindow: '1 hour' } };

  app.get<{ Params: { form: string } }>('/f/:form', (req, reply) => showForm(req, reply, {}));
  app.post<{ Params: { form: string }; Body: SignupBody }>('/f/:form', { config: perIp, preHandler: app.csrfProtection }, submit);
  app.get<{ Params: { token: string } }>('/confirm/:token', showConfirm);
  app.post<{ Params: { token: string } }>('/confirm/:token', { config: perIp }, confirm);

  async function showForm(
    req: FastifyRequest<{ Params: { form: string } }>,
    reply: FastifyReply,
    extra: Pick<FormView, 'values' | 'errors'>,
  ) {
    const ctx = pages(req);
    const loaded = await loadForm(options.deps, req.params.form);
    if (!loaded) return reply.code(404).type('text/html').send(messagePage(ctx, 'form.not_found.title', 'form.not_found.body'));
    const view: FormView = {
      slug: loaded.form.slug,
      title: loaded.form.title,
      csrfToken: reply.generateCsrf(),
      topics: loaded.topics.map((t) => ({ slug: t.topic_slug, name: t.topic_name, description: t.topic_description, text: t.text_body })),
      ...extra,
    };
    return reply.code(extra.errors ? 422 : 200).type('text/html').send(formPage(ctx, view));
  }

  async function submit(req: FastifyRequest<{ Params: { form: string }; Body: SignupBody }>, reply: FastifyReply) {
    const ctx = pages(req);
    const body = req.body ?? {};
    const topics = Array.isArray(body.topics) ? body.topics : body.topics ? [body.topics] : [];
    // A filled honeypot is a bot: it gets the ordinary answer and nothing happens.
    if (body.website) return reply.type('text/html').send(messagePage(ctx, 'inbox.title', 'inbox.body'));
    const result = await submitSignup(options.deps, {
      formSlug: req.params.form,
      address: typeof body.email === 'string' ? body.email : '',
      topics,
      ip: req.ip,
      userAgent: String(req.headers['user-agent'] ?? ''),
      locale: ctx.locale,
    });
    if (result.kind === 'form_not_found') {
      return reply.code(404).type('text/html').send(messagePage(ctx, 'form.not_found.title', 'form.not_found.body'));
    }
    if (result.kind === 'invalid') {
      const errors = result.errors.map((e) => ({ field: e.field, message: ctx.t(e.messageKey) }));
      return showForm(req, reply, { errors, values: { address: typeof body.email === 'string' ? body.email : '', topics } });
    }
    return reply.type('text/html').send(messagePage(ctx, 'inbox.title', 'inbox.body'));
  }

  async function showConfirm(req: FastifyRequest<{ Params: { token: string } }>, reply: FastifyReply) {
    const view = await inspectConfirmation(options.deps, req.params.token);
    const ctx = pages(req, view.valid ? view.locale : null);
    if (!view.valid) return invalidLink(ctx, reply);
    return reply.type('text/html').send(confirmPage(ctx, { token: req.params.token, topics: view.topics }));
  }

  async function confirm(req: FastifyRequest<{ Params: { token: string } }>, reply: FastifyReply) {
    const view = await inspectConfirmation(options.deps, req.params.token);
    const ctx = pages(req, view.valid ? view.locale : null);
    const result = await confirmSubscription(options.deps, {
      token: req.params.token,
      ip: req.ip,
      userAgent: String(req.headers['user-agent'] ?? ''),
    });
    if (!result.confirmed) return invalidLink(ctx, reply);
    return reply.type('text/html').send(messagePage(ctx, 'confirmed.title', 'confirmed.body'));
  }
}

function invalidLink(ctx: PageContext, reply: FastifyReply) {
  return reply.code(404).type('text/html').send(messagePage(ctx, 'link.invalid.title', 'link.invalid.body'));
}

/** Builds the page context: locale from the contact, then Accept-Language, then the default. */
export function pageContext(options: PublicRouteOptions) {
  return (req: FastifyRequest, stored: string | null = null): PageContext => {
    const locale = chooseLocale({ stored, acceptLanguage: req.headers['accept-language'], fallback: options.defaultLocale });
    const { t } = translator(locale);
    const { controller } = options.deps.settings;
    return { t, locale, controller: controller.name, policyUrl: controller.policyUrl };
  };
}
