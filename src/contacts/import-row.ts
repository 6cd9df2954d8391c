/**
 * One CSV record checked and normalised into an import row, or the reason it
 * cannot be imported. Pure. Reasons and details never carry the address: the
 * report is shared with people who need not see it (GDPR Art. 5(1)(f)).
 */
import { isIP } from 'node:net';
import { parseAddress } from './address.js';
import { severity, type RestrictiveStatus } from './import-merge.js';
import type { CsvRecord } from './import-csv.js';
import type { ColumnMap } from './import-mapping.js';

/** What a legacy list says about a person, reduced to what Assent acts on. */
export type DeclaredStatus = 'subscribed' | 'unsubscribed' | 'bounced' | 'complained' | 'not_subscribed';

export type RowReason =
  | 'empty_row'
  | 'bad_quoting'
  | 'unclosed_quote'
  | 'record_too_long'
  | 'column_count'
  | 'undecodable'
  | 'bad_address'
  | 'unknown_status';

export interface ImportRow {
  row: number;
  line: number;
  /** As entered, normalised (ADR-03): sending uses it verbatim. */
  address: string;
  matchKey: string;
  providerKey: string | null;
  status: Exclude<DeclaredStatus, 'not_subscribed'>;
  /** The status cell as written, for the evidence (or the default applied). */
  declaredStatus: string;
  firstName: string | null;
  lastName: string | null;
  locale: string | null;
  optinTime: string | null;
  optinIp: string | null;
  confirmTime: string | null;
  confirmIp: string | null;
}

/**
 * A row not applied: an error, or a row that declares no consent at all; or
 * a warning about a row that was applied (`declared_evidence_unreadable`).
 */
export interface RowNote {
  row: number;
  line: number;
  reason: RowReason | 'not_subscribed' | 'suppressed' | typeof EVIDENCE_WARNING;
  detail: string;
}

/** The reason of the warning note: the row was imported, its declared opt-in evidence kept as written, and some of it cannot be read. */
export const EVIDENCE_WARNING = 'declared_evidence_unreadable';

/** A declared time later than this past the import is not a past opt-in. */
const FUTURE_SLACK_MS = 86_400_000;

/**
 * Checks what a row declares about its opt-in (times and IPs), which the
 * evidence keeps exactly as written: a time that is no date or lies in the
 * future, an IP that is no IPv4 or IPv6 address. The warning names the
 * columns, never their values (an IP is personal data; the report is shared).
 */
export function declaredEvidenceNote(row: ImportRow, now: Date): RowNote | null {
  const unreadable: string[] = [];
  const time = (field: string, value: string | null) => {
    if (value === null) return;
    const at = Date.parse(value);
    if (Number.isNaN(at) || at > now.getTime() + FUTURE_SLACK_MS) unreadable.push(field);
  };
  const ip = (field: string, value: string | null) => {
    if (value !== null && isIP(value) === 0) unreadable.push(field);
  };
  time('optin_time', row.optinTime);
  ip('optin_ip', row.optinIp);
  time('confirm_time', row.confirmTime);
  ip('confirm_ip', row.confirmIp);
  return unreadable.length === 0 ? null : { row: row.row, line: row.line, reason: EVIDENCE_WARNING, detail: `${unreadable.join(', ')}: kept as written` };
}

/**
 * Status words of common exports. Mailchimp: subscribed / unsubscribed /
 * cleaned (hard bounced) / pending (never confirmed) / transactional /
 * archived. "pending" and the like declare no consent, so they import nothing.
 * A block list entry (listmonk's "blocklisted", "do not contact" elsewhere)
 * keeps the person from all mail: recorded as an objection, so suppressed
 * for everything. listmonk's "enabled" says nothing about any list's
 * subscription and stays unknown (an error row: map a status column instead).
 */
const statusWords: Record<string, DeclaredStatus> = {
  subscribed: 'subscribed', subscriber: 'subscribed', active: 'subscribed', optedin: 'subscribed', optin: 'subscribed', confirmed: 'subscribed',
  unsubscribed: 'unsubscribed', unsubscribe: 'unsubscribed', unsub: 'unsubscribed', optedout: 'unsubscribed', optout: 'unsubscribed', removed: 'unsubscribed', objected: 'unsubscribed',
  blocklisted: 'unsubscribed', blacklisted: 'unsubscribed', blocked: 'unsubscribed', donotcontact: 'unsubscribed', donotemail: 'unsubscribed', dnc: 'unsubscribed', suppressed: 'unsubscribed',
  cleaned: 'bounced', bounced: 'bounced', hardbounce: 'bounced', hardbounced: 'bounced', bounce: 'bounced', undeliverable: 'bounced',
  complained: 'complained', complaint: 'complained', spam: 'complained', spamreport: 'complained', abuse: 'complained',
  pending: 'not_subscribed', unconfirmed: 'not_subscribed', nonsubscribed: 'not_subscribed', transactional: 'not_subscribed', archived: 'not_subscribed', disabled: 'not_subscribed',
};

export function parseStatus(text: string): DeclaredStatus | null {
  return statusWords[text.toLowerCase().replace(/[^a-z]/g, '')] ?? null;
}

const MAX_TEXT = 100;
const CONTROL = /\p{Cc}/u;

export interface RowContext {
  row: number;
  columns: ColumnMap;
  /** Fields in the header row. */
  width: number;
  /** Applied when the file has no status column (e.g. Mailchimp's per-status exports). */
  defaultStatus: DeclaredStatus;
}

/** Checks one record, in the order a person would fix them: shape, then bytes, then the address, then the status. */
export function readRow(record: CsvRecord, ctx: RowContext): ImportRow | RowNote {
  const { fields } = record;
  if (isBlank(fields)) return note(ctx, record, 'empty_row');
  if (record.fault) return note(ctx, record, record.fault);
  if (fields.length !== ctx.width) return note(ctx, record, 'column_count', `expected ${ctx.width} fields, found ${fields.length}`);
  for (const field of fields) if (field.includes('\uFFFD')) return note(ctx, record, 'undecodable', 'bytes that are not valid in the file encoding');
  const { columns } = ctx;
  const parsed = parseAddress(cell(fields, columns.email) ?? '');
  if (!parsed.ok) return note(ctx, record, 'bad_address', parsed.reason);
  const statusText = cell(fields, columns.status);
  const declared = statusText ?? (columns.status === undefined ? ctx.defaultStatus : null);
  // The --status default is already a status; a cell is read as a word.
  const stated = statusText !== null ? parseStatus(statusText) : columns.status === undefined ? ctx.defaultStatus : null;
  const markers = restrictiveMarkers(fields, columns);
  const status = markers.length === 0 ? stated : mostRestrictive([...markers.map((m) => m.status), ...(stated !== null && stated in severity ? [stated] : [])]);
  if (status === null) return note(ctx, record, 'unknown_status', statusText === null ? 'empty' : printable(statusText));
  if (status === 'not_subscribed') return note(ctx, record, 'not_subscribed', printable(declared ?? ''));
  return {
    row: ctx.row,
    line: record.line,
    address: parsed.address,
    matchKey: parsed.matchKey,
    providerKey: parsed.providerKey,
    status,
    declaredStatus: [declared, ...markers.map((m) => m.declared)].filter((d) => d !== null && d !== '').join('; '),
    firstName: text(cell(fields, columns.first_name)),
    lastName: text(cell(fields, columns.last_name)),
    locale: normaliseLocale(cell(fields, columns.locale)),
    optinTime: text(cell(fields, columns.optin_time)),
    optinIp: text(cell(fields, columns.optin_ip)),
    confirmTime: text(cell(fields, columns.confirm_time)),
    confirmIp: text(cell(fields, columns.confirm_ip)),
  };
}

/** The values of an opt-out flag that say "not opted out"; any other non-empty value says they are (erring towards not sending). */
const NO = new Set(['no', 'n', 'false', 'f', '0', 'nein', 'non', 'off', '-']);

/**
 * An opt-out flag that is set, or a time in an unsubscribe or clean column,
 * says the person left or bounced, whatever a status column or the --status
 * default says: an import never raises consent, so the most restrictive
 * reading of the row wins (DESIGN.md, flow 2), among its markers and its
 * status alike. Mailchimp's unsubscribed and cleaned exports have no status
 * column, only these times; imported as "subscribed" they would ask people
 * who left to opt in again.
 */
function restrictiveMarkers(fields: readonly string[], columns: ColumnMap): { status: 'unsubscribed' | 'bounced'; declared: string }[] {
  const out: { status: 'unsubscribed' | 'bounced'; declared: string }[] = [];
  const flag = text(cell(fields, columns.opted_out));
  if (flag !== null && !NO.has(flag.toLowerCase())) out.push({ status: 'unsubscribed', declared: `opted_out=${flag}` });
  const unsub = text(cell(fields, columns.unsub_time));
  if (unsub !== null) out.push({ status: 'unsubscribed', declared: `unsub_time=${unsub}` });
  const clean = text(cell(fields, columns.clean_time));
  if (clean !== null) out.push({ status: 'bounced', declared: `clean_time=${clean}` });
  return out;
}

/** The least liftable of the statuses, in the merge rule's order (complaint > bounce > unsubscribe). */
function mostRestrictive(statuses: readonly DeclaredStatus[]): DeclaredStatus {
  const rank = (s: DeclaredStatus) => (s in severity ? severity[s as RestrictiveStatus] : 0);
  return statuses.reduce((best, s) => (rank(s) > rank(best) ? s : best));
}

function note(ctx: RowContext, record: CsvRecord, reason: RowNote['reason'], detail = ''): RowNote {
  return { row: ctx.row, line: record.line, reason, detail };
}

function isBlank(fields: readonly string[]): boolean {
  for (const field of fields) if (field.trim() !== '') return false;
  return true;
}

/** A field's trimmed text, or null when the column is absent or the cell empty. */
function cell(fields: readonly string[], index: number | undefined): string | null {
  if (index === undefined) return null;
  const value = (fields[index] ?? '').trim();
  return value === '' ? null : value;
}

/** A BCP 47 tag in canonical form ("en_GB" → "en-GB"), or null when it is none. */
export function normaliseLocale(value: string | null): string | null {
  if (value === null) return null;
  try {
    return Intl.getCanonicalLocales(value.replace(/_/g, '-'))[0] ?? null;
  } catch {
    return null;
  }
}

/** Free text kept within bounds and without control characters. */
function text(value: string | null): string | null {
  if (value === null) return null;
  if (value.length <= MAX_TEXT && !CONTROL.test(value)) return value;
  const clean = value.replace(/\p{Cc}/gu, ' ').trim().slice(0, MAX_TEXT);
  return clean === '' ? null : clean;
}

/** A cell quoted in a report detail: short and printable, and never an address (the report is shared; Art. 5(1)(f)). */
function printable(value: string): string {
  if (/[@\uFF20]/u.test(value)) return '(withheld: holds an @)';
  return value.replace(/[^\p{L}\p{N} _.-]/gu, '?').slice(0, 40);
}
