/**
 * Row types of every table. Timestamps are ISO-8601 UTC strings of fixed
 * width on both databases, so they compare and sort as text; booleans are
 * 0/1 integers; JSON is text. One representation keeps one set of queries.
 */
import type { Generated, Insertable, Selectable } from 'kysely';

export interface TopicsTable {
  id: string;
  slug: string;
  name: string;
  description: string;
  is_public: number;
  created_at: string;
}

export interface ConsentTextsTable {
  id: string;
  topic_id: string;
  version: number;
  locale: string;
  body: string;
  sha256: string;
  created_at: string;
}

export interface FormsTable {
  id: string;
  slug: string;
  version: number;
  title: string;
  created_at: string;
}

export interface FormTopicsTable {
  form_id: string;
  topic_id: string;
  consent_text_id: string;
  position: number;
}

export interface ContactsTable {
  id: string;
  /** As entered: sending uses it verbatim (RFC 5321 §2.4). Null once erased. */
  address: string | null;
  match_key: string | null;
  provider_key: string | null;
  locale: string | null;
  created_at: string;
  erased_at: string | null;
}

export interface ContactKeysTable {
  contact_id: string;
  wrapped_key: string;
  created_at: string;
}

export interface ConsentEventsTable {
  seq: number;
  id: string;
  contact_id: string;
  topic_id: string | null;
  type: string;
  occurred_at: string;
  evidence: string;
  prev_hash: string;
  hash: string;
}

export interface LedgerHeadTable {
  id: number;
  seq: number;
  hash: string;
}

export interface ConsentStatesTable {
  contact_id: string;
  topic_id: string;
  state: string;
  since: string;
  event_seq: number;
}

export interface SuppressionsTable {
  key_hash: string;
  key_version: number;
  scope: string;
  reason: string;
  created_at: string;
  event_seq: number | null;
}

export interface ConfirmationTokensTable {
  id: string;
  token_hash: string;
  contact_id: string;
  form_id: string;
  topic_ids: string;
  throttle_key: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface MailLogTable {
  id: string;
  contact_id: string;
  kind: string;
  message_id: string;
  created_at: string;
}

export interface CampaignsTable {
  id: string;
  /** 'regular' | 'repermission' */
  kind: string;
  topic_id: string;
  template_name: string;
  template_version: number | null;
  subject: string;
  from_address: string;
  /** 'draft' | 'scheduled' | 'sending' | 'paused' | 'sent' | 'cancelled' */
  status: string;
  scheduled_at: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  materialised_at: string | null;
}

export interface DeliveriesTable {
  campaign_id: string;
  contact_id: string;
  /** 'queued' | 'claimed' | 'sent' | 'failed' | 'skipped' */
  status: string;
  lease_owner: string | null;
  lease_until: string | null;
  attempts: number;
  next_attempt_at: string;
  skip_reason: string | null;
  error: string | null;
  message_id: string | null;
  /** The consent event that allowed the send. */
  consent_event_seq: number | null;
  sent_at: string | null;
  updated_at: string;
}

export interface TemplatesTable {
  id: string;
  /** Versions of one template share the name; (name, version) is unique. */
  name: string;
  version: number;
  format: 'mjml' | 'html';
  source: string;
  sha256: string;
  created_at: string;
}

/** What only a re-permission campaign has (issue 5 point 4); a reminder's row names its parent. */
export interface RepermissionCampaignsTable {
  campaign_id: string;
  parent_id: string | null;
  deadline_at: string;
  reminder_at: string | null;
  reminder_sent_at: string | null;
  /** When the deadline job closed it: sending stopped and (for a root) every unanswered contact lapsed. */
  closed_at: string | null;
}

/** A contact an operator merged into another (probable duplicates); its states moved to `merged_into`. */
export interface ContactMergesTable {
  contact_id: string;
  merged_into: string;
  merged_at: string;
  /** The `merged` event on the kept contact. */
  event_seq: number;
}

export interface Tables {
  topics: TopicsTable;
  consent_texts: ConsentTextsTable;
  forms: FormsTable;
  form_topics: FormTopicsTable;
  contacts: ContactsTable;
  contact_keys: ContactKeysTable;
  consent_events: ConsentEventsTable;
  ledger_head: LedgerHeadTable;
  consent_states: ConsentStatesTable;
  suppressions: SuppressionsTable;
  confirmation_tokens: ConfirmationTokensTable;
  mail_log: MailLogTable;
  campaigns: CampaignsTable;
  deliveries: DeliveriesTable;
  templates: TemplatesTable;
  repermission_campaigns: RepermissionCampaignsTable;
  contact_merges: ContactMergesTable;
}

export type Topic = Selectable<TopicsTable>;
export type ConsentText = Selectable<ConsentTextsTable>;
export type Form = Selectable<FormsTable>;
export type Contact = Selectable<ContactsTable>;
export type ConsentEventRow = Selectable<ConsentEventsTable>;
export type NewConsentEventRow = Insertable<ConsentEventsTable>;
export type ConsentStateRow = Selectable<ConsentStatesTable>;
export type ConfirmationToken = Selectable<ConfirmationTokensTable>;
// Generated is re-exported for tables that later gain generated columns.
export type { Generated };

// Issue 5, import (migration 0004). Declared as an interface merge so the
// table list above stays untouched by this migration's author.

/** A contact's names, sealed under the contact's evidence key (shredded on erasure, Art. 17). */
export interface ContactNamesTable {
  contact_id: string;
  /** Sealed JSON of { first_name, last_name }. */
  sealed: string;
  updated_at: string;
}

/** One import run of one file into one topic; re-running the same file continues it. */
export interface ImportsTable {
  id: string;
  file_name: string;
  file_sha256: string;
  topic_id: string;
  /** Canonical JSON of the parse options (encoding, delimiter, mapping, default status). */
  options: string;
  /** 'running' | 'completed' */
  status: string;
  /** The last row of the last committed batch: the resume point. */
  rows_done: number;
  created_at: string;
  finished_at: string | null;
  /** JSON of the counters so far (cumulative over resumed runs). */
  summary: string;
}

/** A row an import did not apply, with its reason; never the address. */
export interface ImportRowsTable {
  import_id: string;
  row: number;
  line: number;
  reason: string;
  detail: string;
}

export interface Tables {
  contact_names: ContactNamesTable;
  imports: ImportsTable;
  import_rows: ImportRowsTable;
}

export type ImportRun = Selectable<ImportsTable>;
