import { randomBytes, randomUUID } from 'node:crypto';

export type IdGenerator = () => string;

/** Opaque ids for rows; random so that they reveal neither order nor count. */
export const newId: IdGenerator = () => randomUUID();

/** A URL-safe random secret of `bytes` bytes (256 bits by default). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
