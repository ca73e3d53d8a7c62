import type { Row } from './port.js';
import { join, list, raw, type Sql, sql } from './sql.js';

/** Helpers the domain stores share to map between the tables' snake_case rows and the store's types. */

export type { Row };

export function json(text: Row[string] | undefined): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(String(text));
  } catch {
    return null;
  }
}

export const num = (v: Row[string] | undefined): number => Number(v);
export const numOrNull = (v: Row[string] | undefined): number | null => (v === null || v === undefined ? null : Number(v));
export const strOrNull = (v: Row[string] | undefined): string | null => (v === null || v === undefined ? null : String(v));
/** JSON text of a value, or NULL for none. */
export const jsonOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

export type Entry = [column: string, value: string | number | null];

/** `INSERT INTO table (columns) VALUES (values)` of these entries, in their order. */
export function insertSql(table: string, entries: readonly Entry[]): Sql {
  return sql`INSERT INTO ${raw(table)} (${raw(entries.map(([c]) => c).join(', '))}) VALUES (${list(entries.map(([, v]) => v))})`;
}

/** `column = value, …` of the entries whose value is not undefined (null writes NULL). */
export function setSql(entries: ReadonlyArray<[column: string, value: string | number | null | undefined]>): Sql {
  return join(entries.filter((e): e is Entry => e[1] !== undefined).map(([column, v]) => sql`${raw(column)} = ${v}`));
}

/** A newest-first listing of `table`, keeping rows whose columns equal the filters given (undefined: any). */
export function newestFirstSql(table: string, filters: Record<string, string | undefined>, limit: number): Sql {
  const where = Object.entries(filters).flatMap(([column, v]) => (v === undefined ? [] : [sql`${raw(column)} = ${v}`]));
  return sql`SELECT * FROM ${raw(table)}${where.length > 0 ? sql` WHERE ${join(where, ' AND ')}` : raw('')} ORDER BY created_at_us DESC, id DESC LIMIT ${limit}`;
}
