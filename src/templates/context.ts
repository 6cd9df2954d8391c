/**
 * What a template can read when it is rendered for one recipient: plain data
 * only. Liquid calls any function it finds in its context, so the context is
 * rebuilt from strings, numbers, booleans, null, arrays and plain objects,
 * whatever a caller passes.
 */

/** Data a template may read. */
export type PlainValue = string | number | boolean | null | readonly PlainValue[] | { readonly [key: string]: PlainValue };

export interface RenderContext {
  /** first_name, last_name, email, locale, …; a missing field renders as empty. */
  contact: Record<string, string | null>;
  unsubscribe_url: string;
  preferences_url: string;
  campaign: Record<string, PlainValue>;
  controller: { name: string; address?: string | null; email?: string | null; policy_url?: string | null };
}

/** The variables a template can use; anything else renders as empty. */
export const contextRoots: readonly string[] = ['contact', 'unsubscribe_url', 'preferences_url', 'campaign', 'controller'];

const unsafeKeys = new Set(['__proto__', 'constructor', 'prototype']);
const maxDepth = 8;

/** A deep copy of the context holding plain data only; anything else is left out. */
export function plainContext(context: RenderContext): Record<string, PlainValue> {
  return plainObject(context as unknown as Record<string, unknown>, 0);
}

function plainObject(value: Record<string, unknown>, depth: number): Record<string, PlainValue> {
  const out: Record<string, PlainValue> = {};
  for (const key of Object.keys(value)) {
    if (unsafeKeys.has(key)) continue;
    const copied = plainValue(value[key], depth + 1);
    if (copied !== undefined) out[key] = copied;
  }
  return out;
}

function plainValue(value: unknown, depth: number): PlainValue | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (depth > maxDepth || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) return value.map((v) => plainValue(v, depth + 1) ?? null);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return undefined;
  return plainObject(value as Record<string, unknown>, depth);
}

/** Fixed contexts on which the text shortcut must agree with a full conversion. */
export function verificationContexts(urls: { unsubscribe: string; preferences: string }): RenderContext[] {
  const controller = { name: 'Sample & Co <Ltd>', address: '1 Sample Street\n12345 Sample Town', email: 'privacy@example.org' };
  const base = { unsubscribe_url: urls.unsubscribe, preferences_url: urls.preferences, controller };
  return [
    {
      ...base,
      contact: { first_name: 'Zoë', last_name: "O'Brien <Jr>", email: 'zoe.obrien@example.org', locale: 'en' },
      campaign: { subject: 'Sample & subject', topic: 'Newsletter' },
    },
    { ...base, contact: { first_name: null, last_name: null, email: null, locale: null }, campaign: {} },
  ];
}
