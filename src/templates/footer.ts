/**
 * Assent's compliance footer. A marketing message must offer a simple way
 * to object or withdraw in every message (ePrivacy Directive Art. 13(2);
 * GDPR Art. 7(3) and 21(2)-(3)), and US CAN-SPAM (15 U.S.C. §7704(a)(5))
 * requires an opt-out link and the sender's postal address. When a template
 * lacks either link, this footer is appended, so no message leaves without
 * both (DESIGN.md, flow 4).
 */
import { escapeHtml } from '../shared/html.js';

interface FooterWords {
  sentBy: string;
  unsubscribe: string;
  preferences: string;
}

// Kept beside the footer rather than in the page catalogue: these words go
// out in mail, so a language is offered here only once fully translated.
const words: Record<string, FooterWords> = {
  en: { sentBy: 'This email was sent to you by {controller}.', unsubscribe: 'Unsubscribe', preferences: 'Manage your preferences' },
  de: { sentBy: 'Diese E-Mail wurde Ihnen von {controller} gesendet.', unsubscribe: 'Abmelden', preferences: 'Einstellungen verwalten' },
  fr: { sentBy: 'Cet e-mail vous a été envoyé par {controller}.', unsubscribe: 'Se désabonner', preferences: 'Gérer vos préférences' },
  bg: { sentBy: 'Този имейл ви е изпратен от {controller}.', unsubscribe: 'Отписване', preferences: 'Управление на настройките' },
};

export interface FooterOptions {
  /** The recipient's language (BCP 47); unknown languages fall back to English. */
  locale: string | null | undefined;
  unsubscribeUrl: string;
  preferencesUrl: string;
  controller: { name: string; address?: string | null | undefined };
}

/** The languages the footer is written in. */
export const footerLocales: readonly string[] = Object.keys(words);

function wordsFor(locale: string | null | undefined): { lang: string; w: FooterWords } {
  const base = (locale ?? '').toLowerCase().split(/[-_]/)[0] ?? '';
  const w = words[base];
  return w ? { lang: base, w } : { lang: 'en', w: words.en! };
}

const text = 'margin:0 0 8px 0;';
const link = 'color:#555555;text-decoration:underline;';

/** The footer markup: who sends, both links, and the postal address when configured. */
export function complianceFooter(options: FooterOptions): string {
  const { lang, w } = wordsFor(options.locale);
  const address = options.controller.address?.trim();
  return [
    `<div lang="${lang}" style="max-width:600px;margin:0 auto;padding:16px 24px;font-family:Arial,Helvetica,sans-serif;font-size:12px;line-height:1.5;color:#555555;text-align:center;">`,
    `<p style="${text}">${escapeHtml(w.sentBy.replace('{controller}', options.controller.name))}</p>`,
    `<p style="${text}"><a href="${escapeHtml(options.unsubscribeUrl)}" style="${link}">${escapeHtml(w.unsubscribe)}</a>` +
      ` · <a href="${escapeHtml(options.preferencesUrl)}" style="${link}">${escapeHtml(w.preferences)}</a></p>`,
    address ? `<p style="${text}">${escapeHtml(address).replace(/\r?\n/g, '<br>')}</p>` : '',
    '</div>',
  ].join('');
}

/** The footer as plain text, for the text/plain part (the same words and links). */
export function complianceFooterText(options: FooterOptions): string {
  const { w } = wordsFor(options.locale);
  const address = options.controller.address?.trim();
  return [
    w.sentBy.replace('{controller}', options.controller.name),
    `${w.unsubscribe} [${options.unsubscribeUrl}] · ${w.preferences} [${options.preferencesUrl}]`,
    ...(address ? [address] : []),
  ].join('\n') + '\n';
}

/** The body with the footer placed before `</body>`, or at the end of a fragment. */
export function withComplianceFooter(html: string, options: FooterOptions): string {
  const footer = complianceFooter(options);
  const close = lastBodyClose(html);
  return close === -1 ? html + footer : html.slice(0, close) + footer + html.slice(close);
}

function lastBodyClose(html: string): number {
  let found = -1;
  for (const match of html.matchAll(/<\/body\s*>/gi)) found = match.index;
  return found;
}
