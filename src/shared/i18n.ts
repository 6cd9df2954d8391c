/**
 * Message catalogues for public pages and system mails. Catalogues are JSON
 * files in ./messages, one per language; every language must hold the same
 * keys (a test checks it). Placeholders are `{name}`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Catalog = Record<string, string>;

const dir = fileURLToPath(new URL('./messages/', import.meta.url));

function loadCatalogs(): Map<string, Catalog> {
  const out = new Map<string, Catalog>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    out.set(file.replace(/\.json$/, ''), JSON.parse(readFileSync(dir + file, 'utf8')) as Catalog);
  }
  return out;
}

const catalogs = loadCatalogs();

export const supportedLocales: readonly string[] = [...catalogs.keys()].sort();

export type Translate = (key: string, vars?: Record<string, string | number>) => string;

export interface Translator {
  locale: string;
  t: Translate;
}

/** A translator for a supported locale; unknown keys throw so gaps are found in tests. */
export function translator(locale: string): Translator {
  const catalog = catalogs.get(locale) ?? catalogs.get('en');
  if (!catalog) throw new Error('no English catalogue');
  return {
    locale: catalogs.has(locale) ? locale : 'en',
    t: (key, vars) => {
      const text = catalog[key];
      if (text === undefined) throw new Error(`missing message "${key}" for ${locale}`);
      return vars ? text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m)) : text;
    },
  };
}

/**
 * Picks a locale: the contact's stored one, then the first supported tag in
 * Accept-Language (by q-value), then the default.
 */
export function chooseLocale(options: { stored?: string | null; acceptLanguage?: string; fallback: string }): string {
  if (options.stored && catalogs.has(options.stored)) return options.stored;
  const ranked = (options.acceptLanguage ?? '')
    .split(',')
    .map((part) => {
      // RFC 9110 §12.4.2: white space may surround ";", and tags and "q" are case-insensitive.
      const [tag = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return { tag, q: q ? Number(q.slice(2)) : 1 };
    })
    .filter((x) => x.tag && x.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const { tag } of ranked) {
    const base = tag.split('-')[0] ?? '';
    if (catalogs.has(tag)) return tag;
    if (catalogs.has(base)) return base;
  }
  return options.fallback;
}

/** Every catalogue's keys, for the completeness test. */
export function catalogKeys(): Map<string, string[]> {
  return new Map([...catalogs].map(([locale, c]) => [locale, Object.keys(c).sort()]));
}
