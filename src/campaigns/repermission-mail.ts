/**
 * The re-permission request, written by Assent from the message catalogue:
 * no operator template, no offer, no prize draw, nothing but the question,
 * one confirm link, and the unsubscribe and preference links every campaign
 * mail carries (ICO: Honda and Flybe; COMPLIANCE.md EPR-04; GDPR Art. 7(3),
 * 21(2)). Pure: the renderer signs the links and passes them in.
 */
import { translator } from '../shared/i18n.js';
import { escapeHtml } from '../shared/html.js';
import { complianceFooter } from '../templates/index.js';

export interface RepermissionMailInput {
  locale: string;
  controller: { name: string; address?: string | null | undefined };
  topicName: string;
  deadline: Date;
  /** The second (and last) request, sent only to those who have not answered. */
  reminder: boolean;
  confirmUrl: string;
  unsubscribeUrl: string;
  preferencesUrl: string;
}

export interface RepermissionMail {
  subject: string;
  text: string;
  html: string;
}

export function repermissionMail(input: RepermissionMailInput): RepermissionMail {
  const { t, locale } = translator(input.locale);
  const vars = { controller: input.controller.name, topic: input.topicName, date: formatDate(input.deadline, locale) };
  const subject = t(input.reminder ? 'mail.repermission.reminder_subject' : 'mail.repermission.subject', vars);
  const address = input.controller.address?.trim();
  const text = [
    t('mail.repermission.greeting'),
    '',
    t('mail.repermission.body', vars),
    '',
    t('mail.repermission.action', vars),
    input.confirmUrl,
    '',
    t('mail.repermission.deadline', vars),
    '',
    '--',
    t('mail.repermission.sent_by', vars),
    `${t('mail.repermission.unsubscribe')}: ${input.unsubscribeUrl}`,
    `${t('mail.repermission.preferences')}: ${input.preferencesUrl}`,
    ...(address ? [address] : []),
    '',
  ].join('\n');
  const body = [
    `<p>${escapeHtml(t('mail.repermission.greeting'))}</p>`,
    `<p>${escapeHtml(t('mail.repermission.body', vars))}</p>`,
    `<p>${escapeHtml(t('mail.repermission.action', vars))}</p>`,
    `<p><a href="${escapeHtml(input.confirmUrl)}">${escapeHtml(t('mail.repermission.button'))}</a></p>`,
    `<p>${escapeHtml(t('mail.repermission.deadline', vars))}</p>`,
    complianceFooter({ locale, unsubscribeUrl: input.unsubscribeUrl, preferencesUrl: input.preferencesUrl, controller: input.controller }),
  ].join('\n');
  const html = `<!doctype html><html lang="${escapeHtml(locale)}"><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head><body>${body}</body></html>`;
  return { subject, text, html };
}

/** A date the reader's language spells out, in UTC so that every recipient reads the same deadline. */
export function formatDate(date: Date, locale: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' }).format(date) + ' UTC';
}
