/**
 * SQL text with its values kept apart, so a statement is written once and each backend renders its own
 * placeholders (`?` for SQLite, `$1, $2, …` for PostgreSQL). Values never enter the text: only `raw` text does,
 * and it is for identifiers and SQL the code itself wrote.
 */

/** What a placeholder binds. Booleans and arrays are for PostgreSQL-only statements (better-sqlite3 binds neither). */
export type SqlValue = string | number | boolean | null | readonly (string | number | boolean | null)[];

export class Sql {
  constructor(
    readonly strings: readonly string[],
    readonly values: readonly (SqlValue | Sql)[],
  ) {}
}

/** sql`SELECT * FROM reviews WHERE id = ${id}`: each `${value}` becomes a placeholder, each `${sql`…`}` is inlined. */
export function sql(strings: TemplateStringsArray, ...values: Array<SqlValue | Sql>): Sql {
  return new Sql(strings, values);
}

/** Text taken as SQL as it is: identifiers and clauses the code wrote, never a value from outside. */
export function raw(text: string): Sql {
  return new Sql([text], []);
}

/** The fragments, separated by `separator` (a comma by default). */
export function join(parts: readonly Sql[], separator = ', '): Sql {
  if (parts.length === 0) return raw('');
  return new Sql(['', ...new Array<string>(parts.length - 1).fill(separator), ''], parts);
}

/** One placeholder per value, separated by commas: `(${list(ids)})` after IN, or the VALUES of an INSERT. */
export function list(values: readonly SqlValue[]): Sql {
  return new Sql(['', ...new Array<string>(Math.max(0, values.length - 1)).fill(', '), ''], values.length === 0 ? [null] : values);
}

/** `?` (SQLite) or `$n` (PostgreSQL). */
export type PlaceholderStyle = 'question' | 'numbered';

export interface Rendered {
  text: string;
  values: SqlValue[];
}

/**
 * The text of a statement without fragments, by its template: a tagged template's strings array is the same
 * object at every evaluation of that template, so a hot statement's text is built once.
 */
const textCache = new WeakMap<readonly string[], Partial<Record<PlaceholderStyle, string>>>();

export function render(statement: Sql, style: PlaceholderStyle): Rendered {
  const { strings, values } = statement;
  if (!values.some((v) => v instanceof Sql)) {
    if (strings.length === 1) return { text: strings[0]!, values: [] };
    let texts = textCache.get(strings);
    if (texts === undefined) textCache.set(strings, (texts = {}));
    const text = (texts[style] ??= strings.reduce((acc, s, i) => acc + placeholder(style, i) + s));
    return { text, values: values as SqlValue[] };
  }
  const out: Rendered = { text: '', values: [] };
  append(statement, style, out);
  return out;
}

function placeholder(style: PlaceholderStyle, n: number): string {
  return style === 'question' ? '?' : `$${n}`;
}

function append(statement: Sql, style: PlaceholderStyle, out: Rendered): void {
  statement.strings.forEach((s, i) => {
    out.text += s;
    if (i === statement.values.length) return;
    const v = statement.values[i]!;
    if (v instanceof Sql) append(v, style, out);
    else {
      out.values.push(v);
      out.text += placeholder(style, out.values.length);
    }
  });
}
