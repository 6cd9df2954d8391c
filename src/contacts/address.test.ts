import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { aliasKeys, parseAddress, parseAddressExact, type AddressRejection, type ParsedAddress } from './address.js';

interface CorpusRow {
  address: string;
  expected: 'valid' | 'invalid';
  consensus: boolean;
  needs_smtputf8: boolean;
  normalized: string;
}

// shared/ always sits beside the clone (../shared from the repo root).
const corpus: CorpusRow[] = readFileSync(new URL('../../../shared/corpora/emails.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as CorpusRow);

const consensus = corpus.filter((row) => row.consensus);
const contested = corpus.filter((row) => !row.consensus);

type Valid = Extract<ParsedAddress, { ok: true }>;

function valid(input: string): Valid {
  const result = parseAddress(input);
  if (!result.ok) assert.fail(`${JSON.stringify(input)} rejected (${result.reason}): ${result.message}`);
  return result;
}

function rejection(input: string): AddressRejection {
  const result = parseAddress(input);
  if (result.ok) assert.fail(`${JSON.stringify(input)} accepted as ${result.address}`);
  return result.reason;
}

// The corpus judges the exact string, so rows are parsed without the
// form-field trimming that parseAddress adds (tested separately below).
function verdict(row: CorpusRow): 'valid' | 'invalid' {
  return parseAddressExact(row.address).ok ? 'valid' : 'invalid';
}

test('ADR-01/ADR-02 corpus: every consensus row gets the expected answer', (t) => {
  assert.ok(consensus.length > 400, `corpus has only ${consensus.length} consensus rows`);
  const failures = consensus
    .filter((row) => verdict(row) !== row.expected)
    .map((row) => `${JSON.stringify(row.address)}: expected ${row.expected}`);
  t.diagnostic(`consensus rows: ${consensus.length - failures.length}/${consensus.length} agree`);
  assert.deepEqual(failures, []);
});

test('ADR-05 corpus: needsSmtpUtf8 matches the corpus for every consensus-valid row', () => {
  const failures = consensus
    .filter((row) => row.expected === 'valid')
    .filter((row) => valid(row.address).needsSmtpUtf8 !== row.needs_smtputf8)
    .map((row) => JSON.stringify(row.address));
  assert.deepEqual(failures, []);
});

test('ADR-03/ADR-04 corpus: the entered form and the reference normalised form share a match key', () => {
  const failures = consensus
    .filter((row) => row.expected === 'valid')
    .filter((row) => valid(row.address).matchKey !== valid(row.normalized).matchKey)
    .map((row) => `${JSON.stringify(row.address)} vs ${JSON.stringify(row.normalized)}`);
  assert.deepEqual(failures, []);
});

test('ADR-01 corpus: agreement on rows where validators differ (informational)', (t) => {
  const disagreements = contested.filter((row) => verdict(row) !== row.expected);
  const summary = `non-consensus rows: ${contested.length - disagreements.length}/${contested.length} agree`;
  t.diagnostic(summary);
  for (const row of disagreements) t.diagnostic(`  differs: ${JSON.stringify(row.address)} (corpus: ${row.expected})`);
  console.log(summary);
});

test('form input: surrounding ASCII whitespace is trimmed, inner whitespace is not', () => {
  assert.equal(valid(' Bob@Example.com\r\n').address, 'Bob@example.com');
  assert.equal(valid('\tbob@example.com ').matchKey, 'bob@example.com');
  assert.deepEqual(parseAddressExact(' bob@example.com'), {
    ok: false,
    reason: 'whitespace_or_control',
    message: 'An email address cannot contain spaces, line breaks or control characters.',
  });
  assert.equal(rejection('bob @example.com'), 'whitespace_or_control');
  assert.equal(rejection('bob@exa\u00a0mple.com'), 'whitespace_or_control');
  assert.equal(rejection('\u00a0bob@example.com'), 'whitespace_or_control');
});

test('ADR-02 lengths: local part 64 octets accepted, 65 rejected', () => {
  assert.equal(valid(`${'a'.repeat(64)}@example.com`).address, `${'a'.repeat(64)}@example.com`);
  assert.equal(rejection(`${'a'.repeat(65)}@example.com`), 'local_too_long');
  // Octets, not characters: 32 × "é" is 64 octets, 33 × "é" is 66.
  assert.equal(valid(`${'é'.repeat(32)}@example.com`).needsSmtpUtf8, true);
  assert.equal(rejection(`${'é'.repeat(33)}@example.com`), 'local_too_long');
});

test('ADR-02 lengths: whole address 254 octets accepted, 255 rejected', () => {
  const domain = (last: number): string => `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(last)}.com`;
  const at254 = `${'a'.repeat(64)}@${domain(57)}`;
  const at255 = `${'a'.repeat(64)}@${domain(58)}`;
  assert.equal(at254.length, 254);
  assert.equal(at255.length, 255);
  assert.equal(valid(at254).address, at254);
  assert.deepEqual(parseAddress(at255), { ok: false, reason: 'too_long', message: 'The address is 255 bytes long; the limit is 254.' });
  assert.equal(rejection(`a@${'e'.repeat(64)}.com`), 'domain_label_too_long');
});

test('ADR-03 case: match key is lower-cased, the address keeps the local part as entered', () => {
  const upper = valid('Bob@Example.COM');
  const lower = valid('bob@example.com');
  assert.deepEqual(upper, {
    ok: true,
    address: 'Bob@example.com',
    matchKey: 'bob@example.com',
    providerKey: null,
    needsSmtpUtf8: false,
    domainAscii: 'example.com',
  });
  assert.equal(lower.address, 'bob@example.com');
  assert.equal(upper.matchKey, lower.matchKey);
});

test('ADR-04 IDN: U-label and A-label domains share a match key', () => {
  const unicode = valid('user@bücher.de');
  const ascii = valid('user@xn--bcher-kva.de');
  assert.equal(unicode.matchKey, 'user@xn--bcher-kva.de');
  assert.equal(ascii.matchKey, 'user@xn--bcher-kva.de');
  assert.equal(unicode.address, 'user@bücher.de');
  assert.equal(ascii.address, 'user@xn--bcher-kva.de');
  assert.equal(unicode.domainAscii, 'xn--bcher-kva.de');
  assert.equal(valid('User@BÜCHER.de').address, 'User@bücher.de');
  assert.equal(valid('user@bu\u0308cher.de').matchKey, 'user@xn--bcher-kva.de');
  // UTS #46 maps full-width letters, so this is a Gmail address.
  assert.deepEqual(valid('somename@ｇｍａｉｌ.com'), {
    ok: true,
    address: 'somename@gmail.com',
    matchKey: 'somename@gmail.com',
    providerKey: 'somename@gmail.com',
    needsSmtpUtf8: false,
    domainAscii: 'gmail.com',
  });
});

test('ADR-05 SMTPUTF8: non-ASCII local parts need it and are stored in NFC', () => {
  assert.equal(valid('hans.m端ller@test.com').needsSmtpUtf8, true);
  assert.equal(valid('user@bücher.de').needsSmtpUtf8, false);
  const decomposed = valid('Jose\u0301@example.com');
  assert.equal(decomposed.address, 'Jos\u00e9@example.com');
  assert.equal(decomposed.matchKey, valid('jos\u00e9@example.com').matchKey);
  assert.equal(decomposed.needsSmtpUtf8, true);
});

test('ADR-06/ADR-07 provider aliases: Gmail variants share a provider key, others are not canonicalised', () => {
  const tagged = valid('a.b+news@gmail.com');
  const plain = valid('ab@googlemail.com');
  assert.equal(tagged.providerKey, 'ab@gmail.com');
  assert.equal(plain.providerKey, 'ab@gmail.com');
  assert.notEqual(tagged.matchKey, plain.matchKey);
  assert.equal(valid('A.B+News@GoogleMail.com').providerKey, 'ab@gmail.com');
  const other = valid('a+x@example.com');
  assert.equal(other.providerKey, null);
  assert.equal(other.matchKey, 'a+x@example.com');
});

test('ADR-07 aliasKeys: the match key plus the provider key when it differs', () => {
  assert.deepEqual(aliasKeys('a.b+news@gmail.com'), ['a.b+news@gmail.com', 'ab@gmail.com']);
  assert.deepEqual(aliasKeys('a.b@googlemail.com'), ['a.b@googlemail.com', 'ab@gmail.com']);
  assert.deepEqual(aliasKeys('ab@gmail.com'), ['ab@gmail.com']);
  assert.deepEqual(aliasKeys('a+x@example.com'), ['a+x@example.com']);
  assert.deepEqual(aliasKeys('+news@gmail.com'), ['+news@gmail.com']);
});

test('ADR-01 rejections: each policy gives its stable reason and a sentence for a person', () => {
  const cases: Array<[string, AddressRejection]> = [
    ['', 'empty'],
    ['test.example.com', 'no_at_sign'],
    ['hello＠example.com', 'no_at_sign'],
    ['@example.com', 'missing_local_part'],
    ['test@', 'missing_domain'],
    ['Name <me@example.com>', 'display_name'],
    ['"quoted"@example.com', 'quoted_local_part'],
    ['"a@b"@example.com', 'quoted_local_part'],
    ['test@[192.0.2.1]', 'domain_literal'],
    ['test@[IPv6:2001:db8::1]', 'domain_literal'],
    ['me(comment)@example.com', 'comment'],
    ['a\u0007b@example.com', 'whitespace_or_control'],
    ['a\u200bb@example.com', 'unsafe_unicode'],
    ['a\u202eb@example.com', 'unsafe_unicode'],
    ['\u0301a@example.com', 'unsafe_unicode'],
    ['a\u{E0001}@example.com', 'unsafe_unicode'],
    ['\ud800@example.com', 'unsafe_unicode'],
    ['a..b@example.com', 'bad_local_part'],
    ['.a@example.com', 'bad_local_part'],
    ['a\\b@example.com', 'bad_local_part'],
    ['\u226eme@example.com', 'bad_local_part'],
    ['me\u037e@example.com', 'bad_local_part'],
    ['a@b@example.com', 'bad_domain'],
    ['test@example.com.', 'bad_domain'],
    ['test@-example.com', 'bad_domain'],
    ['test@exa_mple.com', 'bad_domain'],
    ['test@yy--0.com', 'bad_domain'],
    ['test@xn--0.com', 'bad_domain'],
    ['test@example.com\u00a9', 'bad_domain'],
    ['test@io', 'single_label_domain'],
    ['test@localhost', 'single_label_domain'],
    ['test@example.123', 'bad_tld'],
    ['test@192.0.2.1', 'bad_tld'],
    ['me@link.local', 'reserved_domain'],
    ['me@x.onion', 'reserved_domain'],
    ['me@example.test', 'reserved_domain'],
    ['me@1.0.0.127.in-addr.arpa', 'reserved_domain'],
  ];
  for (const [input, reason] of cases) {
    const result = parseAddress(input);
    assert.equal(result.ok ? 'accepted' : result.reason, reason, JSON.stringify(input));
    if (!result.ok) assert.match(result.message, /^[A-Z].*\.$/, JSON.stringify(input));
  }
});
