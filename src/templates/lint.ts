/**
 * The compliance lint of a template, run when it is added and again before a
 * campaign is scheduled. It renders the template with sentinel link URLs and
 * reads what a recipient would get.
 *
 * Decision on the footer: a missing unsubscribe link, preference-centre link
 * or postal address is a *notice*, not a failure, because `render` appends
 * Assent's compliance footer for every recipient whose body lacks one
 * (compliance.ts): the body then does carry a visible unsubscribe link, as
 * EML-11 and GDPR-22 require, and `footerAppended` says so. Failures
 * (`ok: false`) are what no footer can repair: Liquid left raw in the
 * output, scripts, forms posting elsewhere, a render that fails.
 */
import { isAppError } from '../shared/errors.js';
import { linksTo } from './links.js';
import { contextRoots, type RenderContext } from './context.js';
import type { CompiledTemplate, RenderedMessage } from './template.js';

export type LintCode =
  | 'missing_unsubscribe_link'
  | 'missing_preferences_link'
  | 'missing_postal_address'
  | 'no_postal_address'
  | 'unknown_variable'
  | 'render_failed'
  | 'raw_liquid'
  | 'script'
  | 'external_form_action'
  | 'links_missing';

export interface LintProblem {
  code: LintCode;
  /** 'error' blocks sending; 'notice' is repaired or harmless (e.g. the footer is appended). */
  severity: 'error' | 'notice';
  message: string;
}

export interface LintResult {
  ok: boolean;
  problems: LintProblem[];
  /** True when at least one sample recipient gets Assent's footer because the template lacks a link. */
  footerAppended: boolean;
  /** The message as the sample recipient gets it, footer included. */
  rendered: RenderedMessage | undefined;
}

/** Sample data to lint with; the link URLs are always replaced by sentinels. */
export type LintSample = Omit<RenderContext, 'unsubscribe_url' | 'preferences_url'>;

/** Sentinels under the reserved `.invalid` TLD (RFC 2606 §2): they can never be real links. */
export const sentinelUrls = {
  unsubscribe: 'https://assent.invalid/lint/unsubscribe?token=u-7f3a9c',
  preferences: 'https://assent.invalid/lint/preferences?token=p-2b8e41',
} as const;

/** Plain sample data: a recipient with every usual field filled in. */
export function sampleContext(options: { controller: RenderContext['controller']; locale?: string; campaign?: RenderContext['campaign'] }): LintSample {
  return {
    contact: { first_name: 'Alex', last_name: 'Sample', email: 'alex.sample@example.org', locale: options.locale ?? 'en' },
    campaign: options.campaign ?? { subject: 'Sample campaign', topic: 'Newsletter' },
    controller: options.controller,
  };
}

/**
 * Lints with the sample recipient and with one whose every contact field is
 * empty, so a link hidden behind `{% if contact.first_name %}` is found.
 */
export function lintTemplate(compiled: CompiledTemplate, sample: LintSample): LintResult {
  const problems: LintProblem[] = [...unknownVariables(compiled), ...noAddress(sample)];
  const emptyContact = Object.fromEntries(Object.keys(sample.contact).map((k) => [k, k === 'locale' ? (sample.contact[k] ?? null) : null]));
  let footerAppended = false;
  let rendered: RenderedMessage | undefined;
  for (const [label, contact] of [['the sample recipient', sample.contact], ['a recipient with empty contact fields', emptyContact]] as const) {
    const context: RenderContext = { ...sample, contact, unsubscribe_url: sentinelUrls.unsubscribe, preferences_url: sentinelUrls.preferences };
    const message = renderForLint(compiled, context, label);
    if (!('html' in message)) {
      problems.push(message);
      continue;
    }
    rendered ??= message;
    footerAppended ||= message.footerAppended;
    // The second recipient adds only what the first did not show: a link or
    // a flaw that depends on the recipient's data.
    const seen = new Set(problems.map((p) => p.code));
    problems.push(...[...missingItems(message, label), ...unsafeOutput(message, label)].filter((p) => !seen.has(p.code)));
  }
  return { ok: !problems.some((p) => p.severity === 'error'), problems, footerAppended, rendered };
}

function renderForLint(compiled: CompiledTemplate, context: RenderContext, label: string): RenderedMessage | LintProblem {
  try {
    return compiled.render(context);
  } catch (error) {
    const message = isAppError(error) ? error.message : String(error);
    return { code: 'render_failed', severity: 'error', message: `rendering for ${label} failed: ${message}` };
  }
}

const missingCodes = {
  unsubscribe: 'missing_unsubscribe_link',
  preferences: 'missing_preferences_link',
  postal_address: 'missing_postal_address',
} as const;

const missingWhat = {
  unsubscribe: 'no <a href="{{ unsubscribe_url }}">',
  preferences: 'no <a href="{{ preferences_url }}">',
  postal_address: 'not the postal address ({{ controller.address }})',
} as const;

/** What the template itself lacks (the footer then supplies it). */
function missingItems(message: RenderedMessage, label: string): LintProblem[] {
  return message.missing.map((item) => ({
    code: missingCodes[item],
    severity: 'notice' as const,
    message: `${label} gets ${missingWhat[item]} from the template; Assent's compliance footer is appended`,
  }));
}

function unsafeOutput(message: RenderedMessage, label: string): LintProblem[] {
  const out: LintProblem[] = [];
  const raw = /\{\{|\{%/.exec(message.subject + '\n' + message.html);
  if (raw) out.push({ code: 'raw_liquid', severity: 'error', message: `Liquid markup is left in the output for ${label}: ${excerpt(message.subject + '\n' + message.html, raw.index)}` });
  // Mail clients do not run scripts; spam filters treat them as an attack sign.
  if (/<script\b/i.test(message.html)) out.push({ code: 'script', severity: 'error', message: 'the body contains a <script> element' });
  if (/<[^>]+\son[a-z]+\s*=/i.test(message.html)) out.push({ code: 'script', severity: 'error', message: 'the body contains an event-handler attribute (on…=)' });
  if (/\b(?:href|src|action)\s*=\s*["']?\s*javascript:/i.test(message.html)) out.push({ code: 'script', severity: 'error', message: 'the body contains a javascript: URL' });
  for (const action of formActions(message.html)) {
    if (action !== sentinelUrls.unsubscribe && action !== sentinelUrls.preferences) {
      out.push({ code: 'external_form_action', severity: 'error', message: `a form posts to ${action}: forms in mail may only post to Assent's own links` });
    }
  }
  // After the footer, both links must be there; anything else is a bug in Assent.
  const [u, p] = linksTo(message.html, [sentinelUrls.unsubscribe, sentinelUrls.preferences]);
  const textHas = message.text.includes(sentinelUrls.unsubscribe) && message.text.includes(sentinelUrls.preferences);
  if (!u || !p || !textHas) out.push({ code: 'links_missing', severity: 'error', message: `the message for ${label} lacks a working unsubscribe or preferences link` });
  return out;
}

function formActions(html: string): string[] {
  return [...html.matchAll(/<form\b[^>]*\saction\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/gi)]
    .map((m) => (m[1] ?? m[2] ?? m[3] ?? '').trim().replaceAll('&amp;', '&'))
    .filter((action) => /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i.test(action));
}

function unknownVariables(compiled: CompiledTemplate): LintProblem[] {
  const unknown = new Set(compiled.variables.filter((root) => !contextRoots.includes(root)));
  return [...unknown].map((root) => ({
    code: 'unknown_variable' as const,
    severity: 'notice' as const,
    message: `{{ ${root} }} is not provided and renders as empty (available: ${contextRoots.join(', ')})`,
  }));
}

/** CAN-SPAM (US-01) needs a postal address in every message; the footer can only show one that is configured. */
function noAddress(sample: LintSample): LintProblem[] {
  if (sample.controller.address?.trim()) return [];
  return [{ code: 'no_postal_address', severity: 'notice', message: 'no postal address is configured (ASSENT_CONTROLLER_ADDRESS); US law (CAN-SPAM) requires one in every message' }];
}

function excerpt(text: string, at: number): string {
  return JSON.stringify(text.slice(Math.max(0, at - 20), at + 40));
}
