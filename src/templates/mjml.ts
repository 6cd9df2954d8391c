/**
 * MJML to responsive HTML, once per template version. MJML runs with no file
 * or network access of its own: includes are refused, no `.mjmlconfig` is
 * read (it could load code), and no web fonts are added by default, because
 * a font fetched from a third party tells it every reader's IP address
 * (GDPR Art. 5(1)(c); LG München I, 3 O 17493/20).
 */
import { AppError } from '../shared/errors.js';

type Mjml2Html = typeof import('mjml');
let loaded: Promise<Mjml2Html> | undefined;

/**
 * MJML is loaded on first use: it is the largest dependency (~60 MB of
 * memory, ~0.4 s to load), and only compiling a template needs it; a
 * worker, an import or most CLI commands never do.
 */
function mjml(): Promise<Mjml2Html> {
  loaded ??= import('mjml').then((m) => m.default);
  return loaded;
}

export interface MjmlProblem {
  line: number;
  message: string;
}

/** MJML source to HTML; invalid MJML throws `validation_failed` listing every problem with its line. */
export async function mjmlToHtml(source: string): Promise<string> {
  const include = /<mj-include\b/i.exec(source);
  if (include) {
    throw invalid([{ line: lineAt(source, include.index), message: '<mj-include> is not available: a template must be self-contained' }]);
  }
  const mjml2html = await mjml();
  let result: Awaited<ReturnType<Mjml2Html>>;
  try {
    result = await mjml2html(source, {
      // 'soft' collects every error instead of throwing on the first; we then refuse them all.
      validationLevel: 'soft',
      ignoreIncludes: true,
      useMjmlConfigOptions: false,
      fonts: {},
      keepComments: false,
    });
  } catch (error) {
    throw invalid([{ line: 1, message: `MJML could not be parsed (${error instanceof Error ? error.message : String(error)})` }]);
  }
  if (result.errors.length > 0) throw invalid(result.errors.map((e) => ({ line: e.line, message: `<${e.tagName}>: ${e.message}` })));
  return result.html;
}

/**
 * MJML keeps text only inside content elements; Liquid tags written between
 * layout elements (`<mj-section>{% if %}`) vanish silently and would change
 * what recipients get. Every Liquid tag of the source must survive.
 */
export function droppedLiquidTags(source: string, html: string): MjmlProblem[] {
  const inHtml = countTags(html);
  const problems: MjmlProblem[] = [];
  for (const match of source.matchAll(liquidTag)) {
    const tag = normaliseTag(match[0]);
    const left = inHtml.get(tag) ?? 0;
    if (left > 0) inHtml.set(tag, left - 1);
    else {
      problems.push({
        line: lineAt(source, match.index),
        message: `MJML dropped or altered the Liquid tag ${match[0]}; put tags that sit between layout elements inside <mj-raw>`,
      });
    }
  }
  return problems;
}

const liquidTag = /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g;

function normaliseTag(tag: string): string {
  return tag.replace(/\s+/g, ' ');
}

function countTags(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of text.matchAll(liquidTag)) {
    const tag = normaliseTag(match[0]);
    counts.set(tag, (counts.get(tag) ?? 0) + 1);
  }
  return counts;
}

/** 1-based line number of an offset. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line += 1;
  return line;
}

/** One `validation_failed` error naming every problem, one per line, as the CLI prints it. */
export function invalid(problems: MjmlProblem[], what = 'the template is not valid'): AppError {
  const listed = problems.map((p) => `  line ${p.line}: ${p.message}`).join('\n');
  return new AppError('validation_failed', `${what}:\n${listed}`, { problems });
}
