/**
 * Topics and consent texts: pure rules. A consent text is immutable and
 * content-hashed, so every event can name exactly what the person saw
 * (GDPR Art. 7(1), EDPB 05/2020 §5.1).
 */
import { z } from 'zod';
import { sha256Hex } from '../shared/crypto.js';
import { translator } from '../shared/i18n.js';

export const slugSchema = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, 'use lower-case letters, digits and single hyphens (1-64 characters)');

export const topicInputSchema = z.object({
  slug: slugSchema,
  name: z.string().trim().min(1, 'a topic needs a name').max(200),
  description: z.string().trim().min(1, 'a topic needs a description of its purpose').max(2000),
  isPublic: z.boolean().default(true),
});

const withdrawalWords = /withdraw|unsubscribe|widerruf|abmelden|retirer|désabonner|désinscri|оттегл|отпиш/i;

export const consentTextSchema = z
  .string()
  .trim()
  .min(20, 'a consent text must say who sends what, and how to withdraw (at least 20 characters)')
  .max(4000)
  // GDPR Art. 7(3): the person must be told of the right to withdraw before consenting.
  .refine((text) => withdrawalWords.test(text), 'a consent text must tell the person they can withdraw (GDPR Art. 7(3))');

export type TopicInput = z.input<typeof topicInputSchema>;

/** The hash that names a consent text version: SHA-256 of the exact words shown. */
export function consentTextHash(body: string): string {
  return sha256Hex(body.normalize('NFC'));
}

/**
 * The default wording for a topic, naming the controller and the right to
 * withdraw (GDPR Art. 7(3)), in the language the text is stored under
 * (the catalogue's `defaults.consent_text`; English when none is given).
 */
export function defaultConsentText(options: { controllerName: string; topicName: string; locale?: string }): string {
  return translator(options.locale ?? 'en').t('defaults.consent_text', { topic: options.topicName, controller: options.controllerName });
}
