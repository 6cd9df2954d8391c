/**
 * Multi-row INSERT statements for batch writers (imports): one statement per
 * few hundred rows, the values passed as one flat, row-major array. The
 * query builder creates and freezes a node per value, which for a batch
 * costs more than SQLite's own insert; this writes the SQL text once per
 * shape and leaves the values to the driver. Placeholders are the dialect's
 * own (`?` on SQLite, `$n` on PostgreSQL), learned from the query builder,
 * so no caller branches on the dialect.
 */
import { CompiledQuery, sql, type Kysely } from 'kysely';
import type { Tables } from './schema.js';

export interface BulkInsert {
  table: keyof Tables & string;
  columns: readonly string[];
  /** Appended to the statement, e.g. `on conflict ("contact_id") do nothing`. */
  conflict?: string;
}

/** Far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters. */
const MAX_PARAMETERS = 8_000;
const MAX_ROWS = 500;

const numbered = new WeakMap<object, boolean>();
const texts = new Map<string, string>();

/** Whether the database numbers its placeholders (`$1`), asked of the query builder once per handle. */
function usesNumberedPlaceholders(db: Kysely<Tables>): boolean {
  let known = numbered.get(db);
  if (known === undefined) {
    known = sql`select ${0}`.compile(db).sql.includes('$1');
    numbered.set(db, known);
  }
  return known;
}

function statementText(spec: BulkInsert, rows: number, isNumbered: boolean): string {
  const key = `${spec.table}\u0000${spec.columns.join(',')}\u0000${spec.conflict ?? ''}\u0000${rows}\u0000${isNumbered}`;
  let text = texts.get(key);
  if (text !== undefined) return text;
  const width = spec.columns.length;
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) {
    const marks: string[] = [];
    for (let c = 0; c < width; c++) marks.push(isNumbered ? `$${r * width + c + 1}` : '?');
    tuples.push(`(${marks.join(', ')})`);
  }
  const columns = spec.columns.map((c) => `"${c}"`).join(', ');
  text = `insert into "${spec.table}" (${columns}) values ${tuples.join(', ')}${spec.conflict ? ` ${spec.conflict}` : ''}`;
  // Full-size statements recur every batch; a bounded cache keeps the odd tail sizes from piling up.
  if (texts.size < 256) texts.set(key, text);
  return text;
}

/** Inserts `values.length / columns.length` rows in as few statements as the parameter bound allows. */
export async function insertMany(db: Kysely<Tables>, spec: BulkInsert, values: readonly unknown[]): Promise<void> {
  const width = spec.columns.length;
  if (values.length % width !== 0) throw new Error(`insertMany ${spec.table}: ${values.length} values do not fill rows of ${width}`);
  const total = values.length / width;
  if (total === 0) return;
  const isNumbered = usesNumberedPlaceholders(db);
  const perStatement = Math.max(1, Math.min(MAX_ROWS, Math.floor(MAX_PARAMETERS / width)));
  for (let first = 0; first < total; first += perStatement) {
    const rows = Math.min(perStatement, total - first);
    const part = first === 0 && rows === total ? (values as unknown[]) : values.slice(first * width, (first + rows) * width);
    await db.executeQuery(CompiledQuery.raw(statementText(spec, rows, isNumbered), part));
  }
}
