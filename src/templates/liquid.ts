/**
 * The Liquid engines templates are personalised with. Templates are written
 * by staff but rendered once per recipient with that recipient's data, so the
 * interpreter runs with every limit on: no file system, no includes, no
 * prototype or method access, bounded parse size, render time and memory.
 */
import { Liquid, Tag, type LiquidOptions, type TagToken, type Template, type TopLevelToken } from 'liquidjs';

/** Limits chosen for email: real newsletters are far below them; a runaway loop hits them in milliseconds. */
export const liquidLimits = {
  /** Characters per template; Gmail clips messages over ~102 KB, so 2 MB is generous. */
  parseLimit: 2_000_000,
  /** Milliseconds per render: a recipient's render takes well under 1 ms. */
  renderLimit: 250,
  /** liquidjs allocation units (string and array lengths) per render. */
  memoryLimit: 10_000_000,
} as const;

/** Tags that would read other templates from somewhere: templates are self-contained. */
const fileTags = ['include', 'render', 'layout'] as const;

function baseOptions(): LiquidOptions {
  return {
    ...liquidLimits,
    // Context objects are copied plain data, and still only own properties
    // are visible, so `{{ contact.constructor }}` renders as nothing.
    ownPropertyOnly: true,
    // A misspelt filter is a template bug: fail when the template is added,
    // not silently per recipient.
    strictFilters: true,
    // A merge field a recipient lacks renders as empty, never as the raw tag.
    strictVariables: false,
    // An empty in-memory template map: no lookup ever reaches the file system.
    templates: {},
    relativeReference: false,
    dynamicPartials: false,
    cache: false,
  };
}

class ForbiddenFileTag extends Tag {
  constructor(token: TagToken, remain: TopLevelToken[], liquid: Liquid) {
    super(token, remain, liquid);
    throw new Error(`{% ${token.name} %} is not available: a template must be self-contained`);
  }
  *render(): Generator<unknown, void, unknown> {}
}

function restrict(engine: Liquid): Liquid {
  for (const name of fileTags) engine.registerTag(name, ForbiddenFileTag);
  // Escaping is the engine's job (HTML bodies escape every output, text
  // does not), so templates written for Liquid hosts that escape by hand
  // are neither escaped twice nor given entities in plain text.
  engine.registerFilter('escape', (value: unknown) => value);
  engine.registerFilter('escape_once', (value: unknown) => value);
  return engine;
}

/**
 * The engine for HTML bodies: every output is HTML-escaped, so a contact
 * whose name is `<script>` cannot inject markup.
 */
export function htmlEngine(): Liquid {
  const engine = new Liquid({ ...baseOptions(), outputEscape: 'escape' });
  const escape = builtin(engine, 'escape');
  const newlineToBr = builtin(engine, 'newline_to_br');
  restrict(engine);
  // Its markup is wanted, so it escapes its input itself and is marked raw,
  // which exempts it from the escaping of the output.
  engine.registerFilter('newline_to_br', {
    raw: true,
    handler(this: unknown, value: unknown) {
      return newlineToBr.call(this, escape.call(this, value));
    },
  });
  return engine;
}

/** The engine for subjects and text parts: no escaping, because the output is not HTML. */
export function textEngine(): Liquid {
  const engine = restrict(new Liquid(baseOptions()));
  // A line break is already a line break in text.
  engine.registerFilter('newline_to_br', (value: unknown) => value);
  return engine;
}

type FilterFunction = (this: unknown, value: unknown) => unknown;

function builtin(engine: Liquid, name: string): FilterFunction {
  const filter = engine.filters[name];
  if (typeof filter !== 'function') throw new Error(`liquidjs has no built-in filter ${name}`);
  return filter as FilterFunction;
}

/** Line and column of a Liquid error, as liquidjs reports them in its message. */
export function liquidErrorPosition(error: unknown): { line: number; col: number } | undefined {
  const match = /line:(\d+), col:(\d+)/.exec(error instanceof Error ? error.message : '');
  return match ? { line: Number(match[1]), col: Number(match[2]) } : undefined;
}

/** The message of a Liquid error without its position suffix and source excerpt. */
export function liquidErrorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.replace(/, line:\d+, col:\d+$/, '');
}

export type { Template };
