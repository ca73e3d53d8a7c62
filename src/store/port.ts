import type { Sql } from './sql.js';

/**
 * The one thing a domain store (recording, reviews, pins, …) needs of a database: run a statement written with
 * `sql`, read its rows or how many rows it changed, and group statements in a transaction. SQLite (sqlite.ts) and
 * PostgreSQL (postgres.ts) implement it; every failure comes out as a StoreUnavailableError naming the store.
 */

/** A result row as the driver gives it: snake_case columns; BIGINT (µs times) as numbers on both backends. */
export type Row = Record<string, string | number | null>;

export interface RunOptions {
  /**
   * A write on the recording path (a batch, a heartbeat): past the store's write timeout (PostgreSQL) the
   * statement fails and its connection is given up rather than held by a stalled server. SQLite waits at most
   * its busy timeout on a lock anyway.
   */
  bounded?: boolean;
  /** Parsed and planned once per connection and reused (PostgreSQL): for a statement of a few shapes run very often. */
  prepared?: boolean;
}

export interface Queryable {
  /** The rows a statement returns (a SELECT, or a write with RETURNING). */
  query(statement: Sql): Promise<Row[]>;
  /** Runs a write; how many rows it inserted, changed or deleted. */
  run(statement: Sql, options?: RunOptions): Promise<number>;
  /** Runs a script of statements without values (a migration). */
  exec(script: string): Promise<void>;
}

export interface DatabasePort extends Queryable {
  readonly dialect: 'sqlite' | 'postgres';
  /** Where it is, for logs and errors; never a password. */
  readonly location: string;
  /**
   * Runs `fn` in one transaction that takes the write lock up front: committed when `fn` resolves, rolled back
   * when it throws. Statements go through `tx`; on SQLite nothing else may use the port meanwhile (it refuses).
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs a write in a transaction that is then rolled back, without waiting on a lock: proves the database takes
   * writes (locks, permissions, triggers) and leaves nothing behind.
   */
  rehearse(statement: Sql): Promise<void>;
  /** Present when the database answers in this thread (SQLite): the recorder's group commit skips the promise. */
  readonly sync?: SyncDatabase;
  /** Run first in the migrations' transaction (PostgreSQL: one gateway at a time, and the URL's schema created). */
  beforeMigrate?(tx: Queryable): Promise<void>;
  close(): Promise<void>;
}

/** The synchronous capability: writes done before the call returns, with no thread hand-off. */
export interface SyncDatabase {
  /** Runs a write; how many rows it changed. */
  run(statement: Sql): number;
  /** Runs `fn` in one IMMEDIATE transaction: all of it or nothing. */
  transaction(fn: () => void): void;
}
