/**
 * Reading a CSV file for import as a stream of records: bytes are decoded
 * piece by piece (never the whole file in memory), the dialect is guessed
 * from the first piece, and records come out one at a time.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { TextDecoder } from 'node:util';
import { AppError } from '../shared/errors.js';
import { CsvTokenizer, detectDelimiter, detectNewline, type CsvRecord, type Newline } from './import-csv.js';

export type ImportEncoding = 'utf-8' | 'windows-1252';

/** Labels accepted for --encoding (WHATWG Encoding Standard names). */
const encodingLabels: Record<string, ImportEncoding> = {
  'utf-8': 'utf-8',
  utf8: 'utf-8',
  'windows-1252': 'windows-1252',
  cp1252: 'windows-1252',
};

/** --delimiter values; `auto` guesses. */
const delimiterNames: Record<string, string> = { ',': ',', comma: ',', ';': ';', semicolon: ';', '\t': '\t', tab: '\t', '\\t': '\t', '|': '|', pipe: '|', auto: 'auto' };

/** Enough text to see ten records of any export we know of. */
const SAMPLE_CHARS = 64 * 1024;

export function parseEncoding(label: string): ImportEncoding {
  const encoding = encodingLabels[label.trim().toLowerCase()];
  if (!encoding) throw new AppError('validation_failed', `unknown encoding "${label}": use utf-8 or windows-1252`);
  return encoding;
}

export function parseDelimiter(name: string): string {
  const delimiter = delimiterNames[name.toLowerCase()] ?? delimiterNames[name];
  if (!delimiter) throw new AppError('validation_failed', `unknown delimiter "${name}": use comma, semicolon, tab, pipe or auto`);
  return delimiter;
}

/**
 * The decoder for a file: a byte-order mark names its encoding and wins over
 * the one asked for (WHATWG Encoding §6 "decode"); otherwise the one asked for.
 */
export function sniffEncoding(head: Uint8Array, requested: ImportEncoding): string {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return 'utf-8';
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  return requested;
}

export interface CsvSource {
  header: CsvRecord;
  /** Data records after the header, in file order, a decoded piece's worth at a time. */
  records: AsyncGenerator<CsvRecord[]>;
  dialect: { encoding: string; delimiter: string; newline: Newline };
  /** Bytes consumed so far, for progress. */
  bytesRead(): number;
}

/**
 * Opens a byte stream as CSV. Undecodable bytes become U+FFFD (the decoder is
 * not fatal), so a bad byte faults its row only; the row check reports it.
 */
export async function openCsv(bytes: AsyncIterable<Uint8Array>, options: { encoding: ImportEncoding; delimiter: string }): Promise<CsvSource> {
  const counter = { bytes: 0 };
  const dialect = { encoding: options.encoding as string, delimiter: ',', newline: '\n' as Newline };
  const pieces = readRecords(decode(bytes, options.encoding, counter, dialect), options.delimiter, dialect);
  let first: CsvRecord[] = [];
  while (first.length === 0) {
    const next = await pieces.next();
    if (next.done) throw new AppError('validation_failed', 'the file is empty: a header row naming the columns is needed');
    first = next.value;
  }
  const header = first.shift()!;
  async function* records(): AsyncGenerator<CsvRecord[]> {
    if (first.length > 0) yield first;
    yield* pieces;
  }
  return { header, records: records(), dialect, bytesRead: () => counter.bytes };
}

async function* decode(
  bytes: AsyncIterable<Uint8Array>,
  requested: ImportEncoding,
  counter: { bytes: number },
  dialect: { encoding: string },
): AsyncGenerator<string> {
  let decoder: TextDecoder | null = null;
  let head: Uint8Array = new Uint8Array(0);
  for await (const chunk of bytes) {
    counter.bytes += chunk.length;
    if (decoder) {
      yield decoder.decode(chunk, { stream: true });
      continue;
    }
    head = concat(head, chunk);
    if (head.length < 3) continue;
    dialect.encoding = sniffEncoding(head, requested);
    decoder = new TextDecoder(dialect.encoding);
    yield decoder.decode(head, { stream: true });
  }
  if (!decoder) {
    dialect.encoding = sniffEncoding(head, requested);
    decoder = new TextDecoder(dialect.encoding);
    yield decoder.decode(head, { stream: true });
  }
  yield decoder.decode();
}

async function* readRecords(texts: AsyncIterable<string>, delimiter: string, dialect: { delimiter: string; newline: Newline }): AsyncGenerator<CsvRecord[]> {
  let tokenizer: CsvTokenizer | null = null;
  let sample = '';
  const start = (complete: boolean): CsvTokenizer => {
    dialect.newline = detectNewline(sample);
    dialect.delimiter = delimiter === 'auto' ? detectDelimiter(sample, { newline: dialect.newline, complete }) : delimiter;
    return new CsvTokenizer({ delimiter: dialect.delimiter, newline: dialect.newline });
  };
  for await (const text of texts) {
    if (tokenizer) {
      yield tokenizer.push(text);
      continue;
    }
    sample += text;
    if (sample.length < SAMPLE_CHARS) continue;
    tokenizer = start(false);
    yield tokenizer.push(sample);
  }
  if (!tokenizer) {
    tokenizer = start(true);
    yield tokenizer.push(sample);
  }
  yield tokenizer.end();
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A file's size and SHA-256, read as a stream; `validation_failed` when it cannot be read. */
export async function describeFile(path: string): Promise<{ size: number; sha256: string }> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a file');
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return { size: info.size, sha256: hash.digest('hex') };
  } catch {
    throw new AppError('validation_failed', `cannot read ${path}`);
  }
}

/** The file's bytes as a stream (64 KiB pieces). */
export function readFileBytes(path: string): AsyncIterable<Uint8Array> {
  return createReadStream(path, { highWaterMark: 64 * 1024 });
}
