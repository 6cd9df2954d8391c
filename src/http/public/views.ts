/**
 * Server-rendered public pages: no JavaScript needed, labelled controls,
 * one stylesheet (so the Content-Security-Policy needs no inline styles).
 */
import { html, type Html } from '../../shared/html.js';
import type { Translate } from '../../shared/i18n.js';

export interface PageContext {
  t: Translate;
  locale: string;
  controller: string;
  policyUrl: string;
}

export function layout(ctx: PageContext, title: string, body: Html): string {
  return html`<!doctype html>
<html lang="${ctx.locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · ${ctx.controller}</title>
<link rel="stylesheet" href="/assets/assent.css">
</head>
<body>
<main id="main">
<h1>${title}</h1>
${body}
</main>
<footer><a href="${ctx.policyUrl}">${ctx.t('page.footer', { controller: ctx.controller })}</a></footer>
</body>
</html>`.value;
}

export interface FormView {
  slug: string;
  title: string;
  csrfToken: string;
  topics: { slug: string; name: string; description: string; text: string }[];
  values?: { address?: string; topics?: string[] };
  errors?: { field: 'address' | 'topics' | 'form'; message: string }[];
}

/** The sign-up form: one unticked box per topic with the exact consent text (GDPR Recital 32). */
export function formPage(ctx: PageContext, view: FormView): string {
  const { t } = ctx;
  const errors = view.errors ?? [];
  const errorFor = (field: string) => errors.find((e) => e.field === field);
  const addressError = errorFor('address');
  const topicsError = errorFor('topics');
  const body = html`
<p>${t('form.intro')}</p>
${errors.length > 0 ? html`<div class="errors" role="alert" id="form-errors"><h2>${t('form.error.title')}</h2><ul>${errors.map((e) => html`<li>${e.message}</li>`)}</ul></div>` : ''}
<form method="post" action="/f/${view.slug}" novalidate>
<input type="hidden" name="_csrf" value="${view.csrfToken}">
<div class="field">
<label for="email">${t('form.email.label')}</label>
<input id="email" name="email" type="email" autocomplete="email" required value="${view.values?.address ?? ''}"${addressError ? html` aria-invalid="true" aria-describedby="email-error"` : ''}>
${addressError ? html`<p class="error" id="email-error">${addressError.message}</p>` : ''}
</div>
<fieldset${topicsError ? html` aria-describedby="topics-error"` : ''}>
<legend>${t('form.topics.legend')}</legend>
${topicsError ? html`<p class="error" id="topics-error">${topicsError.message}</p>` : ''}
${view.topics.map(
  (topic) => html`<div class="choice">
<input type="checkbox" id="topic-${topic.slug}" name="topics" value="${topic.slug}"${view.values?.topics?.includes(topic.slug) ? html` checked` : ''}>
<label for="topic-${topic.slug}"><strong>${topic.name}</strong><br><span class="consent-text">${topic.text}</span></label>
</div>`,
)}
</fieldset>
<div class="hp" aria-hidden="true">
<label for="website">${t('form.honeypot.label')}</label>
<input id="website" name="website" type="text" tabindex="-1" autocomplete="off">
</div>
<p class="privacy"><a href="${ctx.policyUrl}">${t('form.privacy')}</a></p>
<button type="submit">${t('form.submit')}</button>
</form>`;
  return layout(ctx, view.title, body);
}

export function messagePage(ctx: PageContext, titleKey: string, bodyKey: string): string {
  return layout(ctx, ctx.t(titleKey), html`<p>${ctx.t(bodyKey)}</p>`);
}

/** The confirmation page: GET shows it and changes nothing; the button POSTs. */
export function confirmPage(ctx: PageContext, view: { token: string; topics: { name: string }[] }): string {
  const { t } = ctx;
  const body = html`
<p>${t('confirm.body')}</p>
<ul>${view.topics.map((topic) => html`<li>${topic.name}</li>`)}</ul>
<form method="post" action="/confirm/${view.token}">
<button type="submit">${t('confirm.button')}</button>
</form>`;
  return layout(ctx, t('confirm.title'), body);
}

export const stylesheet = `
:root { color-scheme: light dark; --accent: #1f5fbf; --link: #1f5fbf; }
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; }
.field, .choice { margin: 1rem 0; }
label { display: inline-block; }
input[type=email] { display: block; width: 100%; max-width: 28rem; padding: .5rem; font: inherit; margin-top: .25rem; }
input[type=checkbox] { width: 1.25rem; height: 1.25rem; vertical-align: top; margin-right: .5rem; }
.choice { display: flex; align-items: flex-start; }
fieldset { border: 1px solid #8886; padding: .75rem 1rem; }
button { font: inherit; padding: .6rem 1.4rem; background: var(--accent); color: #fff; border: 0; border-radius: .3rem; cursor: pointer; }
button:focus-visible, input:focus-visible, a:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
.errors { border-left: 4px solid #b00020; padding: .25rem 1rem; margin: 1rem 0; }
.error { color: #b00020; margin: .25rem 0; }
/* Explicit colours per scheme, so every text/background pair is known (axe-core color-contrast); all >= 6:1. */
html { background: #fff; color: #1a1a1a; }
a, a:visited { color: var(--link); }
@media (prefers-color-scheme: dark) { html { background: #121212; color: #e8e8e8; } :root { --link: #8ab4f8; } .errors, .error { color: #ff8a80; border-color: #ff8a80; } }
.consent-text { font-size: .95rem; }
.hp { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
footer { margin-top: 3rem; font-size: .9rem; }
`;
