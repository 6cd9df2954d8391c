/**
 * What every campaign body must carry, checked per recipient on the rendered
 * HTML: a visible unsubscribe link (EML-11; GDPR Art. 21(2)-(4), GDPR-21/22),
 * a link to the preference centre (DESIGN.md flow 4), and the controller's
 * postal address when one is configured (US-01, CAN-SPAM 15 U.S.C.
 * §7704(a)(5); EPR-03, ePrivacy Art. 13(4)). When the template leaves one
 * out, Assent's footer, which has all three, is appended: no message leaves
 * without them, whatever the template or the recipient's data.
 */
import { escapeHtml } from '../shared/html.js';
import { complianceFooterText, withComplianceFooter, type FooterOptions } from './footer.js';
import { linksTo } from './links.js';
import type { RenderContext } from './context.js';

export type ComplianceItem = 'unsubscribe' | 'preferences' | 'postal_address';

export interface CompliantBody {
  html: string;
  /** What the template itself lacked for this recipient; non-empty means the footer was appended. */
  missing: ComplianceItem[];
}

/** The rendered body, with the compliance footer appended when anything is missing. */
export function ensureCompliance(html: string, context: RenderContext): CompliantBody {
  const [unsubscribe, preferences] = linksTo(html, [context.unsubscribe_url, context.preferences_url]);
  const missing: ComplianceItem[] = [];
  if (!unsubscribe) missing.push('unsubscribe');
  if (!preferences) missing.push('preferences');
  if (!hasAddress(html, context.controller.address)) missing.push('postal_address');
  return missing.length === 0 ? { html, missing } : { html: withComplianceFooter(html, footerOptions(context)), missing };
}

/** The footer's text for the text/plain part, when `ensureCompliance` appended it to the HTML. */
export function footerText(context: RenderContext): string {
  return complianceFooterText(footerOptions(context));
}

/**
 * Every line of the configured address appears in the body, however the
 * template joins the lines (`<br>`, commas, a table).
 */
function hasAddress(html: string, address: string | null | undefined): boolean {
  if (!address?.trim()) return true;
  return address
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .every((line) => html.includes(escapeHtml(line)) || html.includes(line));
}

function footerOptions(context: RenderContext): FooterOptions {
  return {
    locale: context.contact.locale,
    unsubscribeUrl: context.unsubscribe_url,
    preferencesUrl: context.preferences_url,
    controller: context.controller,
  };
}
