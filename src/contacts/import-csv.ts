/**
 * A streaming CSV tokenizer and the dialect guesses an import needs (record
 * separator, field delimiter). Pure: text in, records out; no I/O.
 *
 * Well-formed input follows RFC 4180 §2 with the leniencies of common
 * exporters (PapaParse's semantics, checked against its test corpus): a
 * quote inside an unquoted field is literal, spaces may follow a closing
 * quote, one record separator per file (\n, \r\n or \r). A malformed quote
 * marks only its own record as faulty and parsing resumes at the next
 * delimiter, so one bad row never swallows the rows after it (csv-parse
 * 7.0.3's skip_records_with_error loses every later row after an invalid
 * closing quote, which is why this is not csv-parse). Memory is bounded by
 * one record: fields past the size limit are cut and the record faulted.
 */

export type Newline = '\n' | '\r\n' | '\r';
export type CsvFault = 'bad_quoting' | 'unclosed_quote' | 'record_too_long';

export interface CsvRecord {
  fields: string[];
  /** Line (1-based) on which the record starts. */
  line: number;
  fault: CsvFault | null;
}

/** Delimiters guessed, in PapaParse's order of preference. */
export const guessedDelimiters: readonly string[] = [',', '\t', '|', ';'];

const QUOTE = 34;
const SPACE = 32;
const TAB = 9;
const CR = 13;
const LF = 10;

const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_IN_QUOTED = 3;
const AFTER_QUOTE = 4;

/** Far above any contact row; only a runaway quote or a binary file gets near it. */
const DEFAULT_MAX_RECORD = 1 << 20;

export class CsvTokenizer {
  readonly #delimiter: number;
  readonly #newline: Newline;
  readonly #maxRecord: number;
  #state = FIELD_START;
  #field = '';
  #fields: string[] = [];
  #size = 0;
  #fault: CsvFault | null = null;
  #lines = 0;
  #recordLine = 1;
  #carry = '';

  constructor(options: { delimiter: string; newline: Newline; maxRecordLength?: number }) {
    if (options.delimiter.length !== 1) throw new Error('the delimiter must be one character');
    this.#delimiter = options.delimiter.charCodeAt(0);
    this.#newline = options.newline;
    this.#maxRecord = options.maxRecordLength ?? DEFAULT_MAX_RECORD;
  }

  /** Records completed by this piece of text; a trailing CR waits for the next piece. */
  push(text: string): CsvRecord[] {
    let input = this.#carry + text;
    this.#carry = '';
    if (input.endsWith('\r')) {
      this.#carry = '\r';
      input = input.slice(0, -1);
    }
    return this.#scan(input, []);
  }

  /** The last record, if the input did not end with a record separator. */
  end(): CsvRecord[] {
    const out = this.#scan(this.#carry, []);
    this.#carry = '';
    if (this.#state === QUOTED) this.#faultWith('unclosed_quote');
    if (this.#state !== FIELD_START || this.#fields.length > 0) out.push(this.#endRecord(''));
    return out;
  }

  #scan(text: string, out: CsvRecord[]): CsvRecord[] {
    let run = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === LF || (c === CR && text.charCodeAt(i + 1) !== LF)) this.#lines++;
      if (this.#state === FIELD_START) {
        this.#state = c === QUOTE ? QUOTED : UNQUOTED;
        run = c === QUOTE ? i + 1 : i;
        if (c === QUOTE) continue;
      }
      if (this.#state === QUOTED) {
        if (c === QUOTE) {
          this.#append(text.slice(run, i));
          this.#state = QUOTE_IN_QUOTED;
        }
        continue;
      }
      if (this.#state === QUOTE_IN_QUOTED && c === QUOTE) {
        this.#append('"');
        this.#state = QUOTED;
        run = i + 1;
        continue;
      }
      const nl = c === this.#delimiter ? 0 : this.#newlineAt(text, i, c);
      if (c === this.#delimiter) this.#endField(this.#state === UNQUOTED ? text.slice(run, i) : '');
      else if (nl > 0) {
        if (nl === 2) this.#lines++;
        out.push(this.#endRecord(this.#state === UNQUOTED ? text.slice(run, i) : ''));
        i += nl - 1;
      } else if (this.#state !== UNQUOTED) {
        // After a closing quote only spaces may come before the delimiter (RFC 4180 §2.6 allows none).
        if (c === SPACE || c === TAB) this.#state = AFTER_QUOTE;
        else {
          this.#faultWith('bad_quoting');
          this.#state = UNQUOTED;
          run = i;
        }
      }
    }
    if (this.#state === UNQUOTED || this.#state === QUOTED) this.#append(text.slice(run));
    return out;
  }

  /** Length of the record separator starting at i, or 0. */
  #newlineAt(text: string, i: number, c: number): number {
    if (this.#newline === '\n') return c === LF ? 1 : 0;
    if (this.#newline === '\r') return c === CR ? 1 : 0;
    return c === CR && text.charCodeAt(i + 1) === LF ? 2 : 0;
  }

  #append(text: string): void {
    if (text === '' || this.#fault === 'record_too_long') return;
    this.#size += text.length;
    if (this.#size > this.#maxRecord) this.#fault = 'record_too_long';
    else this.#field += text;
  }

  #endField(last: string): void {
    this.#append(last);
    if (this.#fault !== 'record_too_long') this.#fields.push(this.#field);
    this.#field = '';
    this.#state = FIELD_START;
  }

  #endRecord(last: string): CsvRecord {
    this.#endField(last);
    const record = { fields: this.#fields, line: this.#recordLine, fault: this.#fault };
    this.#fields = [];
    this.#size = 0;
    this.#fault = null;
    this.#recordLine = this.#lines + 1;
    return record;
  }

  #faultWith(fault: CsvFault): void {
    this.#fault ??= fault;
  }
}

/**
 * The record separator of a file, guessed from its first piece the way
 * PapaParse does: quoted text removed, the first of \r or \n wins, and \r
 * counts as \r\n when at least half of them are followed by \n.
 */
export function detectNewline(sample: string): Newline {
  const text = sample.replace(/"[^"]*"/g, '');
  const byCr = text.split('\r');
  const byLf = text.split('\n');
  if (byCr.length === 1 || (byLf.length > 1 && (byLf[0] ?? '').length < (byCr[0] ?? '').length)) return '\n';
  const followedByLf = byCr.filter((part) => part.startsWith('\n')).length;
  return followedByLf >= byCr.length / 2 ? '\r\n' : '\r';
}

/**
 * The field delimiter, guessed from the first records of a sample: the
 * candidate whose field count varies least from record to record, among
 * those averaging at least two fields, and of those the one giving the most
 * fields (PapaParse's rule, except that it lets a higher average beat a
 * steadier count). A file of one
 * column (addresses only) has no delimiter to find and reads as comma.
 */
export function detectDelimiter(sample: string, options: { newline: Newline; complete: boolean }): string {
  let best = { delimiter: ',', delta: Infinity, average: 0 };
  for (const delimiter of guessedDelimiters) {
    const tokenizer = new CsvTokenizer({ delimiter, newline: options.newline });
    const records = [...tokenizer.push(sample), ...(options.complete ? tokenizer.end() : [])]
      .filter((r) => !(r.fields.length === 1 && r.fields[0] === ''))
      .slice(0, 10);
    if (records.length === 0) continue;
    let delta = 0;
    for (let i = 1; i < records.length; i++) delta += Math.abs(records[i]!.fields.length - records[i - 1]!.fields.length);
    const average = records.reduce((sum, r) => sum + r.fields.length, 0) / records.length;
    // Steadiest first, then the most fields: a wrong delimiter that splits a
    // quoted field ("1 Main St, Apt 2") gives more fields, but unevenly.
    if (average > 1.99 && (delta < best.delta || (delta === best.delta && average > best.average))) best = { delimiter, delta, average };
  }
  return best.delimiter;
}
