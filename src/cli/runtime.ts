import { loadConfig, type Environment } from '../config/config.js';
import { buildRuntime, createLogger, type Runtime, type RuntimeOverrides } from '../main.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
  env: Environment;
  cwd: string;
}

/** Builds a runtime for one command (logs quiet unless asked) and always closes it. */
export async function withRuntime<T>(io: Io, overrides: RuntimeOverrides, work: (rt: Runtime) => Promise<T>): Promise<T> {
  const config = loadConfig({ ASSENT_LOG_LEVEL: 'warn', ...io.env }, { cwd: io.cwd });
  const runtime = await buildRuntime(config, { logger: createLogger(config.logLevel), ...overrides });
  try {
    return await work(runtime);
  } finally {
    await runtime.close();
  }
}

/** Prints rows as an aligned table. */
export function printTable(io: Io, headers: string[], rows: (string | number)[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells: (string | number)[]) => cells.map((c, i) => String(c).padEnd(widths[i]!)).join('  ').trimEnd();
  io.out(line(headers));
  for (const row of rows) io.out(line(row));
}
