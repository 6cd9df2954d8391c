/** Plain-text tables and number formatting for the benchmark's report. */

export const int = (n: number): string => Math.round(n).toLocaleString('en-US');
export const fixed = (n: number, digits = 1): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-';
export const mb = (kb: number): string => (kb > 0 ? `${fixed(kb / 1024, 0)} MB` : '-');
export const secs = (ms: number): string => fixed(ms / 1000, 1);
export const kib = (bytes: number): string => `${fixed(bytes / 1024, 1)} KiB`;

/** Columns aligned; numbers (anything starting with a digit, '-' or '~') right-aligned. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => i > 0 && cells.every((r) => /^[-~\d(]/.test(r[i] ?? '-')));
  const line = (r: string[]) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...cells.map(line)].join('\n');
}

export function verdict(value: number, target: number, direction: 'min' | 'max'): string {
  if (!Number.isFinite(value)) return 'n/a';
  return (direction === 'min' ? value >= target : value < target) ? 'MET' : 'NOT MET';
}
