/**
 * The two system mails of double opt-in. Both are fixed text from the
 * catalogue plus links and stored topic names: nothing the submitter typed
 * appears in them (ABU-06), so the form cannot be used to send spam.
 */
import { translator } from '../shared/i18n.js';
import { escapeHtml } from '../shared/html.js';
import { renderReceiptText, type ReceiptClaims } from '../consent/index.js';

export interface MailBody {
  subject: string;
  text: string;
  html: string;
}

export function confirmationMail(options: {
  locale: string;
  controller: string;
  topicNames: string[];
  confirmUrl: string;
  ttlDays: number;
}): MailBody {
  const { t } = translator(options.locale);
  const vars = { controller: options.controller, days: options.ttlDays };
  const topics = options.topicNames;
  const text = [
    t('mail.confirm.greeting'),
    '',
    t('mail.confirm.body', vars),
    ...topics.map((n) => `  - ${n}`),
    '',
    t('mail.confirm.action'),
    options.confirmUrl,
    '',
    t('mail.confirm.expiry', vars),
    t('mail.confirm.ignore'),
  ].join('\n');
  const html = page(
    options.locale,
    [
      `<p>${escapeHtml(t('mail.confirm.greeting'))}</p>`,
      `<p>${escapeHtml(t('mail.confirm.body', vars))}</p>`,
      `<ul>${topics.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`,
      `<p><a href="${escapeHtml(options.confirmUrl)}">${escapeHtml(t('mail.confirm.button'))}</a></p>`,
      `<p>${escapeHtml(t('mail.confirm.expiry', vars))}<br>${escapeHtml(t('mail.confirm.ignore'))}</p>`,
    ].join('\n'),
  );
  return { subject: t('mail.confirm.subject', vars), text, html };
}

export function receiptMail(options: { locale: string; controller: string; topicName: string; claims: ReceiptClaims }): MailBody {
  const { t } = translator(options.locale);
  const readable = renderReceiptText(options.claims, t);
  const text = [
    t('mail.receipt.intro'),
    '',
    readable,
    '',
    t('mail.receipt.attached', { controller: options.controller }),
    t('mail.receipt.withdraw'),
  ].join('\n');
  const html = page(
    options.locale,
    [
      `<p>${escapeHtml(t('mail.receipt.intro'))}</p>`,
      `<pre style="white-space:pre-wrap;font-family:monospace">${escapeHtml(readable)}</pre>`,
      `<p>${escapeHtml(t('mail.receipt.attached', { controller: options.controller }))}</p>`,
      `<p>${escapeHtml(t('mail.receipt.withdraw'))}</p>`,
    ].join('\n'),
  );
  return { subject: t('mail.receipt.subject', { topic: options.topicName }), text, html };
}

function page(locale: string, body: string): string {
  return `<!doctype html><html lang="${escapeHtml(locale)}"><head><meta charset="utf-8"></head><body>${body}</body></html>`;
}
