/**
 * Campaign templates: MJML or HTML for layout, Liquid for personalisation.
 * A template is compiled once per campaign (MJML to HTML, HTML and subject
 * parsed by Liquid) and rendered once per recipient from plain data only.
 * Every rendered message links to the unsubscribe and preference pages and
 * shows the postal address: when the template does not, Assent's compliance
 * footer is appended (see compliance.ts).
 */
import type { Liquid } from 'liquidjs';
import { AppError } from '../shared/errors.js';
import { decodeEntities } from './links.js';
import { ensureCompliance, footerText, type ComplianceItem } from './compliance.js';
import { htmlEngine, liquidErrorMessage, liquidErrorPosition, textEngine, type Template } from './liquid.js';
import { droppedLiquidTags, invalid, mjmlToHtml } from './mjml.js';
import { htmlToPlainText, renderTextTemplate, textTemplateSource } from './text.js';
import { plainContext, verificationContexts, type RenderContext } from './context.js';

export type TemplateFormat = 'mjml' | 'html';

export interface RenderedMessage {
  /** One line: line breaks from merged data fold to spaces (RFC 5322 §2.2). */
  subject: string;
  html: string;
  /** The text/plain alternative of `html`. */
  text: string;
  /** True when the template lacked something for this recipient and Assent's footer was added. */
  footerAppended: boolean;
  /** What the template itself lacked (the footer supplies it). */
  missing: readonly ComplianceItem[];
}

export interface CompiledTemplate {
  readonly format: TemplateFormat;
  /** The HTML that Liquid renders (MJML output for MJML templates). */
  readonly html: string;
  /** Root names of the context variables the template reads, e.g. 'contact'. */
  readonly variables: readonly string[];
  /**
   * 'template': the text part is a Liquid template derived once from the
   * HTML (fast); 'converted': html-to-text runs per recipient, because the
   * shortcut did not provably give the same text for this template.
   */
  readonly textMode: 'template' | 'converted';
  /** The Liquid sources as written for Liquid to parse: the body's HTML and the subject. */
  readonly sources: readonly string[];
  render(context: RenderContext): RenderedMessage;
}

export interface TemplateInput {
  format: TemplateFormat;
  source: string;
  /** A Liquid template; defaults to the document's `<title>` (MJML `<mj-title>`). */
  subject?: string | undefined;
}

interface Parts {
  html: Liquid;
  text: Liquid;
  body: Template[];
  subject: Template[];
  /** The Liquid text template of the body, when the shortcut is used. */
  textBody: Template[] | undefined;
}

/** Compiles a template once; throws `validation_failed` naming each problem and its source line. */
export async function compileTemplate(input: TemplateInput): Promise<CompiledTemplate> {
  const html = htmlEngine();
  const text = textEngine();
  const source = input.format === 'mjml' ? await compileMjml(html, input.source) : input.source;
  const body = parseLiquid(html, source, 'the template');
  const subjectSource = input.subject ?? titleOf(source);
  const subject = parseLiquid(text, subjectSource, 'the subject');
  const variables = [...new Set([...html.globalVariablesSync(body), ...text.globalVariablesSync(subject)])];
  const exact = renderer({ html, text, body, subject, textBody: undefined });
  const textBody = parseTextBody(text, source);
  const fast = textBody ? renderer({ html, text, body, subject, textBody }) : undefined;
  const useFast = fast !== undefined && sameText(exact, fast);
  return {
    format: input.format,
    html: source,
    variables,
    textMode: useFast ? 'template' : 'converted',
    sources: [source, subjectSource],
    render: useFast ? fast : exact,
  };
}

function renderer(parts: Parts): (context: RenderContext) => RenderedMessage {
  return (context) => {
    const scope = plainContext(context);
    const subject = renderLiquid(() => parts.text.renderSync(parts.subject, scope) as string);
    const body = renderLiquid(() => parts.html.renderSync(parts.body, scope) as string);
    const { html, missing } = ensureCompliance(body, context);
    let text: string;
    if (parts.textBody === undefined) text = htmlToPlainText(html);
    else {
      text = renderLiquid(() => renderTextTemplate(parts.text, parts.textBody!, scope));
      if (missing.length > 0) text += '\n' + footerText(context);
    }
    return { subject: subject.replace(/\s+/g, ' ').trim(), html, text, footerAppended: missing.length > 0, missing };
  };
}

async function compileMjml(engine: Liquid, source: string): Promise<string> {
  // Liquid syntax is checked on the MJML first, so errors name the lines the author wrote.
  parseLiquid(engine, source, 'the template');
  const out = await mjmlToHtml(source);
  const dropped = droppedLiquidTags(source, out);
  if (dropped.length > 0) throw invalid(dropped);
  return out;
}

function parseLiquid(engine: Liquid, source: string, what: string): Template[] {
  try {
    return engine.parse(source);
  } catch (error) {
    const at = liquidErrorPosition(error);
    throw invalid([{ line: at?.line ?? 1, message: liquidErrorMessage(error) }], `${what} is not valid Liquid`);
  }
}

function parseTextBody(engine: Liquid, html: string): Template[] | undefined {
  const source = textTemplateSource(html);
  if (source === undefined) return undefined;
  try {
    return engine.parse(source);
  } catch {
    return undefined;
  }
}

/** The shortcut is used only when it gives the same words as a full conversion (whitespace aside). */
function sameText(exact: (c: RenderContext) => RenderedMessage, fast: (c: RenderContext) => RenderedMessage): boolean {
  const squash = (text: string) => text.replace(/\s+/g, ' ').trim();
  const urls = { unsubscribe: 'https://verify.invalid/u?t=1&x=2', preferences: 'https://verify.invalid/p?t=1&x=2' };
  try {
    return verificationContexts(urls).every((context) => squash(exact(context).text) === squash(fast(context).text));
  } catch {
    // A template that cannot render sample data fails in lint; the exact path reports it per recipient.
    return false;
  }
}

function renderLiquid(run: () => string): string {
  try {
    return run();
  } catch (error) {
    // Limits (time, memory) and filter errors surface here, per recipient.
    throw new AppError('validation_failed', `the template could not be rendered: ${liquidErrorMessage(error)}`, {
      position: liquidErrorPosition(error),
    });
  }
}

/** Template names: what `assent template add NAME` and campaigns refer to. */
export const templateNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * MJML or HTML: a document whose root is `<mjml>` is MJML whatever its file
 * is called; otherwise the extension decides, and anything else is HTML.
 */
export function detectFormat(filename: string, source: string): TemplateFormat {
  if (/^\uFEFF?\s*(?:<\?xml[^>]*>\s*)?(?:<!--[\s\S]*?-->\s*)*<mjml[\s>]/i.test(source)) return 'mjml';
  return /\.mjml$/i.test(filename) ? 'mjml' : 'html';
}

/** The text of the first `<title>`, for MJML's `<mj-title>`; Liquid inside stays Liquid. */
function titleOf(html: string): string {
  const match = /<title[^>]*>([\s\S]*?)<\/title\s*>/i.exec(html);
  return match ? decodeEntities(match[1]!.trim()) : '';
}

export { plainContext, contextRoots, type PlainValue, type RenderContext } from './context.js';
export { lintTemplate, sampleContext, sentinelUrls, type LintProblem, type LintResult, type LintSample } from './lint.js';
export { withComplianceFooter, complianceFooter, footerLocales, type FooterOptions } from './footer.js';
export { ensureCompliance, type ComplianceItem } from './compliance.js';
