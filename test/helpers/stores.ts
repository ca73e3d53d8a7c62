import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore, sqlitePath } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';

/**
 * The two store backends, for suites that must pass against both. PostgreSQL is the server on the machine
 * (PORTCULLIS_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/test); each store gets its own schema,
 * dropped afterwards. When PostgreSQL is unreachable the suites fail: they never skip.
 */

export const postgresUrl = process.env.PORTCULLIS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestStore {
  /** The store URL, as a config's `store` key would hold it. */
  url: string;
  open(): Promise<Store>;
  /** Removes the store's data (its file or schema). */
  destroy(): Promise<void>;
}

export function sqliteTestStore(): TestStore {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-store-'));
  const url = `sqlite:${join(dir, 'test.db')}`;
  return {
    url,
    open: () => openStore(url),
    destroy: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A SQLite test store that another process can lock, as in a store outage. */
export interface LockableTestStore extends TestStore {
  /** Holds the database's write lock from another connection (BEGIN EXCLUSIVE): no commit succeeds until `unlock`. */
  lock(): void;
  /** Lets go of the lock (when held): the store is writable again. */
  unlock(): void;
}

export function lockableSqliteStore(): LockableTestStore {
  const store = sqliteTestStore();
  let holder: Database.Database | undefined;
  const unlock = () => {
    holder?.exec('ROLLBACK');
    holder?.close();
    holder = undefined;
  };
  return {
    ...store,
    lock: () => {
      holder = new Database(sqlitePath(store.url));
      holder.exec('BEGIN EXCLUSIVE');
    },
    unlock,
    destroy: async () => {
      unlock();
      await store.destroy();
    },
  };
}

export function postgresTestStore(): TestStore {
  const schema = `pc_test_${randomBytes(5).toString('hex')}`;
  const url = `${postgresUrl}${postgresUrl.includes('?') ? '&' : '?'}schema=${schema}`;
  return {
    url,
    open: () => openStore(url),
    destroy: async () => {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * A fresh PostgreSQL database on the test server, for tests that run several gateway processes on one store: its
 * LISTEN/NOTIFY channels are per database, so a schema of a shared one would not isolate them. `destroy` drops it,
 * ending any connection still open to it.
 */
export async function createPostgresTestDatabase(): Promise<TestStore> {
  const name = `pc_test_${randomBytes(5).toString('hex')}`;
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  await postgresSql(`CREATE DATABASE "${name}"`);
  return {
    url: url.href,
    open: () => openStore(url.href),
    destroy: async () => {
      await postgresSql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

export const backends: Array<{ name: 'sqlite' | 'postgres'; make: () => TestStore }> = [
  { name: 'sqlite', make: sqliteTestStore },
  { name: 'postgres', make: postgresTestStore },
];

/** Runs SQL against the test PostgreSQL server (fault injection, inspection). */
export async function postgresSql(sql: string, params: unknown[] = [], schema?: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    if (schema) await client.query(`SET search_path TO "${schema}"`);
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

export function schemaOf(url: string): string | undefined {
  return new URL(url).searchParams.get('schema') ?? undefined;
}

/** Runs SQL written with `?` placeholders against a test store behind the gateway's back (tampering, faults). */
export function storeSql(ts: Pick<TestStore, 'url'>, backend: 'sqlite' | 'postgres'): (sql: string, ...params: unknown[]) => Promise<void> {
  if (backend === 'sqlite') {
    return async (sql, ...params) => {
      const db = new Database(sqlitePath(ts.url));
      try {
        db.pragma('busy_timeout = 5000');
        db.prepare(sql).run(...(params as Array<string | number | null>));
      } finally {
        db.close();
      }
    };
  }
  return async (sql, ...params) => {
    let n = 0;
    await postgresSql(
      sql.replace(/\?/g, () => `$${++n}`),
      params,
      schemaOf(ts.url),
    );
  };
}

/**
 * Everything a database reader or a backup holds, as text: the SQLite file with its WAL and shared memory, or every
 * row of every table of the test's PostgreSQL schema (what encryption-at-rest tests search for payloads).
 */
export async function databaseDump(ts: TestStore, backend: 'sqlite' | 'postgres'): Promise<string> {
  if (backend === 'sqlite') {
    const path = sqlitePath(ts.url);
    return [path, `${path}-wal`, `${path}-shm`]
      .filter((p) => existsSync(p))
      .map((p) => readFileSync(p).toString('latin1'))
      .join('\n');
  }
  const schema = schemaOf(ts.url)!;
  const tables = await postgresSql(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'`, [schema]);
  // Not an empty or wrong schema: a dump of nothing contains no marker either.
  if (tables.rows.length <= 10) throw new Error(`the schema ${schema} has ${tables.rows.length} tables: not a Portcullis store`);
  const texts: string[] = [];
  for (const { table_name } of tables.rows as Array<{ table_name: string }>) {
    for (const r of (await postgresSql(`SELECT t::text AS row FROM "${schema}"."${table_name}" t`)).rows as Array<{ row: string }>) texts.push(r.row);
  }
  return texts.join('\n');
}
