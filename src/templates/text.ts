/**
 * The text/plain alternative (RFC 2046 §5.1.4) of a rendered HTML body.
 * Readers with text-only clients, and spam filters that compare the two
 * parts, must find the same words and the same links, so links are kept as
 * "text [url]".
 *
 * html-to-text costs about a millisecond per newsletter, ten times the
 * Liquid render, and it runs per recipient. So when a template allows it the
 * conversion runs once, at compile time, on the HTML with every Liquid tag
 * masked; the result is a Liquid text template rendered per recipient. The
 * caller checks that both ways give the same words on sample data before
 * using it. What may differ: line wrapping, and merged values, which are
 * printed as they are (a line break in the data stays a line break).
 */
import { compile } from 'html-to-text';
import type { Liquid, Template } from 'liquidjs';

// Compiled once: html-to-text builds its selector decision tree here.
const convert = compile({
  // RFC 5322 §2.1.1: lines SHOULD be at most 78 characters; long URLs stay whole.
  wordwrap: 78,
  baseElements: { selectors: ['body'], returnDomByDefault: true },
  selectors: [
    // Inbox preview text (MJML's <mj-preview>) is hidden in HTML and would
    // only repeat the first line.
    { selector: 'div[style*="display:none"]', format: 'skip' },
    // Images carry no words; an image link still shows its URL.
    { selector: 'img', format: 'skip' },
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true, linkBrackets: ['[', ']'] } },
    // Headings keep their case: upper-casing a merged name changes it.
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((h) => ({ selector: h, options: { uppercase: false } })),
    // MJML lays out with tables; read them as blocks, not as data grids.
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block' },
  ],
});

/** Plain text of an HTML document. */
export function htmlToPlainText(html: string): string {
  return tidy(convert(html));
}

/** Blank lines left by empty blocks (or false `{% if %}` branches) collapse to one. */
function tidy(text: string): string {
  return text.replace(/[ \t]+\n/g, '\n').replace(/\n{3,}/g, '\n\n').trim() + '\n';
}

const liquidTag = /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g;
// Private-use code points: html-to-text treats them as one word and never
// meets them in real mail.
const open = '\ue000';
const close = '\ue001';

/**
 * The body as a Liquid text template, or undefined when the shortcut cannot
 * be trusted: `| raw` output may carry markup that only a per-recipient
 * conversion would strip, and a `{% … %}` tag html-to-text dropped (inside
 * an attribute or a hidden block) would change the logic.
 */
export function textTemplateSource(html: string): string | undefined {
  if (/\|\s*raw\b/.test(html)) return undefined;
  const tags: string[] = [];
  const index = new Map<string, number>();
  // Identical tags share a placeholder, so `<a href="{{ u }}">{{ u }}</a>`
  // hides the duplicate URL exactly as it does after rendering.
  const masked = html.replace(liquidTag, (tag) => {
    let i = index.get(tag);
    if (i === undefined) {
      i = tags.push(tag) - 1;
      index.set(tag, i);
    }
    return `${open}${i}${close}`;
  });
  const placeholder = new RegExp(`${open}(\\d+)${close}`, 'g');
  const converted = convert(masked);
  const before = countPlaceholders(masked, placeholder);
  const after = countPlaceholders(converted, placeholder);
  const lostLogic = tags.some((tag, i) => tag.startsWith('{%') && before[i] !== after[i]);
  return lostLogic ? undefined : converted.replace(placeholder, (_, i: string) => tags[Number(i)]!);
}

function countPlaceholders(text: string, placeholder: RegExp): number[] {
  const counts: number[] = [];
  for (const match of text.matchAll(placeholder)) {
    const i = Number(match[1]);
    counts[i] = (counts[i] ?? 0) + 1;
  }
  return counts;
}

/** Renders a text template made by `textTemplateSource`. */
export function renderTextTemplate(engine: Liquid, template: Template[], scope: object): string {
  return tidy(engine.renderSync(template, scope) as string);
}
