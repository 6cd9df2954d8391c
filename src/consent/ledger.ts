/**
 * The consent ledger's pure rules: event types, how an event is hashed into
 * the chain, and how a run of stored rows is checked. No I/O here.
 */
import { canonicalJson, sha256Hex } from '../shared/crypto.js';
import type { ConsentEventRow } from '../storage/index.js';

export const topicEventTypes = ['requested', 'confirmed', 'withdrawn', 'imported', 'lapsed'] as const;
export const contactEventTypes = ['objected', 'bounced', 'complained', 'merged', 'erased', 'restricted'] as const;
export type TopicEventType = (typeof topicEventTypes)[number];
export type ContactEventType = (typeof contactEventTypes)[number];
export type EventType = TopicEventType | ContactEventType;

export const GENESIS_HASH = '0'.repeat(64);

/**
 * Evidence: what proves the event (GDPR Art. 7(1), EDPB 05/2020 §5.1).
 * Personal data (address, IP, user agent) is only ever present sealed
 * under the contact's key, so erasing that key shreds it.
 */
export interface Evidence {
  method: string;
  actor: string;
  form_id?: string;
  form_slug?: string;
  form_version?: number;
  consent_text_id?: string;
  consent_text_version?: number;
  consent_text_sha256?: string;
  token_id?: string;
  message_id?: string;
  /** Sealed JSON of { address?, ip?, user_agent? }. */
  personal?: string;
  [key: string]: unknown;
}

export interface EventDraft {
  id: string;
  contactId: string;
  topicId: string | null;
  type: EventType;
  occurredAt: Date;
  evidence: Evidence;
}

/** The exact bytes hashed for a row: every column but the hash itself. */
export function eventHashInput(row: Omit<ConsentEventRow, 'hash'>): string {
  return canonicalJson({
    v: 1,
    seq: row.seq,
    id: row.id,
    contact_id: row.contact_id,
    topic_id: row.topic_id,
    type: row.type,
    occurred_at: row.occurred_at,
    evidence: row.evidence,
    prev_hash: row.prev_hash,
  });
}

/**
 * Turns a draft into the row that follows `prev` in the chain: encoded, then
 * chained as any encoded draft, so every write takes one path. Verification
 * (`checkLink`) recomputes the hash from the stored row with
 * `eventHashInput`, an encoding of its own, so a slip in either shows.
 */
export function chainEvent(draft: EventDraft, prev: { seq: number; hash: string }): ConsentEventRow {
  return chainEncoded(
    { id: draft.id, contactId: draft.contactId, topicId: draft.topicId, type: draft.type, occurredAt: draft.occurredAt.toISOString(), evidence: canonicalJson(draft.evidence) },
    prev,
  );
}

/**
 * A draft for batch writers: the time already as ISO text and the evidence
 * already as canonical JSON (what `chainEvent` stores), so a batch encodes
 * each event once and cheaply.
 */
export interface EncodedEventDraft {
  id: string;
  contactId: string;
  topicId: string | null;
  type: EventType;
  occurredAt: string;
  evidence: string;
}

/** The row that follows `prev` for an encoded draft. */
export function chainEncoded(draft: EncodedEventDraft, prev: { seq: number; hash: string }): ConsentEventRow {
  const seq = prev.seq + 1;
  const hash = sha256Hex(encodedHashInput(seq, draft, prev.hash));
  return {
    seq,
    id: draft.id,
    contact_id: draft.contactId,
    topic_id: draft.topicId,
    type: draft.type,
    occurred_at: draft.occurredAt,
    evidence: draft.evidence,
    prev_hash: prev.hash,
    hash,
  };
}

/** `eventHashInput`'s bytes written out: its keys in canonicalJson's sorted order, each value a string, an integer or null. */
function encodedHashInput(seq: number, draft: EncodedEventDraft, prevHash: string): string {
  const j = JSON.stringify;
  return (
    `{"contact_id":${j(draft.contactId)},"evidence":${j(draft.evidence)},"id":${j(draft.id)},"occurred_at":${j(draft.occurredAt)}` +
    `,"prev_hash":${j(prevHash)},"seq":${seq},"topic_id":${j(draft.topicId)},"type":${j(draft.type)},"v":1}`
  );
}

export type ChainFault =
  | { kind: 'changed'; seq: number; id: string; detail: string }
  | { kind: 'missing'; seq: number; detail: string }
  | { kind: 'inserted'; seq: number; id: string; detail: string };

/**
 * Checks one row against its predecessor. Returns the fault this row shows,
 * if any, naming the first event at which the chain stops holding.
 */
export function checkLink(row: ConsentEventRow, prev: { seq: number; hash: string }): ChainFault | null {
  const seq = Number(row.seq);
  if (!Number.isInteger(seq) || seq <= prev.seq) {
    return { kind: 'inserted', seq, id: row.id, detail: `event ${row.seq} is out of sequence after ${prev.seq}` };
  }
  if (seq > prev.seq + 1) {
    return { kind: 'missing', seq: prev.seq + 1, detail: `event ${prev.seq + 1} is missing (deleted?)` };
  }
  if (sha256Hex(eventHashInput(row)) !== row.hash) {
    return { kind: 'changed', seq, id: row.id, detail: `event ${seq} (${row.id}) does not match its hash` };
  }
  if (row.prev_hash !== prev.hash) {
    return { kind: 'inserted', seq, id: row.id, detail: `event ${seq} (${row.id}) does not follow event ${prev.seq}` };
  }
  return null;
}

/** Checks the last row against the head stored beside the chain. */
export function checkHead(last: { seq: number; hash: string }, head: { seq: number; hash: string }): ChainFault | null {
  if (last.seq > head.seq) {
    return { kind: 'inserted', seq: head.seq + 1, id: '', detail: `event ${head.seq + 1} was added outside the ledger (head is ${head.seq})` };
  }
  if (last.seq < head.seq) {
    return { kind: 'missing', seq: last.seq + 1, detail: `events ${last.seq + 1}..${head.seq} are missing (deleted?)` };
  }
  if (last.hash !== head.hash) {
    return { kind: 'changed', seq: last.seq, id: '', detail: `event ${last.seq} does not match the ledger head` };
  }
  return null;
}
