import { resolve } from 'node:path';
import type { DatabasePort } from './port.js';
import { parsePostgresUrl } from './postgres-url.js';
import { type Store, storeOver } from './store.js';

export interface OpenStoreOptions {
  sync?: 'normal' | 'full';
  /** A reader opens an existing store and never migrates it (CLI commands). */
  reader?: boolean;
  /** PostgreSQL: how long a write may go unanswered before its connection is given up (recording.writeTimeout). */
  writeTimeoutMs?: number;
}

/** The SQLite file a `sqlite:PATH` URL names; a relative path is relative to the working directory, like every path in the config. */
export function sqlitePath(url: string): string {
  return resolve(url.slice('sqlite:'.length));
}

/** Where a store URL points, safe to print (no password). */
export function describeStore(url: string): string {
  if (url.startsWith('sqlite:')) return `sqlite:${sqlitePath(url)}`;
  try {
    return parsePostgresUrl(url).location;
  } catch {
    return 'postgres://…';
  }
}

/**
 * Opens the store a URL names (`sqlite:PATH` or `postgres://…`); the gateway migrates it, readers only check it.
 * Only the driver the URL names is loaded: a CLI command reading a SQLite store never pays for pg, nor the reverse.
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  let db: DatabasePort;
  if (url.startsWith('sqlite:')) {
    const { SqlitePort } = await import('./sqlite.js');
    db = new SqlitePort(sqlitePath(url), { sync: options.sync ?? 'normal', reader: options.reader ?? false });
  } else {
    const { PostgresPort } = await import('./postgres.js');
    db = new PostgresPort(url, options.writeTimeoutMs === undefined ? {} : { writeTimeoutMs: options.writeTimeoutMs });
  }
  const store = storeOver(db);
  try {
    if (options.reader) await store.checkSchema();
    else await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}
