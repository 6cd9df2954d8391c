/**
 * The data export of one person, pure: turns the rows loaded for a contact
 * into the document GDPR Art. 15(1)-(3) and Art. 20(1) call for, a copy of
 * the data plus the information about its processing, in a structured,
 * commonly used, machine-readable form (JSON, schema in export-schema.ts).
 */
import { openPersonal, type ContactNames, type PersonalData } from '../contacts/index.js';
import type { ConsentEventRow, ConsentStateRow, Contact, Topic } from '../storage/index.js';

export const EXPORT_FORMAT = 'assent-export/1';

export interface TopicRef {
  id: string;
  slug: string;
  name: string;
}

export interface OpenedPersonal {
  address: string | null;
  ip: string | null;
  user_agent: string | null;
}

export interface ExportedEvent {
  seq: number;
  id: string;
  type: string;
  topic: TopicRef | null;
  occurred_at: string;
  /** The stored evidence with `personal` opened; null when none was sealed or the key is gone (erased). */
  evidence: Record<string, unknown> & { personal: OpenedPersonal | null };
  hash: string;
}

export interface ContactExport {
  format: typeof EXPORT_FORMAT;
  generated_at: string;
  /** 'opened' when sealed evidence could be read, 'erased' after Art. 17 crypto-shredding. */
  personal_data: 'opened' | 'erased' | 'unreadable';
  /** Names are null when none were given, or once erased (sealed under the shredded key). */
  profile: {
    id: string;
    address: string | null;
    first_name: string | null;
    last_name: string | null;
    locale: string | null;
    created_at: string;
    erased_at: string | null;
  };
  consent_events: ExportedEvent[];
  consent_states: { topic: TopicRef; state: string; since: string }[];
  messages: {
    system: { kind: string; message_id: string; created_at: string }[];
    campaigns: {
      campaign_id: string;
      subject: string;
      status: string;
      sent_at: string | null;
      message_id: string | null;
      skip_reason: string | null;
    }[];
  };
  suppressions: { scope: string; topic: TopicRef | null; reason: string; created_at: string }[];
  /**
   * Records an operator merged into this contact (probable duplicates, the
   * same person): each with its own address, history and messages, evidence
   * opened with that record's own key. Empty when there were none.
   */
  merged_records: MergedRecordExport[];
  information: ExportInformation;
}

export interface MergedRecordExport {
  personal_data: ContactExport['personal_data'];
  profile: ContactExport['profile'] & { merged_into: string; merged_at: string };
  consent_events: ExportedEvent[];
  messages: ContactExport['messages'];
}

/** Art. 15(1)(a)-(h): what the person is entitled to be told besides the copy. */
export interface ExportInformation {
  purposes: { topic: string; name: string; description: string }[];
  categories: string[];
  recipients: string;
  retention: string;
  rights: string[];
  source: { method: string; description: string }[];
  automated_decisions: string;
}

export interface ExportRows {
  now: Date;
  contact: Contact;
  contactKey: Buffer | null;
  /** Opened names; null when none are stored or they cannot be opened. */
  names: ContactNames | null;
  keyState: ContactExport['personal_data'];
  events: ConsentEventRow[];
  states: ConsentStateRow[];
  topics: Topic[];
  mailLog: ContactExport['messages']['system'];
  deliveries: ContactExport['messages']['campaigns'];
  suppressions: { scope: string; reason: string; created_at: string }[];
  merged: MergedRecordRows[];
}

/** What is stored of one record merged into the contact. */
export interface MergedRecordRows {
  contact: Contact;
  contactKey: Buffer | null;
  names: ContactNames | null;
  keyState: ContactExport['personal_data'];
  mergedInto: string;
  mergedAt: string;
  events: ConsentEventRow[];
  mailLog: ContactExport['messages']['system'];
  deliveries: ContactExport['messages']['campaigns'];
}

/** Builds the export document from one contact's rows. */
export function buildExport(rows: ExportRows): ContactExport {
  const topics = new Map(rows.topics.map((t) => [t.id, t]));
  const ref = (id: string | null): TopicRef | null => {
    const topic = id === null ? undefined : topics.get(id);
    return topic ? { id: topic.id, slug: topic.slug, name: topic.name } : null;
  };
  const events = (key: Buffer | null, list: ConsentEventRow[]): ExportedEvent[] =>
    list.map((e) => ({
      seq: Number(e.seq),
      id: e.id,
      type: e.type,
      topic: ref(e.topic_id),
      occurred_at: e.occurred_at,
      evidence: openEvidence(key, e.evidence),
      hash: e.hash,
    }));
  return {
    format: EXPORT_FORMAT,
    generated_at: rows.now.toISOString(),
    personal_data: rows.keyState,
    profile: profileOf(rows.contact, rows.names),
    consent_events: events(rows.contactKey, rows.events),
    consent_states: rows.states.flatMap((s) => {
      const topic = ref(s.topic_id);
      return topic ? [{ topic, state: s.state, since: s.since }] : [];
    }),
    messages: { system: rows.mailLog, campaigns: rows.deliveries },
    suppressions: dedupeSuppressions(rows.suppressions).map((s) => ({
      scope: s.scope,
      topic: s.scope === 'all' ? null : ref(s.scope),
      reason: s.reason,
      created_at: s.created_at,
    })),
    merged_records: rows.merged.map((m) => ({
      personal_data: m.keyState,
      profile: { ...profileOf(m.contact, m.names), merged_into: m.mergedInto, merged_at: m.mergedAt },
      consent_events: events(m.contactKey, m.events),
      messages: { system: m.mailLog, campaigns: m.deliveries },
    })),
    information: information(rows),
  };
}

function profileOf(contact: Contact, names: ContactNames | null): ContactExport['profile'] {
  return {
    id: contact.id,
    address: contact.address,
    first_name: names?.first_name ?? null,
    last_name: names?.last_name ?? null,
    locale: contact.locale,
    created_at: contact.created_at,
    erased_at: contact.erased_at,
  };
}

/**
 * Opens every sealed personal field of the evidence: the top-level
 * `personal`, and wherever else evidence keeps sealed values (an import's
 * `confirm_personal`, each record of an import merge's `records`). Every
 * other field is copied as stored.
 */
function openEvidence(contactKey: Buffer | null, stored: string): ExportedEvent['evidence'] {
  const { personal, ...rest } = JSON.parse(stored) as Record<string, unknown>;
  return { ...(openNested(contactKey, rest) as Record<string, unknown>), personal: openField(contactKey, personal) };
}

/** A sealed field is named `personal` or `<something>_personal`. */
const SEALED_FIELD = /(^|_)personal$/;

function openNested(contactKey: Buffer | null, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => openNested(contactKey, v));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, SEALED_FIELD.test(k) && typeof v === 'string' ? openField(contactKey, v) : openNested(contactKey, v)]),
  );
}

function openField(contactKey: Buffer | null, sealed: unknown): OpenedPersonal | null {
  const opened: PersonalData | null = typeof sealed === 'string' ? openPersonal(contactKey, sealed) : null;
  return opened ? { address: opened.address ?? null, ip: opened.ip ?? null, user_agent: opened.user_agent ?? null } : null;
}

/** An entry is stored once per provider alias (Gmail dots, +tags); the person sees it once. */
function dedupeSuppressions<T extends { scope: string; reason: string; created_at: string }>(rows: T[]): T[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const key = `${r.scope}\u0000${r.reason}\u0000${r.created_at}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const SOURCES: Record<string, string> = {
  web_form: 'Given by you through a sign-up form (Art. 13).',
  double_opt_in: 'Confirmed by you by opening the link in the confirmation mail.',
  import: 'Imported by the controller from an earlier mailing list; the declared source is in the event evidence (Art. 14(2)(f)).',
  preference_centre: 'Asked for by you in your preference centre, and confirmed by you through the link mailed to you.',
  re_permission: 'Confirmed by you by opening the link in a request to renew your consent.',
};

/** Events through which data about the person entered the system (Art. 14(2)(f) source). */
const ACQUIRING: readonly string[] = ['requested', 'confirmed', 'imported'];

function information(rows: ExportRows): ExportInformation {
  const allEvents = [...rows.events, ...rows.merged.flatMap((m) => m.events)];
  const topicIds = new Set([...allEvents.map((e) => e.topic_id), ...rows.states.map((s) => s.topic_id)]);
  const acquiring = allEvents.filter((e) => ACQUIRING.includes(e.type));
  const methods = [...new Set(acquiring.map((e) => (JSON.parse(e.evidence) as { method?: string }).method ?? 'unknown'))];
  return {
    purposes: rows.topics
      .filter((t) => topicIds.has(t.id))
      .map((t) => ({ topic: t.slug, name: t.name, description: t.description })),
    categories: [
      'Email address, name (when given) and preferred language',
      'IP address and browser user agent at sign-up and confirmation (consent evidence, Art. 7(1))',
      'Consent history per topic, with the consent text version shown',
      'Messages sent to you (Message-IDs, times, campaign subjects)',
      'Suppression entries (a keyed hash of your address, never the address itself)',
    ],
    recipients: 'The mail relays that deliver messages on the controller\'s behalf (processors, Art. 28); no one else.',
    retention:
      'Profile and consent evidence are kept while you are subscribed to any topic and erased on request (Art. 17). ' +
      'Consent events are kept as proof of consent (Art. 7(1)); after erasure only ciphertext and hashes remain, unreadable without your deleted key. ' +
      'A suppression entry (a keyed hash, no address) is kept so that you are never mailed again. Backups expire on their own schedule.',
    rights: [
      'Withdraw consent at any time, as easily as it was given (Art. 7(3))',
      'Access (Art. 15)',
      'Rectification (Art. 16)',
      'Erasure (Art. 17)',
      'Restriction of processing (Art. 18)',
      'Data portability (Art. 20)',
      'Object to direct marketing, absolutely (Art. 21(2)-(3))',
      'Lodge a complaint with a supervisory authority (Art. 77)',
    ],
    // An import's method names its file (`import:<file>`, EDPB-02): described as an import.
    source: methods.map((method) => ({
      method,
      description: SOURCES[method] ?? SOURCES[method.split(':')[0]!] ?? 'Recorded by the controller; see the event evidence.',
    })),
    automated_decisions: 'None: no automated decision-making or profiling with legal or similar effects (Art. 22).',
  };
}
