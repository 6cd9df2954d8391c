/**
 * Pages of the unsubscribe link and the preference centre. Server-rendered,
 * no JavaScript: every action is a form with a labelled button, so keyboard
 * and screen-reader use need nothing extra; one h1 per page (the layout's).
 */
import { html, type Html } from '../../shared/html.js';
import { newestFirst, type CentreTopic, type CentreView, type ConsentRecord } from '../../preferences/index.js';
import { layout, type PageContext } from './views.js';

export function unsubscribePage(ctx: PageContext, view: { action: string; topicName: string; preferencesUrl: string }): string {
  const { t } = ctx;
  const body = html`
<p>${t('unsubscribe.body', { topic: view.topicName, controller: ctx.controller })}</p>
<form method="post" action="${view.action}">
<button type="submit">${t('unsubscribe.button')}</button>
</form>
<p><a href="${view.preferencesUrl}">${t('unsubscribe.preferences')}</a></p>`;
  return layout(ctx, t('unsubscribe.title'), body);
}

export function unsubscribedPage(ctx: PageContext, view: { topicName: string; preferencesUrl: string }): string {
  const { t } = ctx;
  const body = html`
<p role="status">${t('unsubscribed.body', { topic: view.topicName })}</p>
<p><a href="${view.preferencesUrl}">${t('unsubscribe.preferences')}</a></p>`;
  return layout(ctx, t('unsubscribed.title'), body);
}

export type CentreNotice = { kind: 'withdrawn'; topic: string } | { kind: 'unchanged' } | { kind: 'objected' } | { kind: 'subscribe_error' };

/** The preference centre (GDPR Art. 7(3), 15, 17, 20, 21): state, proof and every control on one page. */
export function centrePage(ctx: PageContext, view: { token: string; centre: CentreView; notice?: CentreNotice }): string {
  const { t } = ctx;
  const base = `/p/${view.token}`;
  const subscribable = view.centre.topics.filter((topic) => topic.canSubscribe);
  const body = html`
${view.notice ? noticeOf(ctx, view.notice) : ''}
<p>${t('centre.intro', { controller: ctx.controller })}</p>
${view.centre.suppressedAll ? html`<p class="notice"><strong>${t('centre.suppressed')}</strong></p>` : ''}
${view.centre.topics.map((topic) => topicSection(ctx, base, topic))}
${subscribable.length > 0 ? subscribeSection(ctx, base, subscribable, view.notice?.kind === 'subscribe_error') : ''}
${view.centre.suppressedAll ? '' : objectSection(ctx, base)}
<section aria-labelledby="data-heading">
<h2 id="data-heading">${t('centre.data.heading')}</h2>
<ul>
<li><a href="${base}/export.json" download>${t('centre.data.export')}</a></li>
<li><a href="${base}/erase">${t('centre.data.erase')}</a></li>
</ul>
</section>`;
  return layout(ctx, t('centre.title'), body);
}

function noticeOf(ctx: PageContext, notice: CentreNotice): Html {
  if (notice.kind === 'subscribe_error') {
    return html`<div class="errors" role="alert"><p>${ctx.t('centre.subscribe.error')}</p></div>`;
  }
  const text =
    notice.kind === 'withdrawn' ? ctx.t('centre.notice.withdrawn', { topic: notice.topic }) : ctx.t(`centre.notice.${notice.kind}`);
  return html`<p class="notice" role="status">${text}</p>`;
}

function topicSection(ctx: PageContext, base: string, topic: CentreTopic): Html {
  const { t } = ctx;
  const id = `topic-${topic.slug}`;
  const consents = newestFirst(topic.consents);
  return html`<section aria-labelledby="${id}">
<h2 id="${id}">${topic.name}</h2>
${topic.description ? html`<p>${topic.description}</p>` : ''}
<p>${t('centre.status')} <strong>${t(`centre.status.${topic.status}`)}</strong>${topic.since && topic.status !== 'none' ? html` ${sinceOf(ctx, topic.since)}` : ''}</p>
${consents.length > 0 ? html`<h3>${t('centre.consents')}</h3><ul>${consents.map((c) => html`<li>${consentLine(ctx, base, topic, c)}</li>`)}</ul>` : ''}
${topic.canWithdraw ? html`<form method="post" action="${base}/withdraw"><input type="hidden" name="topic" value="${topic.slug}"><button type="submit">${t('centre.withdraw.button', { topic: topic.name })}</button></form>` : ''}
</section>`;
}

/** Methods with their own wording in the catalogue; any other is shown by its code. */
const namedMethods: readonly string[] = ['preference_centre', 're_permission'];

function consentLine(ctx: PageContext, base: string, topic: CentreTopic, c: ConsentRecord): Html {
  const { t } = ctx;
  const when = t(c.type === 'confirmed' ? 'centre.consent.confirmed' : 'centre.consent.imported', { date: formatDate(ctx, c.at) });
  const how =
    c.method === 'web_form' && c.formSlug
      ? t('centre.method.web_form', { form: c.formSlug, version: c.formVersion ?? '' })
      : namedMethods.includes(c.method)
        ? t(`centre.method.${c.method}`)
        : t('centre.method.other', { method: c.method });
  const text = c.textVersion === null ? '' : `, ${t('centre.consent.text', { version: c.textVersion })}`;
  const receipt = c.receipt
    ? html` <a href="${base}/receipts/${c.eventId}" download>${t('centre.receipt', { topic: topic.name, date: formatDate(ctx, c.at) })}</a>`
    : '';
  return html`<time datetime="${c.at}">${when}</time>, ${how}${text}.${receipt}`;
}

function subscribeSection(ctx: PageContext, base: string, topics: CentreTopic[], error: boolean): Html {
  const { t } = ctx;
  return html`<section aria-labelledby="subscribe-heading">
<h2 id="subscribe-heading">${t('centre.subscribe.heading')}</h2>
<form method="post" action="${base}/subscribe">
<fieldset${error ? html` aria-invalid="true"` : ''}>
<legend>${t('centre.subscribe.intro')}</legend>
${topics.map(
  (topic) => html`<div class="choice">
<input type="checkbox" id="subscribe-${topic.slug}" name="topics" value="${topic.slug}">
<label for="subscribe-${topic.slug}"><strong>${topic.name}</strong><br><span class="consent-text">${topic.text?.body ?? ''}</span></label>
</div>`,
)}
</fieldset>
<button type="submit">${t('centre.subscribe.button')}</button>
</form>
</section>`;
}

function objectSection(ctx: PageContext, base: string): Html {
  const { t } = ctx;
  return html`<section aria-labelledby="object-heading">
<h2 id="object-heading">${t('centre.object.heading')}</h2>
<p>${t('centre.object.body', { controller: ctx.controller })}</p>
<form method="post" action="${base}/object"><button type="submit">${t('centre.object.button')}</button></form>
</section>`;
}

/** Art. 17: a confirmation step before anything is erased; the cancel link goes back unchanged. */
export function erasePage(ctx: PageContext, view: { token: string }): string {
  const { t } = ctx;
  const body = html`
<p>${t('erase.body')}</p>
<form method="post" action="/p/${view.token}/erase">
<button type="submit">${t('erase.button')}</button>
</form>
<p><a href="/p/${view.token}">${t('erase.cancel')}</a></p>`;
  return layout(ctx, t('erase.title'), body);
}

export function linkRequestPage(ctx: PageContext, view: { csrfToken: string; error?: string; address?: string }): string {
  const { t } = ctx;
  const body = html`
<p>${t('link.request.intro')}</p>
<form method="post" action="/p" novalidate>
<input type="hidden" name="_csrf" value="${view.csrfToken}">
<div class="field">
<label for="email">${t('form.email.label')}</label>
<input id="email" name="email" type="email" autocomplete="email" required value="${view.address ?? ''}"${view.error ? html` aria-invalid="true" aria-describedby="email-error"` : ''}>
${view.error ? html`<p class="error" id="email-error">${view.error}</p>` : ''}
</div>
<div class="hp" aria-hidden="true">
<label for="website">${t('form.honeypot.label')}</label>
<input id="website" name="website" type="text" tabindex="-1" autocomplete="off">
</div>
<button type="submit">${t('link.request.button')}</button>
</form>`;
  return layout(ctx, t('link.request.title'), body);
}

function sinceOf(ctx: PageContext, at: string): Html {
  return html`<time datetime="${at}">${ctx.t('centre.since', { date: formatDate(ctx, at) })}</time>`;
}

/** Dates in the page's language, in UTC (the ledger's time), with the zone named. */
function formatDate(ctx: PageContext, iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${new Intl.DateTimeFormat(ctx.locale, { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' }).format(date)} UTC`;
}
