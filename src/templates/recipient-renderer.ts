/**
 * Rendering a campaign for each of its recipients without running Liquid
 * each time (issue 3, "Targets").
 *
 * Most of a newsletter is the same for every recipient; what differs is a
 * handful of values (the address, the names, two signed links). When the
 * template uses those values only in ways that cannot depend on what they
 * say — printed as they are, with an optional `default` for an empty one, or
 * tested for presence in `if`/`unless` — the message is rendered once per
 * *shape* (which values are null, empty or present, and the contact's
 * language, which picks the footer's words) with placeholders in place of
 * the values, and split at the placeholders. Per recipient only the values
 * are escaped and put in.
 *
 * The exact renderer stays the reference: a template that uses a value any
 * other way (a comparison, another filter, an assignment), a value that
 * whitespace handling could change (leading, trailing or repeated blanks,
 * line breaks), and a shape whose split rendering does not reproduce the
 * exact one on sample data, all go through `CompiledTemplate.render`.
 */
import type { CompiledTemplate, RenderContext, RenderedMessage } from './template.js';

/** A rendered text split at the personal values: statics[0] + values[0] + statics[1] + … + statics[n]. */
export interface SplitText {
  /** The same array object for every recipient of one shape, so encodings of it can be cached. */
  readonly statics: readonly string[];
  readonly values: readonly string[];
}

export interface RecipientRendering {
  subject: string;
  html: SplitText;
  text: SplitText;
}

/** What differs per recipient; everything else in the context is fixed for the campaign. */
export interface RecipientValues {
  contact: Record<string, string | null>;
  unsubscribe_url: string;
  preferences_url: string;
}

export type RecipientRenderer = (recipient: RecipientValues) => RecipientRendering;

/** Joins a split text back into one string. */
export function joinSplit(split: SplitText): string {
  let out = split.statics[0]!;
  for (let i = 0; i < split.values.length; i++) out += split.values[i]! + split.statics[i + 1]!;
  return out;
}

// Private-use code points: no template or merged value is allowed to contain them (see `ordinary`).
const OPEN = '\ue000';
const CLOSE = '\ue001';
const PLACEHOLDER = /\ue000(\d+)\ue001/g;
/** A value that every whitespace rule leaves alone: no blanks at the edges, none doubled, no other white space. */
const ORDINARY = /^(?:[^\s\ue000-\uf8ff](?:[^\s\ue000-\uf8ff]| (?! ))*[^\s\ue000-\uf8ff]|[^\s\ue000-\uf8ff])$/;
/** The contact field whose real value shapes the rendering (the footer's language) instead of being a placeholder. */
const SHAPING_FIELD = 'locale';
const MAX_SHAPES = 256;

/** Liquid markup: `{{ … }}` and `{% … %}`, with or without whitespace control. */
const MARKUP = /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g;
const PERSONAL = /\b(?:contact|unsubscribe_url|preferences_url)\b/;
const VALUE = String.raw`(?:contact\.[a-z_][a-z0-9_]*|unsubscribe_url|preferences_url)`;
const ALLOWED = [
  new RegExp(String.raw`^\{\{-?\s*${VALUE}\s*-?\}\}$`),
  new RegExp(String.raw`^\{\{-?\s*${VALUE}\s*\|\s*default\s*:\s*(?:"[^"{}%]*"|'[^'{}%]*')\s*-?\}\}$`),
  new RegExp(String.raw`^\{%-?\s*(?:if|elsif|unless)\s+${VALUE}\s*-?%\}$`),
];

/**
 * True when every use of a personal value in the sources is one the split
 * rendering reproduces exactly: a value's text can only be printed, never
 * looked at. `contact.locale` may be used freely: it is part of the shape.
 */
export function splitEligible(sources: readonly string[]): boolean {
  return sources.every((source) =>
    [...source.matchAll(MARKUP)].every(([markup]) => {
      const rest = markup.replace(/\bcontact\.locale\b/g, '');
      return !PERSONAL.test(rest) || ALLOWED.some((allowed) => allowed.test(markup));
    }),
  );
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' };
const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

interface Slot {
  /** The value the placeholder stands for. */
  read(recipient: RecipientValues): string;
}

interface Shape {
  subject: { statics: string[]; slots: Slot[] };
  html: { statics: string[]; slots: Slot[] };
  text: { statics: string[]; slots: Slot[] };
}

/**
 * A per-recipient renderer for one campaign. `fixed` is the part of the
 * context every recipient shares (campaign, controller). Falls back to the
 * exact renderer per recipient whenever the split one could differ.
 */
export function createRecipientRenderer(
  compiled: CompiledTemplate,
  fixed: Pick<RenderContext, 'campaign' | 'controller'>,
): RecipientRenderer {
  const exact = (recipient: RecipientValues): RecipientRendering => whole(compiled.render({ ...fixed, ...recipient }));
  if (compiled.textMode !== 'template' || !splitEligible(compiled.sources)) return exact;
  const shapes = new Map<string, Shape | null>();

  return (recipient) => {
    const fields = Object.keys(recipient.contact).filter((k) => k !== SHAPING_FIELD).sort();
    let key = `${recipient.contact[SHAPING_FIELD] ?? '\0'}|${fields.join(',')}|`;
    for (const field of fields) {
      const value = recipient.contact[field];
      if (value === null || value === undefined) key += 'n';
      else if (value === '') key += 'e';
      else if (ORDINARY.test(value)) key += 's';
      else return exact(recipient);
    }
    if (!ORDINARY.test(recipient.unsubscribe_url) || !ORDINARY.test(recipient.preferences_url)) return exact(recipient);
    let shape = shapes.get(key);
    if (shape === undefined) {
      shape = buildShape(compiled, fixed, recipient, fields);
      if (shapes.size >= MAX_SHAPES) shapes.delete(shapes.keys().next().value!);
      shapes.set(key, shape);
    }
    if (shape === null) return exact(recipient);
    return {
      subject: joinSplit({ statics: shape.subject.statics, values: shape.subject.slots.map((s) => s.read(recipient)) }),
      html: { statics: shape.html.statics, values: shape.html.slots.map((s) => escapeHtml(s.read(recipient))) },
      text: { statics: shape.text.statics, values: shape.text.slots.map((s) => s.read(recipient)) },
    };
  };
}

function whole(rendered: RenderedMessage): RecipientRendering {
  return { subject: rendered.subject, html: { statics: [rendered.html], values: [] }, text: { statics: [rendered.text], values: [] } };
}

/**
 * Renders the shape of `recipient` once with placeholders, then checks on two
 * sets of sample values of the same shape that the split gives what the
 * exact renderer gives; null when it does not (that shape renders exactly).
 */
function buildShape(
  compiled: CompiledTemplate,
  fixed: Pick<RenderContext, 'campaign' | 'controller'>,
  recipient: RecipientValues,
  fields: string[],
): Shape | null {
  const slots: Slot[] = [];
  const placeholder = (read: (r: RecipientValues) => string): string => `${OPEN}${slots.push({ read }) - 1}${CLOSE}`;
  const contact: Record<string, string | null> = { [SHAPING_FIELD]: recipient.contact[SHAPING_FIELD] ?? null };
  for (const field of fields) {
    const value = recipient.contact[field];
    contact[field] = value === null || value === undefined || value === '' ? (value ?? null) : placeholder((r) => r.contact[field]!);
  }
  const marked: RecipientValues = {
    contact,
    unsubscribe_url: placeholder((r) => r.unsubscribe_url),
    preferences_url: placeholder((r) => r.preferences_url),
  };
  let shape: Shape;
  try {
    const rendered = compiled.render({ ...fixed, ...marked });
    shape = { subject: split(rendered.subject, slots), html: split(rendered.html, slots), text: split(rendered.text, slots) };
  } catch {
    return null;
  }
  for (const sample of samples(recipient, fields)) {
    let expected: RenderedMessage;
    try {
      expected = compiled.render({ ...fixed, ...sample });
    } catch {
      return null;
    }
    const fill = (part: Shape['html'], encode: (v: string) => string) =>
      joinSplit({ statics: part.statics, values: part.slots.map((s) => encode(s.read(sample))) });
    if (
      fill(shape.subject, String) !== expected.subject ||
      fill(shape.html, escapeHtml) !== expected.html ||
      fill(shape.text, String) !== expected.text
    ) {
      return null;
    }
  }
  return shape;
}

function split(rendered: string, slots: Slot[]): { statics: string[]; slots: Slot[] } {
  const statics: string[] = [];
  const used: Slot[] = [];
  let last = 0;
  for (const match of rendered.matchAll(PLACEHOLDER)) {
    statics.push(rendered.slice(last, match.index));
    used.push(slots[Number(match[1])]!);
    last = match.index! + match[0].length;
  }
  statics.push(rendered.slice(last));
  // A placeholder cut apart or re-encoded by the template would leave a stray marker behind.
  if (statics.some((s) => s.includes(OPEN) || s.includes(CLOSE))) throw new Error('placeholder not kept whole');
  return { statics, slots: used };
}

/** Two recipients of the same shape, with values that exercise HTML escaping and URL query strings. */
function samples(recipient: RecipientValues, fields: string[]): RecipientValues[] {
  return [
    { name: `O'Brien <Jr> & "Co"`, url: 'https://verify.invalid/u/a?x=1&y=2' },
    { name: 'Zoë Ann', url: 'https://verify.invalid/p/b' },
  ].map(({ name, url }, n) => {
    const contact: Record<string, string | null> = { [SHAPING_FIELD]: recipient.contact[SHAPING_FIELD] ?? null };
    for (const field of fields) {
      const value = recipient.contact[field];
      contact[field] = value === null || value === undefined || value === '' ? (value ?? null) : `${name} ${field}${n}`;
    }
    return { contact, unsubscribe_url: `${url}u${n}`, preferences_url: `${url}p${n}` };
  });
}
