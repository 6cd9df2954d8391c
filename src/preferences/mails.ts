/**
 * The "here is your link" mail. Fixed catalogue text and one signed link:
 * nothing the requester typed appears in it (ABU-06), so the request form
 * cannot be used to send anyone a message of the requester's choosing.
 */
import { translator } from '../shared/i18n.js';
import { escapeHtml } from '../shared/html.js';

export function preferencesLinkMail(options: { locale: string; controller: string; url: string }): { subject: string; text: string; html: string } {
  const { t } = translator(options.locale);
  const vars = { controller: options.controller };
  const text = [
    t('mail.preferences.greeting'),
    '',
    t('mail.preferences.body', vars),
    '',
    t('mail.preferences.action'),
    options.url,
    '',
    t('mail.preferences.ignore'),
  ].join('\n');
  const html = [
    `<!doctype html><html lang="${escapeHtml(options.locale)}"><head><meta charset="utf-8"></head><body>`,
    `<p>${escapeHtml(t('mail.preferences.greeting'))}</p>`,
    `<p>${escapeHtml(t('mail.preferences.body', vars))}</p>`,
    `<p><a href="${escapeHtml(options.url)}">${escapeHtml(t('mail.preferences.button'))}</a></p>`,
    `<p>${escapeHtml(t('mail.preferences.ignore'))}</p>`,
    '</body></html>',
  ].join('\n');
  return { subject: t('mail.preferences.subject', vars), text, html };
}
