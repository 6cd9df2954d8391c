import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../shared/errors.js';
import { parseMapOption, resolveColumns, type ColumnMap } from './import-mapping.js';
import { declaredEvidenceNote, normaliseLocale, parseStatus, readRow, type ImportRow, type RowContext } from './import-row.js';

const mailchimp = ['Email Address', 'First Name', 'Last Name', 'MEMBER_RATING', 'OPTIN_TIME', 'OPTIN_IP', 'CONFIRM_TIME', 'CONFIRM_IP', 'LANGUAGE', 'status'];

test('default mapping: Mailchimp export headers', () => {
  assert.deepEqual(resolveColumns(mailchimp, {}), {
    email: 0, first_name: 1, last_name: 2, optin_time: 4, optin_ip: 5, confirm_time: 6, confirm_ip: 7, locale: 8, status: 9,
  });
});

test('default mapping: other spellings (e-mail, fname/lname, language, subscription status, optin_date)', () => {
  assert.deepEqual(resolveColumns(['E-Mail', 'fname', 'lname', 'Language', 'Subscription Status', 'optin_date'], {}), {
    email: 0, first_name: 1, last_name: 2, locale: 3, status: 4, optin_time: 5,
  });
  assert.deepEqual(resolveColumns(['FirstName', 'email_address', 'LastName'], {}), { email: 1, first_name: 0, last_name: 2 });
});

test('--map overrides name columns exactly; unknown fields, missing columns and a missing email column are refused', () => {
  const map = parseMapOption(['email=Contact,first_name=Given', 'status=State']);
  assert.deepEqual(map, { email: 'Contact', first_name: 'Given', status: 'State' });
  assert.deepEqual(resolveColumns(['Given', 'Email', 'contact', 'State'], map), { email: 2, first_name: 0, status: 3 });
  const refused = (fn: () => unknown, message: RegExp) => assert.throws(fn, (e) => isAppError(e, 'validation_failed') && message.test(e.message));
  refused(() => parseMapOption(['phone=Tel']), /unknown field "phone"/);
  refused(() => parseMapOption(['email']), /field=column pairs/);
  refused(() => resolveColumns(['Email'], { first_name: 'Vorname' }), /no column "Vorname"/);
  refused(() => resolveColumns(['Name', 'Phone'], {}), /no email column/);
});

test('status words: Mailchimp statuses and common synonyms; block lists suppress; pending and disabled declare no consent; unknown is null', () => {
  const cases: [string, string | null][] = [
    ['subscribed', 'subscribed'], ['Active', 'subscribed'], ['opted-in', 'subscribed'],
    ['unsubscribed', 'unsubscribed'], ['Opted Out', 'unsubscribed'],
    ['blocklisted', 'unsubscribed'], ['Blacklisted', 'unsubscribed'], ['do-not-contact', 'unsubscribed'], ['DNC', 'unsubscribed'],
    ['disabled', 'not_subscribed'], ['enabled', null],
    ['cleaned', 'bounced'], ['hard_bounce', 'bounced'],
    ['complained', 'complained'], ['spam', 'complained'],
    ['pending', 'not_subscribed'], ['transactional', 'not_subscribed'], ['archived', 'not_subscribed'],
    ['maybe', null], ['4', null],
  ];
  for (const [text, expected] of cases) assert.equal(parseStatus(text), expected, text);
});

test('locales are canonical BCP 47 or null', () => {
  assert.deepEqual(['en_GB', 'DE', 'pt-br', 'not a locale', null].map(normaliseLocale), ['en-GB', 'de', 'pt-BR', null, null]);
});

const ctx: RowContext = { row: 7, columns: resolveColumns(mailchimp, {}), width: mailchimp.length, defaultStatus: 'subscribed' };
const record = (fields: string[], fault: 'bad_quoting' | null = null) => ({ fields, line: 9, fault });
const full = (over: Partial<Record<number, string>> = {}) => {
  const base = [' Ann.Lee@Example.ORG ', 'Ann', 'Lee', '4', '2020-01-02 03:04:05', '203.0.113.5', '2020-01-02 03:05:00', '198.51.100.7', 'en_GB', 'subscribed'];
  return base.map((v, i) => over[i] ?? v);
};

test('a good row is normalised: address as entered (domain lower-cased), match key, trimmed fields, declared opt-in data kept', () => {
  assert.deepEqual(readRow(record(full()), ctx), {
    row: 7, line: 9, address: 'Ann.Lee@example.org', matchKey: 'ann.lee@example.org', providerKey: null,
    status: 'subscribed', declaredStatus: 'subscribed', firstName: 'Ann', lastName: 'Lee', locale: 'en-GB',
    optinTime: '2020-01-02 03:04:05', optinIp: '203.0.113.5', confirmTime: '2020-01-02 03:05:00', confirmIp: '198.51.100.7',
  });
});

test('per-row errors: each reason, with a detail that never holds the address', () => {
  const cases: [string[] | ReturnType<typeof record>, string, string][] = [
    [['', ' ', '', '', '', '', '', '', '', ''], 'empty_row', ''],
    [[''], 'empty_row', ''],
    [record(full(), 'bad_quoting'), 'bad_quoting', ''],
    [['a@example.org', 'x'], 'column_count', 'expected 10 fields, found 2'],
    [full({ 1: 'Ren\uFFFD' }), 'undecodable', 'bytes that are not valid in the file encoding'],
    [full({ 0: 'secret.person(at)example.org' }), 'bad_address', 'no_at_sign'],
    [full({ 0: 'secret@localhost' }), 'bad_address', 'single_label_domain'],
    [full({ 9: 'VIP <b>' }), 'unknown_status', 'VIP ?b?'],
    [full({ 9: '' }), 'unknown_status', 'empty'],
    [full({ 9: 'pending' }), 'not_subscribed', 'pending'],
  ];
  for (const [input, reason, detail] of cases) {
    const result = readRow(Array.isArray(input) ? record(input) : input, ctx);
    assert.deepEqual(result, { row: 7, line: 9, reason, detail }, `${reason}: ${JSON.stringify(input)}`);
  }
});

test('without a status column every row takes the default status (e.g. a Mailchimp "unsubscribed" export)', () => {
  const header = ['Email Address', 'First Name'];
  const row = readRow(record(['a@example.org', 'A']), { row: 1, columns: resolveColumns(header, {}), width: 2, defaultStatus: 'unsubscribed' });
  assert.ok('address' in row);
  assert.deepEqual([row.status, row.declaredStatus], ['unsubscribed', 'unsubscribed']);
});

test('every --status default applies as given, "pending" (no consent) included: a not-subscribed skip, not an error', () => {
  const columns = resolveColumns(['Email Address', 'First Name'], {});
  for (const defaultStatus of ['subscribed', 'unsubscribed', 'bounced', 'complained'] as const) {
    const row = readRow(record(['a@example.org', 'A']), { row: 1, columns, width: 2, defaultStatus });
    assert.ok('address' in row, defaultStatus);
    assert.equal(row.status, defaultStatus);
  }
  assert.deepEqual(readRow(record(['a@example.org', 'A']), { row: 1, columns, width: 2, defaultStatus: 'not_subscribed' }), {
    row: 1, line: 9, reason: 'not_subscribed', detail: 'not_subscribed',
  });
});

test('a report detail never carries an address, even one typed into the status column', () => {
  for (const cellText of ['jane.doe@example.com', 'x＠example.com']) {
    assert.deepEqual(readRow(record(full({ 9: cellText })), ctx), { row: 7, line: 9, reason: 'unknown_status', detail: '(withheld: holds an @)' });
  }
});

test('GDPR-21: an unsubscribe or clean time wins over any status (Mailchimp per-status exports have only these); an unsubscribe outranks a bounce', () => {
  const header = ['Email Address', 'status', 'UNSUB_TIME', 'CLEAN_TIME'];
  const columns: ColumnMap = resolveColumns(header, {});
  assert.deepEqual({ ...columns }, { email: 0, status: 1, unsub_time: 2, clean_time: 3 });
  const read = (fields: string[], defaultStatus: RowContext['defaultStatus'] = 'subscribed', cols = columns) =>
    readRow(record(fields), { row: 1, columns: cols, width: fields.length, defaultStatus });
  const outcome = (fields: string[], defaultStatus?: RowContext['defaultStatus'], cols?: ColumnMap) => {
    const row = read(fields, defaultStatus, cols);
    return 'address' in row ? [row.status, row.declaredStatus] : [row.reason, row.detail];
  };
  assert.deepEqual(outcome(['a@example.org', 'subscribed', '2023-05-06 07:08:09', '']), ['unsubscribed', 'subscribed; unsub_time=2023-05-06 07:08:09']);
  assert.deepEqual(outcome(['a@example.org', 'subscribed', '', '2022-01-01']), ['bounced', 'subscribed; clean_time=2022-01-01']);
  // The most restrictive reading of the row, markers and status alike (complaint > bounce > unsubscribe, as the merge rule).
  assert.deepEqual(outcome(['a@example.org', 'complained', 'x', 'y']), ['complained', 'complained; unsub_time=x; clean_time=y']);
  assert.deepEqual(outcome(['a@example.org', 'unsubscribed', '', '2022-01-01']), ['bounced', 'unsubscribed; clean_time=2022-01-01']);
  assert.deepEqual(outcome(['a@example.org', 'bounced', '2023-01-01', '']), ['bounced', 'bounced; unsub_time=2023-01-01']);
  assert.deepEqual(outcome(['a@example.org', 'subscribed', '2023-01-01', '2022-01-01']), ['bounced', 'subscribed; unsub_time=2023-01-01; clean_time=2022-01-01']);
  assert.deepEqual(outcome(['a@example.org', 'pending', '2023-01-01', '']), ['unsubscribed', 'pending; unsub_time=2023-01-01'], 'a person who left is suppressed, not skipped');
  assert.deepEqual(outcome(['a@example.org', '', '2023-01-01', '']), ['unsubscribed', 'unsub_time=2023-01-01']);
  assert.deepEqual(outcome(['a@example.org', 'subscribed', ' ', '']), ['subscribed', 'subscribed'], 'an empty time is no marker');
  assert.deepEqual(outcome(['a@example.org', '', '', '']), ['unknown_status', 'empty']);
  // No status column: the default (even an explicit "subscribed") loses to the marker.
  const mailchimpUnsub = resolveColumns(['Email Address', 'OPTIN_TIME', 'UNSUB_TIME', 'UNSUB_CAMPAIGN_TITLE'], {});
  assert.deepEqual(outcome(['a@example.org', '2020-01-01', '2023-05-06', 'Spring'], 'subscribed', mailchimpUnsub), ['unsubscribed', 'subscribed; unsub_time=2023-05-06']);
  assert.deepEqual(resolveColumns(['email', 'Unsubscribed At', 'Cleaned At'], {}), { email: 0, unsub_time: 1, clean_time: 2 });
  assert.deepEqual(resolveColumns(['Email', 'Left'], parseMapOption(['unsub_time=Left'])), { email: 0, unsub_time: 1 });
});

test('GDPR-21: an opt-out flag column (CRM exports) suppresses when set; only a clear "no" or an empty cell leaves the row to its status', () => {
  const header = ['Email', 'Status', 'Email Opt Out'];
  const columns: ColumnMap = resolveColumns(header, {});
  assert.deepEqual({ ...columns }, { email: 0, status: 1, opted_out: 2 });
  const outcome = (flag: string) => {
    const row = readRow(record(['a@example.org', 'subscribed', flag]), { row: 1, columns, width: 3, defaultStatus: 'subscribed' });
    return 'address' in row ? [row.status, row.declaredStatus] : [row.reason];
  };
  for (const yes of ['1', 'true', 'Yes', 'X', 'ja', 'maybe']) assert.deepEqual(outcome(yes), ['unsubscribed', `subscribed; opted_out=${yes}`], yes);
  for (const no of ['0', 'false', 'No', 'nein', '', ' ']) assert.deepEqual(outcome(no), ['subscribed', 'subscribed'], JSON.stringify(no));
  assert.deepEqual({ ...resolveColumns(['E-mail', 'Unsubscribed from all email'], {}) }, { email: 0, opted_out: 1 });
  assert.deepEqual({ ...resolveColumns(['Email', 'HasOptedOutOfEmail'], {}) }, { email: 0, opted_out: 1 });
  assert.deepEqual({ ...resolveColumns(['Email', 'Unsubscribed'], {}) }, { email: 0, opted_out: 1 });
});

test('declared opt-in evidence that cannot be read is named in a warning (columns only, never values); readable evidence is not', () => {
  const now = new Date('2026-03-01T10:00:00.000Z');
  const good = readRow(record(full()), ctx) as ImportRow;
  assert.equal(declaredEvidenceNote(good, now), null);
  for (const optinTime of ['2020-01-02', '2020-01-02T03:04:05Z', '03/01/2024 10:00', '2026-03-02 09:00:00']) {
    assert.equal(declaredEvidenceNote({ ...good, optinTime }, now), null, optinTime);
  }
  assert.equal(declaredEvidenceNote({ ...good, optinIp: '2001:db8::5', confirmIp: null, confirmTime: null }, now), null);
  assert.deepEqual(declaredEvidenceNote({ ...good, optinTime: '2024-13-45 10:00:00', optinIp: '999.1.1.1' }, now), {
    row: 7, line: 9, reason: 'declared_evidence_unreadable', detail: 'optin_time, optin_ip: kept as written',
  });
  assert.deepEqual(declaredEvidenceNote({ ...good, confirmTime: '2031-01-01', confirmIp: 'unknown' }, now)?.detail, 'confirm_time, confirm_ip: kept as written', 'a future time is no past opt-in');
});
