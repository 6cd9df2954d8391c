/**
 * Which CSV column holds which contact field. Pure: a header row (and the
 * operator's --map overrides) in, column indexes out.
 */
import { AppError } from '../shared/errors.js';

export const importFields = [
  'email',
  'first_name',
  'last_name',
  'locale',
  'status',
  'optin_time',
  'optin_ip',
  'confirm_time',
  'confirm_ip',
  'unsub_time',
  'clean_time',
  'opted_out',
] as const;
export type ImportField = (typeof importFields)[number];
export type ColumnMap = Partial<Record<ImportField, number>>;
export type MapOverrides = Partial<Record<ImportField, string>>;

/**
 * Header names of common exports (Mailchimp, Brevo/Sendinblue, MailerLite,
 * Constant Contact, Excel lists), compared without case, spaces or
 * punctuation. Order is preference: the first alias found wins. MEMBER_RATING
 * and the like are deliberately absent: they are not a subscription status.
 */
const aliases: Record<ImportField, readonly string[]> = {
  email: ['email', 'emailaddress', 'mail', 'mailaddress', 'emailadresse', 'courriel'],
  first_name: ['firstname', 'fname', 'givenname', 'first', 'vorname', 'prenom'],
  last_name: ['lastname', 'lname', 'surname', 'familyname', 'last', 'nachname', 'nom'],
  locale: ['locale', 'language', 'lang', 'preferredlanguage'],
  status: ['status', 'subscriptionstatus', 'emailstatus', 'memberstatus', 'subscriberstatus'],
  optin_time: ['optintime', 'optindate', 'optedinat', 'subscribedat', 'signupdate', 'dateadded'],
  optin_ip: ['optinip', 'signupip', 'subscribeip'],
  confirm_time: ['confirmtime', 'confirmedat', 'confirmationdate'],
  confirm_ip: ['confirmip', 'confirmationip'],
  // Mailchimp's per-status exports carry no status column: the unsubscribed
  // one is recognised by UNSUB_TIME, the cleaned (hard-bounced) one by CLEAN_TIME.
  unsub_time: ['unsubtime', 'unsubscribedat', 'unsubscribetime', 'unsubscribedate', 'optouttime', 'optoutdate', 'optedoutat'],
  clean_time: ['cleantime', 'cleanedat', 'bouncedat', 'bouncetime', 'bouncedate'],
  // A yes/no opt-out flag, as CRMs export it (Salesforce "Email Opt Out",
  // HubSpot "Unsubscribed from all email", block-list columns).
  opted_out: [
    'emailoptout',
    'hasoptedoutofemail',
    'optedout',
    'unsubscribed',
    'isunsubscribed',
    'emailunsubscribed',
    'unsubscribedfromallemail',
    'globalunsubscribe',
    'donotemail',
    'donotcontact',
    'blocklisted',
    'blacklisted',
    'emailblacklisted',
  ],
};

/** Header text compared loosely: "E-Mail Address" and "email_address" are the same. */
export function headerKey(name: string): string {
  return name.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Parses `email=Col,first_name=Col 2` (also given as several --map options). */
export function parseMapOption(specs: readonly string[]): MapOverrides {
  const out: MapOverrides = {};
  for (const pair of specs.flatMap((s) => s.split(',')).filter((p) => p.trim() !== '')) {
    const eq = pair.indexOf('=');
    const field = pair.slice(0, eq).trim().toLowerCase();
    const column = pair.slice(eq + 1).trim();
    if (eq < 1 || column === '') throw new AppError('validation_failed', `--map expects field=column pairs, got "${pair}"`);
    if (!(importFields as readonly string[]).includes(field)) {
      throw new AppError('validation_failed', `--map: unknown field "${field}" (fields: ${importFields.join(', ')})`);
    }
    out[field as ImportField] = column;
  }
  return out;
}

/**
 * Resolves every field to a column: an override names its column exactly
 * (case-insensitive); otherwise the aliases are tried. An import without an
 * email column, or with an override naming no column, cannot start.
 */
export function resolveColumns(header: readonly string[], overrides: MapOverrides): ColumnMap {
  const columns: ColumnMap = {};
  const keys = header.map(headerKey);
  for (const field of importFields) {
    const wanted = overrides[field];
    if (wanted !== undefined) {
      const index = header.findIndex((h) => h.trim().toLowerCase() === wanted.toLowerCase());
      if (index < 0) throw new AppError('validation_failed', `--map ${field}=${wanted}: the file has no column "${wanted}"`);
      columns[field] = index;
      continue;
    }
    for (const alias of aliases[field]) {
      const index = keys.indexOf(alias);
      if (index >= 0 && !Object.values(columns).includes(index)) {
        columns[field] = index;
        break;
      }
    }
  }
  if (columns.email === undefined) {
    throw new AppError('validation_failed', 'the file has no email column; name it with --map email=COLUMN');
  }
  return columns;
}
