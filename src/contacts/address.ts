/**
 * Email address parsing and normalisation (COMPLIANCE.md §6, ADR-01..ADR-07).
 *
 * Policy: python-email-validator in strict mode, without deliverability
 * checks: dot-atom local parts only, IDN domains and SMTPUTF8 local parts
 * allowed, anything that could make two people look like one (or one like
 * two) rejected. Pure: no I/O, no configuration.
 */
import { domainToASCII, domainToUnicode } from 'node:url';

export type AddressRejection =
  | 'empty'
  | 'no_at_sign'
  | 'missing_local_part'
  | 'missing_domain'
  | 'display_name'
  | 'quoted_local_part'
  | 'comment'
  | 'domain_literal'
  | 'whitespace_or_control'
  | 'unsafe_unicode'
  | 'local_too_long'
  | 'too_long'
  | 'bad_local_part'
  | 'bad_domain'
  | 'domain_label_too_long'
  | 'single_label_domain'
  | 'bad_tld'
  | 'reserved_domain';

export type ParsedAddress =
  | { ok: true; address: string; matchKey: string; providerKey: string | null; needsSmtpUtf8: boolean; domainAscii: string }
  | { ok: false; reason: AddressRejection; message: string };

type Rejected = Extract<ParsedAddress, { ok: false }>;
type Checked<T> = ({ ok: true } & T) | Rejected;

// RFC 5321 §4.5.3.1.1 (local part), RFC 1035 §2.3.4 (label), and the
// 256-octet path limit of §4.5.3.1.3 minus "<>" (RFC 3696 errata 1690).
const LOCAL_MAX_OCTETS = 64;
const LABEL_MAX_OCTETS = 63;
const ADDRESS_MAX_OCTETS = 254;

// RFC 5322 §3.2.3 atext; RFC 6531 §3.3 adds every non-ASCII code point.
const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~";
const LOCAL_CHAR = new RegExp(`[${ATEXT}.\\u0080-\\u{10FFFF}]`, 'u');
const ASCII_LOCAL_CHAR = new RegExp(`[${ATEXT}.]`);

// Special-use names (RFC 6761, 6762, 7686, 9476; ICANN's .internal): no
// globally deliverable mailbox can live under them.
const RESERVED_TLDS = new Set(['arpa', 'invalid', 'local', 'localhost', 'onion', 'test', 'alt', 'internal']);

// Gmail ignores dots and "+tag" and treats googlemail.com as gmail.com
// (ADR-06). Only these are canonicalised: other providers' rules differ.
const ALIASING_PROVIDERS: ReadonlyMap<string, string> = new Map([
  ['gmail.com', 'gmail.com'],
  ['googlemail.com', 'gmail.com'],
]);

const encoder = new TextEncoder();
const octets = (s: string): number => encoder.encode(s).length;
const isAscii = (s: string): boolean => /^[\x00-\x7f]*$/.test(s);
const reject = (reason: AddressRejection, message: string): Rejected => ({ ok: false, reason, message });

/** Parses an address typed into a form or a CSV cell: surrounding whitespace is dropped first. */
export function parseAddress(input: string): ParsedAddress {
  return parseAddressExact(trimAsciiWhitespace(input));
}

/** Parses an address exactly as given; any whitespace, even at the ends, makes it invalid. */
export function parseAddressExact(input: string): ParsedAddress {
  const shape = splitAddress(input);
  if (!shape.ok) return shape;
  const local = checkLocalPart(shape.local);
  if (!local.ok) return local;
  const domain = checkDomain(shape.domain);
  if (!domain.ok) return domain;

  const address = `${local.nfc}@${domain.display}`;
  // The message may travel with either domain form, so both must fit.
  const length = Math.max(octets(address), octets(`${local.nfc}@${domain.ascii}`));
  if (length > ADDRESS_MAX_OCTETS) {
    return reject('too_long', `The address is ${length} bytes long; the limit is ${ADDRESS_MAX_OCTETS}.`);
  }
  // RFC 5321 §2.4 makes local parts case-sensitive but discourages relying on
  // it; matching case-insensitively errs towards treating them as one person.
  const matchKey = `${local.nfc.toLowerCase().normalize('NFC')}@${domain.ascii}`;
  return {
    ok: true,
    address,
    matchKey,
    providerKey: providerKeyOf(matchKey),
    needsSmtpUtf8: !isAscii(local.nfc),
    domainAscii: domain.ascii,
  };
}

/** The canonical Gmail mailbox behind a match key, or null for other providers (ADR-07). */
export function providerKeyOf(matchKey: string): string | null {
  const at = matchKey.lastIndexOf('@');
  const provider = at < 0 ? undefined : ALIASING_PROVIDERS.get(matchKey.slice(at + 1));
  if (provider === undefined) return null;
  const mailbox = (matchKey.slice(0, at).split('+')[0] ?? '').replaceAll('.', '');
  return mailbox === '' ? null : `${mailbox}@${provider}`;
}

/** Every suppression key to check for a match key: over-suppressing is the safe error (ADR-07). */
export function aliasKeys(matchKey: string): string[] {
  const providerKey = providerKeyOf(matchKey);
  return providerKey === null || providerKey === matchKey ? [matchKey] : [matchKey, providerKey];
}

// The HTML "valid e-mail address" input strips leading and trailing ASCII
// whitespace (WHATWG HTML §4.10.5.1.5); we do the same, and nothing more.
function trimAsciiWhitespace(s: string): string {
  return s.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, '');
}

/** Whole-string checks, then the split at the first "@". */
function splitAddress(s: string): Checked<{ local: string; domain: string }> {
  if (s === '') return reject('empty', 'Enter an email address.');
  if (/\p{Cs}/u.test(s)) return reject('unsafe_unicode', 'The address contains a broken Unicode character.');
  // RFC 5322 §3.4 name-addr: we store one mailbox, never a display name.
  if (/<[^<>]*>$/.test(s)) {
    return reject('display_name', 'Enter only the address itself, without a name or angle brackets.');
  }
  // RFC 5321 §4.1.2 has no folding whitespace; CFWS belongs to headers only.
  if (/[\p{Cc}\p{White_Space}]/u.test(s)) {
    return reject('whitespace_or_control', 'An email address cannot contain spaces, line breaks or control characters.');
  }
  const at = s.indexOf('@');
  if (at < 0) {
    return /[\uFF20\uFE6B]/.test(s)
      ? reject('no_at_sign', 'The address uses a full-width or small "@" character; type a regular @ instead.')
      : reject('no_at_sign', 'An email address must contain an @ sign.');
  }
  // RFC 5321 §4.1.2 says senders SHOULD avoid quoted local parts; most
  // systems cannot store or match them reliably (ADR-01).
  if (/^"(?:[^"\\]|\\.)*"@/su.test(s)) {
    return reject('quoted_local_part', 'Quoted text before the @ sign is not accepted.');
  }
  const local = s.slice(0, at);
  const domain = s.slice(at + 1);
  if (local === '') return reject('missing_local_part', 'There must be something before the @ sign.');
  if (domain === '') return reject('missing_domain', 'There must be a domain name after the @ sign.');
  if (/^\[.*\]$/s.test(domain)) {
    return reject('domain_literal', 'An IP address in brackets is not accepted; use a domain name after the @ sign.');
  }
  if (/[()]/.test(s)) return reject('comment', 'Comments in parentheses are not allowed in an email address.');
  return { ok: true, local, domain };
}

/** RFC 5322 §3.2.3 dot-atom with the RFC 6531 §3.3 extension, in NFC (RFC 6532 §3.1). */
function checkLocalPart(raw: string): Checked<{ nfc: string }> {
  const nfc = raw.normalize('NFC');
  const unsafe = unsafeChars(nfc);
  if (unsafe !== null) return reject('unsafe_unicode', `The part before the @ sign contains unsafe characters: ${unsafe}.`);
  if (octets(nfc) > LOCAL_MAX_OCTETS) {
    return reject('local_too_long', `The part before the @ sign is ${octets(nfc)} bytes long; the limit is ${LOCAL_MAX_OCTETS}.`);
  }
  // Decomposition must not reveal ASCII specials either: "≮" is "<" plus a
  // combining mark, and U+037E is a canonical ";".
  const bad = [...nfc].filter((c) => !LOCAL_CHAR.test(c));
  bad.push(...[...nfc.normalize('NFD')].filter((c) => isAscii(c) && !ASCII_LOCAL_CHAR.test(c)));
  if (bad.length > 0) {
    return reject('bad_local_part', `The part before the @ sign contains characters that are not allowed: ${describe(bad)}.`);
  }
  const dots = dotProblem(nfc);
  if (dots !== null) return reject('bad_local_part', `The part before the @ sign cannot ${dots}.`);
  return { ok: true, nfc };
}

/** A domain name per RFC 5321 §4.1.2 / RFC 1123 §2.1, IDNs via UTS #46 (RFC 5890). */
function checkDomain(raw: string): Checked<{ ascii: string; display: string }> {
  if (raw.includes('@')) return reject('bad_domain', 'An email address can contain only one @ sign.');
  const bad = [...raw].filter((c) => isAscii(c) && !/[A-Za-z0-9.-]/.test(c));
  if (bad.length > 0) {
    return reject('bad_domain', `The domain after the @ sign contains characters that are not allowed: ${describe(bad)}.`);
  }
  const unsafe = unsafeChars(raw);
  if (unsafe !== null) return reject('unsafe_unicode', `The domain after the @ sign contains unsafe characters: ${unsafe}.`);
  // UTS #46 maps case, width and compatibility forms ("ｇｍａｉｌ.com" is gmail.com).
  const ascii = isAscii(raw) ? raw.toLowerCase() : domainToASCII(raw);
  if (ascii === '') return reject('bad_domain', 'The domain after the @ sign is not a valid internationalised domain name.');
  const shape = checkHostname(ascii);
  if (!shape.ok) return shape;
  const idn = checkIdnLabels(ascii);
  if (!idn.ok) return idn;
  // Keep the domain readable: as entered when ASCII, else its UTS #46 U-label form.
  return { ok: true, ascii, display: isAscii(raw) ? ascii : domainToUnicode(ascii) };
}

/** LDH labels (RFC 1123 §2.1), label length (RFC 1035 §2.3.4), a plausible public TLD. */
function checkHostname(ascii: string): Checked<object> {
  const dots = dotProblem(ascii);
  if (dots !== null) return reject('bad_domain', `The domain cannot ${dots}.`);
  const labels = ascii.split('.');
  for (const label of labels) {
    if (!/^[a-z0-9-]+$/.test(label)) return reject('bad_domain', `The domain label "${label}" contains characters that are not allowed.`);
    if (label.startsWith('-') || label.endsWith('-')) {
      return reject('bad_domain', 'A part of the domain cannot start or end with a hyphen.');
    }
    // RFC 5890 §2.3.1: "??--" labels are reserved for A-labels ("xn--").
    if (label.slice(2, 4) === '--' && !label.startsWith('xn')) {
      return reject('bad_domain', `The domain label "${label}" has "--" in third and fourth position, which only IDN labels may have.`);
    }
    if (label.length > LABEL_MAX_OCTETS) {
      return reject('domain_label_too_long', `A part of the domain is ${label.length} characters long; the limit is ${LABEL_MAX_OCTETS}.`);
    }
  }
  const tld = labels[labels.length - 1] ?? '';
  // Dotless domains are prohibited for gTLDs (ICANN NGPC, 2013-08-30).
  if (labels.length < 2) return reject('single_label_domain', 'The domain after the @ sign must contain a dot, as in example.com.');
  if (!/[a-z]$/.test(tld)) return reject('bad_tld', 'The domain does not end in a valid top-level domain such as .com.');
  if (RESERVED_TLDS.has(tld)) {
    return reject('reserved_domain', `The domain is under .${tld}, a special-use name that cannot receive email.`);
  }
  return { ok: true };
}

// RFC 5892 §2.6: exceptions to the category rule below, and letters that
// IDNA2008 disallows although their category would allow them.
const IDNA_EXTRA = /[\u00B7\u0375\u05F3\u05F4\u06FD\u06FE\u0F0B\u3007\u30FB]/u;
const IDNA_DISALLOWED = /[\u0640\u07FA\u302E\u302F\u3031-\u3035\u303B]/u;

/**
 * A-labels must decode to IDNA2008 U-labels. UTS #46 alone would admit
 * symbols such as "©" or emoji, which IDNA2008 (RFC 5892) disallows.
 */
function checkIdnLabels(ascii: string): Checked<object> {
  if (!/(^|\.)xn--/.test(ascii)) return { ok: true };
  if (domainToASCII(ascii) !== ascii) return reject('bad_domain', 'The domain contains an invalid IDN (xn--) label.');
  for (const label of domainToUnicode(ascii).split('.')) {
    for (const c of label) {
      const allowed = (/[\p{Ll}\p{Lo}\p{Lm}\p{Mn}\p{Mc}\p{Nd}-]/u.test(c) || IDNA_EXTRA.test(c)) && !IDNA_DISALLOWED.test(c);
      if (!allowed) return reject('bad_domain', `The domain contains a character that domain names cannot use: ${describe([c])}.`);
    }
  }
  return { ok: true };
}

/**
 * Bidi and other format controls, private-use, unassigned and non-ASCII
 * space characters can make one address display as another; a combining
 * mark in first place would join whatever text precedes the address.
 */
function unsafeChars(s: string): string | null {
  const bad = [...s].filter((c) => /[\p{C}\p{Z}]/u.test(c));
  if (/^\p{M}/u.test(s)) bad.push([...s][0] ?? '');
  return bad.length > 0 ? describe(bad) : null;
}

/** RFC 5322 §3.2.3 dot-atom: no leading, trailing or doubled dots. */
function dotProblem(s: string): string | null {
  if (s.startsWith('.')) return 'start with a dot';
  if (s.endsWith('.')) return 'end with a dot';
  if (s.includes('..')) return 'contain two dots in a row';
  return null;
}

/** Characters listed for a person: printable ones quoted, the rest as U+XXXX. */
function describe(chars: readonly string[]): string {
  return [...new Set(chars)]
    .map((c) =>
      /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(c) ? `"${c}"` : `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`,
    )
    .join(', ');
}
