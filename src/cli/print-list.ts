import { table } from './table.js';

export interface ListOutput<T> {
  /** --json: one JSON object a line instead of the table. */
  json?: boolean | undefined;
  /** The line that says there is nothing to list. */
  none: string;
  header: string[];
  row: (item: T) => string[];
}

/** What a list command prints: one JSON object a line with --json; else `none` when there is nothing, or a table. */
export function printList<T>(items: readonly T[], o: ListOutput<T>): void {
  if (o.json) {
    for (const item of items) process.stdout.write(`${JSON.stringify(item)}\n`);
    return;
  }
  if (items.length === 0) {
    process.stdout.write(`${o.none}\n`);
    return;
  }
  process.stdout.write(`${table([o.header, ...items.map(o.row)])}\n`);
}
