/**
 * Which contact answers for a merged-away one. When an operator merges a
 * probable duplicate B into A (campaigns/dedupe.service.ts), B's states move
 * to A and B keeps only its history; anything the person does through B's
 * address or B's old links must then act on A, never bring B back to life
 * beside A (one person, one record: DESIGN.md, data model).
 */
import type { Kysely, Transaction } from 'kysely';
import type { Contact, Tables } from '../storage/index.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** More hops than any real chain (B into A, A later into C, ...): a guard, never a limit met. */
const MAX_HOPS = 32;

/** The contact this one was merged into, one hop, if it was. */
export async function findMergedInto(db: Executor, contactId: string): Promise<Contact | undefined> {
  return db
    .selectFrom('contact_merges as m')
    .innerJoin('contacts as c', 'c.id', 'm.merged_into')
    .selectAll('c')
    .where('m.contact_id', '=', contactId)
    .executeTakeFirst();
}

/** The contact that answers for `contact`: itself, or the end of its chain of merges. */
export async function keptContactOf(db: Executor, contact: Contact): Promise<Contact> {
  let current = contact;
  for (let hop = 0; hop < MAX_HOPS; hop += 1) {
    const next = await findMergedInto(db, current.id);
    if (!next) return current;
    current = next;
  }
  throw new Error(`contact ${contact.id}: merge chain longer than ${MAX_HOPS}`);
}

/** Every contact merged, directly or along a chain, into this one (for erasure: one person, all records). */
export async function findMergedAwayInto(db: Executor, contactId: string): Promise<string[]> {
  const out: string[] = [];
  let frontier = [contactId];
  for (let hop = 0; frontier.length > 0; hop += 1) {
    if (hop >= MAX_HOPS) throw new Error(`contact ${contactId}: merge chain longer than ${MAX_HOPS}`);
    const rows = await db.selectFrom('contact_merges').select('contact_id').where('merged_into', 'in', frontier).orderBy('contact_id').execute();
    frontier = rows.map((r) => r.contact_id);
    out.push(...frontier);
  }
  return out;
}
