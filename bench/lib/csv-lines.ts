/**
 * The bench's plain-script importers read the generated CSV the simplest
 * way: 1 MiB chunks split on newlines, the header skipped, each data line
 * handed over without its line end. (The generated file has no quoted
 * fields; Assent's own importer parses real CSV.)
 */
import { createReadStream } from 'node:fs';

export async function forEachDataLine(csvFile: string, take: (line: string) => void): Promise<void> {
  let carry = '';
  let header = true;
  const line = (text: string) => {
    if (text === '') return;
    if (header) header = false;
    else take(text);
  };
  for await (const chunk of createReadStream(csvFile, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const lines = (carry + (chunk as string)).split('\n');
    carry = lines.pop()!;
    for (const l of lines) line(l.endsWith('\r') ? l.slice(0, -1) : l);
  }
  line(carry);
}
