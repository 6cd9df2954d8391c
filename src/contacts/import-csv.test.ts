import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { CsvTokenizer, detectDelimiter, detectNewline, type CsvRecord, type Newline } from './import-csv.js';
import { openCsv, sniffEncoding } from './import-source.js';

// shared/ always sits beside the clone (../shared from the repo root).
const corpus = new URL('../../../shared/corpora/csv/', import.meta.url);

interface PapaCase {
  suite: string;
  description: string;
  disabled?: boolean;
  config?: Record<string, unknown>;
  config_has_function?: boolean;
  input: string;
  expected: { data: unknown[]; errors: { type: string; code: string; row?: number }[] };
}

/** Tokenizes `input` fed in pieces of `size` characters, so every chunk boundary is crossed somewhere. */
function tokenize(input: string, options: { delimiter: string; newline: Newline }, size = input.length || 1): CsvRecord[] {
  const tokenizer = new CsvTokenizer(options);
  const out: CsvRecord[] = [];
  for (let i = 0; i < input.length; i += size) out.push(...tokenizer.push(input.slice(i, i + size)));
  return [...out, ...tokenizer.end()];
}

const isBlankRecord = (fields: unknown[]) => fields.length === 1 && fields[0] === '';

async function* bytesOf(buffer: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buffer.length; i += size) yield buffer.subarray(i, i + size);
}

/** The whole reading path (bytes → decoder → dialect → records) as objects keyed by the header. */
async function readObjects(bytes: Buffer, size = 5, encoding: 'utf-8' | 'windows-1252' = 'utf-8') {
  const source = await openCsv(bytesOf(bytes, size), { encoding, delimiter: 'auto' });
  const rows: Record<string, string>[] = [];
  for await (const records of source.records) {
    for (const record of records.filter((r) => !isBlankRecord(r.fields))) {
      rows.push(Object.fromEntries(source.header.fields.map((h, i) => [h, record.fields[i] ?? ''])));
    }
  }
  return { rows, dialect: source.dialect };
}

test('csv-spectrum: every file reads as its expected JSON, fed in 5-byte pieces (CRLF kept inside quotes)', async () => {
  const names = readdirSync(new URL('csv-spectrum/csvs/', corpus)).filter((n) => n.endsWith('.csv'));
  assert.equal(names.length, 11);
  for (const name of names) {
    const bytes = readFileSync(new URL(`csv-spectrum/csvs/${name}`, corpus));
    const expected = JSON.parse(readFileSync(new URL(`csv-spectrum/json/${name.replace(/\.csv$/, '.json')}`, corpus), 'utf8'));
    for (const size of [5, 1, 64 * 1024]) {
      assert.deepEqual((await readObjects(bytes, size)).rows, expected, `${name} in ${size}-byte pieces`);
    }
  }
});

test('PapaParse corpus: plain, delimiter and newline cases give PapaParse\'s rows; quote errors fault the same first row', () => {
  const cases = JSON.parse(readFileSync(new URL('papaparse/parse-cases.json', corpus), 'utf8')) as PapaCase[];
  assert.equal(cases.length, 160);
  const supported = ['delimiter', 'newline', 'skipEmptyLines'];
  const usable = cases.filter(
    (c) =>
      !c.disabled &&
      !c.config_has_function &&
      typeof c.input === 'string' &&
      Object.keys(c.config ?? {}).every((k) => supported.includes(k)) &&
      [undefined, ',', ';', '\t', '|'].includes(c.config?.delimiter as string | undefined) &&
      [undefined, true].includes(c.config?.skipEmptyLines as boolean | undefined),
  );
  assert.equal(usable.length, 86, 'cases without function, header or comment config');
  const failures: string[] = [];
  let withErrors = 0;
  for (const c of usable) {
    const input = c.input.replace(/^\uFEFF/, '');
    const newline = (c.config?.newline as Newline | undefined) ?? detectNewline(input);
    const delimiter = (c.config?.delimiter as string | undefined) ?? detectDelimiter(input, { newline, complete: true });
    const quoteErrors = c.expected.errors.filter((e) => e.type === 'Quotes');
    for (const size of [input.length || 1, 1, 3]) {
      const records = tokenize(input, { delimiter, newline }, size);
      if (quoteErrors.length > 0) {
        const first = records.findIndex((r) => r.fault !== null);
        if (first !== Math.min(...quoteErrors.map((e) => e.row ?? 0))) failures.push(`${c.description} (${size}): fault at ${first}`);
        continue;
      }
      const blank = (r: unknown[]) => isBlankRecord(r) || (c.config?.skipEmptyLines === true && r.every((f) => f === ''));
      const got = records.map((r) => r.fields).filter((r) => !blank(r));
      const want = (c.expected.data as unknown[][]).filter((r) => !blank(r));
      if (JSON.stringify(got) !== JSON.stringify(want) || records.some((r) => r.fault)) failures.push(`${c.description} (${size})`);
    }
    if (quoteErrors.length > 0) withErrors += 1;
  }
  assert.deepEqual(failures, []);
  assert.ok(withErrors >= 5, `only ${withErrors} quote-error cases`);
});

test('a malformed quote faults its own record only; the rows after it still read', () => {
  const records = tokenize('a,b,c\n9,"bad"quote,10\n11,12,13\nx,y"z,w\n', { delimiter: ',', newline: '\n' });
  assert.deepEqual(
    records.map((r) => [r.line, r.fault, r.fields.length]),
    [[1, null, 3], [2, 'bad_quoting', 3], [3, null, 3], [4, null, 3]],
  );
  assert.deepEqual(records[2]!.fields, ['11', '12', '13']);
  const unclosed = tokenize('a,b\n"open,1\n2,3\n', { delimiter: ',', newline: '\n' });
  assert.deepEqual(unclosed.map((r) => [r.line, r.fault]), [[1, null], [2, 'unclosed_quote']]);
});

test('line numbers count every line break, also inside quoted fields and for lone CR in data', () => {
  const records = tokenize('h1,h2\r\n"a\r\nb",c\r\n\r\nd,e\r\n', { delimiter: ',', newline: '\r\n' }, 1);
  assert.deepEqual(records.map((r) => [r.line, r.fields]), [[1, ['h1', 'h2']], [2, ['a\r\nb', 'c']], [4, ['']], [5, ['d', 'e']]]);
});

test('memory is bounded by one record: a runaway quoted field is cut and faulted', () => {
  const tokenizer = new CsvTokenizer({ delimiter: ',', newline: '\n', maxRecordLength: 100 });
  const out = [...tokenizer.push('a,b\n"'), ...tokenizer.push('x'.repeat(1000)), ...tokenizer.push('",1\nok,2\n'), ...tokenizer.end()];
  assert.deepEqual(out.map((r) => [r.fault, r.fields.join('|').length < 200]), [[null, true], ['record_too_long', true], [null, true]]);
  assert.deepEqual(out[2]!.fields, ['ok', '2']);
});

test('dialect: semicolon, tab and pipe exports are recognised; a one-column list reads as comma', () => {
  const sample = (d: string) => `"Email Address"${d}"First Name"${d}Last\nann@example.org${d}Ann${d}"Lee${d} Jr"\nbob@example.org${d}Bob${d}B\n`;
  for (const d of [',', ';', '\t', '|']) assert.equal(detectDelimiter(sample(d), { newline: '\n', complete: true }), d, JSON.stringify(d));
  assert.equal(detectDelimiter('email\na@example.org\nb@example.org\n', { newline: '\n', complete: true }), ',');
  // A semicolon export with a quoted column full of commas: commas split more fields, but unevenly.
  const semicolons = `Email;Name;Status;Address\n${[0, 1, 2, 3, 4].map((i) => `a${i}@example.org;Ann;subscribed;"1 Main St, Apt 2, Springfield, IL, USA"`).join('\n')}\n`;
  assert.equal(detectDelimiter(semicolons, { newline: '\n', complete: true }), ';');
  assert.equal(detectNewline('a,b\r\nc,d\r\n'), '\r\n');
  assert.equal(detectNewline('"x\r\ny",b\nc,d\n'), '\n');
  assert.equal(detectNewline('a,b\rc,d\r'), '\r');
});

test('encodings: a BOM names the encoding and is dropped; Windows-1252 decodes on request; bad UTF-8 becomes U+FFFD', async () => {
  assert.equal(sniffEncoding(Buffer.from([0xef, 0xbb, 0xbf, 0x41]), 'windows-1252'), 'utf-8');
  assert.equal(sniffEncoding(Buffer.from([0xff, 0xfe, 0x41, 0]), 'utf-8'), 'utf-16le');
  assert.equal(sniffEncoding(Buffer.from('abc'), 'windows-1252'), 'windows-1252');
  const bom = await readObjects(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('email;name\r\na@example.org;Zoë\r\n')]), 1);
  assert.deepEqual(bom.rows, [{ email: 'a@example.org', name: 'Zoë' }]);
  assert.deepEqual(bom.dialect, { encoding: 'utf-8', delimiter: ';', newline: '\r\n' });
  const cp1252 = Buffer.from([...Buffer.from('email,name\nr@example.org,Ren'), 0xe9, 0x20, 0x80, 0x0a]);
  assert.deepEqual((await readObjects(cp1252, 3, 'windows-1252')).rows, [{ email: 'r@example.org', name: 'René €' }]);
  assert.deepEqual((await readObjects(cp1252, 3, 'utf-8')).rows, [{ email: 'r@example.org', name: 'Ren\uFFFD \uFFFD' }]);
  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('email\tname\r\nu@example.org\tÅsa\r\n', 'utf16le')]);
  assert.deepEqual((await readObjects(utf16, 7)).rows, [{ email: 'u@example.org', name: 'Åsa' }]);
});
