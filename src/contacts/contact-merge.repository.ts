/**
 * Which contact answers for a merged-away one. When an operator merges a
 * probable duplicate B into A (campaigns/dedupe.service.ts), B's states move
 * to A and B keeps only its history; anything the person does through B's
 * address or B's old links must then act on A, never bring B back to life
 * beside A (one person, one record: DESIGN.md, data model).
 */
import type { Kysely, Transaction } from 'kysely';
import { AppError } from '../shared/errors.js';
import type { Contact, Tables } from '../storage/index.js';
import { findContactById } from './contact.repository.js';

type Executor = Kysely<Tables> | Transaction<Tables>;

/** More hops than any real chain (B into A, A later into C, ...): a guard, never a limit met. */
const MAX_MERGE_HOPS = 32;

/**
 * A merge record that does not lead to a stored contact within the guard.
 * Contacts are never deleted, so this means the database was changed by
 * hand; acting on the merged-away record instead would bring it back to life
 * beside the kept one, so whatever asked stops here (its transaction rolls back).
 */
export function brokenMergeChain(contactId: string, detail: string): AppError {
  return new AppError('conflict', `contact ${contactId}: ${detail}; the contact_merges table needs repair`);
}

/** The contact this one was merged into, one hop, if it was. */
export async function findMergedInto(db: Executor, contactId: string): Promise<Contact | undefined> {
  const row = await db
    .selectFrom('contact_merges as m')
    .leftJoin('contacts as c', 'c.id', 'm.merged_into')
    .select('m.merged_into')
    .selectAll('c')
    .where('m.contact_id', '=', contactId)
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.id === null) throw brokenMergeChain(contactId, `merged into ${row.merged_into}, which is not stored`);
  const { merged_into: _into, ...contact } = row;
  return contact as Contact;
}

/**
 * The contact that answers for the id: that contact, or the one at the end
 * of its chain of merges; undefined when no such contact exists. Every path
 * that acts on a contact named by a link, token or request resolves it here,
 * inside its own transaction, so a merge committing meanwhile is seen.
 */
export async function findKeptContactById(db: Executor, contactId: string): Promise<Contact | undefined> {
  const named = await findContactById(db, contactId);
  return named && keptContactOf(db, named);
}

/** The contact that answers for `contact`: itself, or the end of its chain of merges. */
export async function keptContactOf(db: Executor, contact: Contact): Promise<Contact> {
  let current = contact;
  for (let hop = 0; hop < MAX_MERGE_HOPS; hop += 1) {
    const next = await findMergedInto(db, current.id);
    if (!next) return current;
    current = next;
  }
  throw brokenMergeChain(contact.id, `merge chain longer than ${MAX_MERGE_HOPS} hops`);
}

/** Every contact merged, directly or along a chain, into this one (for erasure: one person, all records). */
export async function findMergedAwayInto(db: Executor, contactId: string): Promise<string[]> {
  const out: string[] = [];
  let frontier = [contactId];
  for (let hop = 0; frontier.length > 0; hop += 1) {
    if (hop >= MAX_MERGE_HOPS) throw brokenMergeChain(contactId, `merge chain longer than ${MAX_MERGE_HOPS} hops`);
    const rows = await db.selectFrom('contact_merges').select('contact_id').where('merged_into', 'in', frontier).orderBy('contact_id').execute();
    frontier = rows.map((r) => r.contact_id);
    out.push(...frontier);
  }
  return out;
}

/**
 * For each of the contacts an operator merged away, the id at the end of its
 * chain of merges (B into A, A later into C: B and A both end at C); contacts
 * never merged away are absent. One query per hop, for any number of
 * contacts: the batch form of keptContactOf, for imports and deadline jobs.
 */
export async function finalMergeTargets(db: Executor, contactIds: readonly string[]): Promise<Map<string, string>> {
  const into = new Map<string, string>();
  let pending = [...new Set(contactIds)];
  for (let hop = 0; pending.length > 0; hop++) {
    if (hop === MAX_MERGE_HOPS) throw brokenMergeChain(pending[0]!, `merge chain longer than ${MAX_MERGE_HOPS} hops`);
    const merges: { contact_id: string; merged_into: string }[] = [];
    for (let i = 0; i < pending.length; i += 500) {
      merges.push(...(await db.selectFrom('contact_merges').select(['contact_id', 'merged_into']).where('contact_id', 'in', pending.slice(i, i + 500)).execute()));
    }
    for (const m of merges) into.set(m.contact_id, m.merged_into);
    pending = merges.map((m) => m.merged_into).filter((id) => !into.has(id));
  }
  const out = new Map<string, string>();
  for (const id of new Set(contactIds)) {
    if (!into.has(id)) continue;
    let at = id;
    // The loop above stopped only at chain ends or a cycle; a cycle has no end.
    for (let hop = 0; into.has(at); hop++) {
      if (hop === MAX_MERGE_HOPS) throw brokenMergeChain(id, 'merge chain has no end (a cycle)');
      at = into.get(at)!;
    }
    out.set(id, at);
  }
  return out;
}
