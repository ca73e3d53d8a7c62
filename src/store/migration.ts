/** One schema migration: applied once, in version order, inside a transaction; never edited once released. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}
