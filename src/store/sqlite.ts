import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { DatabasePort, Queryable, Row, SyncDatabase } from './port.js';
import { render, Sql } from './sql.js';
import { StoreSchemaError, StoreUnavailableError } from './errors.js';

export interface SqliteOptions {
  /** `full` fsyncs every group commit (durable across power loss); `normal` is durable across a crash of the gateway. */
  sync: 'normal' | 'full';
  /** How long a write waits for a lock held by another process before the store counts as unavailable. */
  busyTimeoutMs?: number;
  /** A reader (the CLI) opens an existing store and never migrates it. */
  reader?: boolean;
}

/** Prepared statements kept by text; dynamic queries (filters, IN lists) make a few more shapes than the hot ones. */
const statementCacheSize = 256;

/**
 * The embedded database: one SQLite file in WAL mode (readers never block the writer). better-sqlite3 is
 * synchronous, which suits the group commit: a batch is written in one transaction on the event loop, in
 * microseconds, with no thread hand-off (the `sync` capability).
 */
export class SqlitePort implements DatabasePort {
  readonly dialect = 'sqlite' as const;
  readonly location: string;
  readonly sync: SyncDatabase;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #byTemplate = new WeakMap<readonly string[], Database.Statement>();
  readonly #busyTimeoutMs: number;
  /** The statements of an open async transaction; anything else meanwhile would silently join it. */
  readonly #tx: Queryable;
  #inTransaction = false;
  /** better-sqlite3's transaction wrapper, made once: it runs the function it is given. */
  readonly #transaction: Database.Transaction<(fn: () => void) => void>;
  #checkpointer: Worker | undefined;

  constructor(path: string, options: SqliteOptions) {
    this.location = path;
    const reader = options.reader ?? false;
    if (!reader) mkdirSync(dirname(path), { recursive: true });
    try {
      this.#db = new Database(path, { fileMustExist: reader });
    } catch (err) {
      const missing = reader && /unable to open|does not exist/i.test((err as Error).message);
      throw missing
        ? new StoreSchemaError(`the store ${path} does not exist: no recordings yet (the gateway creates it when it starts)`)
        : new StoreUnavailableError(`cannot open the SQLite store ${path}: ${(err as Error).message}`, { cause: err });
    }
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 1000;
    this.#db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
    if (!reader) {
      // 1 KiB pages (set before the first table exists): a commit rewrites one index page per session it touches,
      // so small pages write a third of what 4 KiB pages do, and commits stay short under load (BENCHMARKS.md).
      this.#db.pragma('page_size = 1024');
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma(`synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`);
      // Checkpoints run in a worker thread (sqlite-checkpointer.ts), never on the commit path.
      this.#db.pragma('wal_autocheckpoint = 0');
      this.#checkpointer = new Worker(new URL('./sqlite-checkpointer.js', import.meta.url), { workerData: { path, intervalMs: 1000 } });
      this.#checkpointer.unref();
      // A checkpoint that fails is retried on the next tick; the WAL only grows meanwhile.
      this.#checkpointer.on('error', () => {});
    }
    this.#transaction = this.#db.transaction((fn: () => void) => fn());
    this.#tx = {
      query: async (s) => this.#all(s),
      run: async (s) => this.#run(s),
      exec: async (script) => this.#exec(script),
    };
    this.sync = {
      run: (s) => {
        this.#refuseInTransaction();
        return this.#run(s);
      },
      transaction: (fn) => {
        this.#refuseInTransaction();
        this.#writing(() => this.#transaction.immediate(fn));
      },
    };
  }

  async query(statement: Sql): Promise<Row[]> {
    return this.#outside(() => this.#all(statement));
  }

  async run(statement: Sql): Promise<number> {
    return this.#outside(() => this.#run(statement));
  }

  async exec(script: string): Promise<void> {
    this.#outside(() => this.#exec(script));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.#outside(() => this.#writing(() => this.#db.exec('BEGIN IMMEDIATE')));
    this.#inTransaction = true;
    try {
      const result = await fn(this.#tx);
      this.#writing(() => this.#db.exec('COMMIT'));
      return result;
    } catch (err) {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      throw err;
    } finally {
      this.#inTransaction = false;
    }
  }

  async rehearse(statement: Sql): Promise<void> {
    // Never wait on a lock here: a rehearsal that blocked the event loop would stall every session.
    this.#db.pragma('busy_timeout = 0');
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const { prepared, values } = this.#bind(statement);
        prepared.run(...values);
      } finally {
        this.#db.exec('ROLLBACK');
      }
    } catch (err) {
      throw new StoreUnavailableError(`the SQLite store ${this.location} still does not take writes: ${(err as Error).message}`, { cause: err });
    } finally {
      this.#db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
    }
  }

  async close(): Promise<void> {
    const worker = this.#checkpointer;
    this.#checkpointer = undefined;
    if (worker !== undefined) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage('stop');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      await worker.terminate();
    }
    if (this.#db.open) this.#db.close();
  }

  #outside<T>(fn: () => T): T {
    this.#refuseInTransaction();
    return fn();
  }

  #refuseInTransaction(): void {
    if (this.#inTransaction) throw new StoreUnavailableError(`the SQLite store ${this.location} is in a transaction (migrating); try again once it is done`);
  }

  /**
   * The prepared statement and the values to bind. A statement without fragments is found by its template (the
   * same strings array at every evaluation) before any text is built: the group commit runs one per event.
   */
  #bind(statement: Sql): { prepared: Database.Statement; values: Array<string | number | null> } {
    const plain = isPlain(statement);
    let prepared = plain ? this.#byTemplate.get(statement.strings) : undefined;
    if (prepared !== undefined) return { prepared, values: statement.values as Array<string | number | null> };
    const { text, values } = render(statement, 'question');
    prepared = this.#prepared(text);
    if (plain) this.#byTemplate.set(statement.strings, prepared);
    return { prepared, values: values as Array<string | number | null> };
  }

  /** The prepared statement of a text, kept for the next time (the hot statements are a handful). */
  #prepared(text: string): Database.Statement {
    let prepared = this.#statements.get(text);
    if (prepared === undefined) {
      if (this.#statements.size >= statementCacheSize) this.#statements.clear();
      prepared = this.#db.prepare(text);
      this.#statements.set(text, prepared);
    }
    return prepared;
  }

  #run(statement: Sql): number {
    try {
      // The group commit's path, one per event: no text built, no object made.
      const known = this.#byTemplate.get(statement.strings);
      if (known !== undefined && isPlain(statement)) return known.run(...(statement.values as Array<string | number | null>)).changes;
      const { prepared, values } = this.#bind(statement);
      return prepared.run(...values).changes;
    } catch (err) {
      throw new StoreUnavailableError(`the SQLite store ${this.location} did not take the write: ${(err as Error).message}`, { cause: err });
    }
  }

  #all(statement: Sql): Row[] {
    try {
      const { prepared, values } = this.#bind(statement);
      return prepared.all(...values) as Row[];
    } catch (err) {
      throw new StoreUnavailableError(`the SQLite store ${this.location} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  #exec(script: string): void {
    this.#writing(() => this.#db.exec(script));
  }

  #writing<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      throw new StoreUnavailableError(`the SQLite store ${this.location} did not take the write: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** A statement with no fragment among its values: its text depends on its template alone. */
function isPlain(statement: Sql): boolean {
  for (const v of statement.values) if (v instanceof Sql) return false;
  return true;
}
