import pg from 'pg';
import { StoreSchemaError, StoreUnavailableError } from './errors.js';
import type { DatabasePort, Queryable, Row, RunOptions } from './port.js';
import { parsePostgresUrl } from './postgres-url.js';
import { render, type Sql } from './sql.js';

/** Also from here for the change bus, which needs pg anyway; a module that only parses a URL imports postgres-url.js. */
export { parsePostgresUrl };

/** BIGINT columns (µs times) as numbers: exact below 2^53, which µs since 1970 stay under until 2255. */
const int8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === int8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

type Client = pg.Pool | pg.PoolClient;

/**
 * The shared database for production: many gateways use one PostgreSQL database through a small pool. The
 * recorder's group commit is one statement (see recording-batch.ts), so it costs one round trip and is atomic
 * without BEGIN/COMMIT.
 */
export class PostgresPort implements DatabasePort {
  readonly dialect = 'postgres' as const;
  readonly location: string;
  readonly #pool: pg.Pool;
  readonly #schema: string;
  /** How long a bounded write (a batch, a heartbeat, a rehearsal) may go unanswered before its connection is given up. */
  readonly #writeTimeoutMs: number;
  /** Names of the prepared statements, by text: each is parsed and planned once per connection. */
  readonly #statementNames = new Map<string, string>();

  constructor(url: string, options: { poolSize?: number; writeTimeoutMs?: number } = {}) {
    const { connectionString, schema, location } = parsePostgresUrl(url);
    this.location = location;
    this.#schema = schema;
    this.#writeTimeoutMs = options.writeTimeoutMs ?? 5000;
    this.#pool = new pg.Pool({
      connectionString,
      // The schema is a startup parameter of each connection, not a query run on connect: such a query would
      // overlap the first one the pool hands the connection to (pg 8 warns, pg 9 refuses).
      options: `-c search_path="${schema}"`,
      max: options.poolSize ?? 4,
      types,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
    });
    // A dropped idle connection is replaced on next use; it must not take the process down.
    this.#pool.on('error', () => {});
  }

  async query(statement: Sql): Promise<Row[]> {
    return (await this.#send(this.#pool, statement)).rows as Row[];
  }

  async run(statement: Sql, options: RunOptions = {}): Promise<number> {
    return (await this.#send(this.#pool, statement, options)).rowCount ?? 0;
  }

  async exec(script: string): Promise<void> {
    await this.#pool.query(script).catch((err: unknown) => {
      throw this.#describe(err);
    });
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    const tx: Queryable = {
      query: async (s) => (await this.#send(client, s)).rows as Row[],
      run: async (s, options) => (await this.#send(client, s, options)).rowCount ?? 0,
      exec: async (script) => {
        await client.query(script).catch((err: unknown) => {
          throw this.#describe(err);
        });
      },
    };
    try {
      await tx.exec('BEGIN');
      const result = await fn(tx);
      await tx.exec('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw this.#describe(err);
    } finally {
      client.release();
    }
  }

  async rehearse(statement: Sql): Promise<void> {
    const client = await this.#connect();
    try {
      const bounded = (text: string, values: unknown[] = []) => client.query({ text, values, query_timeout: this.#writeTimeoutMs } as pg.QueryConfig);
      await bounded('BEGIN');
      await bounded("SET LOCAL lock_timeout = '500ms'");
      const { text, values } = render(statement, 'numbered');
      await bounded(text, values);
      await bounded('ROLLBACK');
      client.release();
    } catch (err) {
      // A connection that failed or stalled mid-transaction is not given back to the pool.
      client.release(err as Error);
      throw this.#describe(err);
    }
  }

  async beforeMigrate(tx: Queryable): Promise<void> {
    // Gateways starting together migrate one at a time; the schema the URL names may not exist yet.
    await tx.exec("SELECT pg_advisory_xact_lock(hashtext('portcullis-migrations'))");
    await tx.exec(`CREATE SCHEMA IF NOT EXISTS "${this.#schema}"`);
    await tx.exec(`SET LOCAL search_path TO "${this.#schema}"`);
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }

  async #connect(): Promise<pg.PoolClient> {
    return this.#pool.connect().catch((err: unknown) => {
      throw this.#describe(err);
    });
  }

  async #send(client: Client, statement: Sql, options: RunOptions = {}): Promise<pg.QueryResult> {
    const { text, values } = render(statement, 'numbered');
    const config: pg.QueryConfig & { query_timeout?: number } = { text, values: values as unknown[] };
    if (options.prepared) config.name = this.#statementName(text);
    // A stalled server (connection open, no answer) must not hold the connection for ever: past the bound pg fails
    // the query and the pool discards the connection. (The recorder fails the exchanges waiting on it sooner.)
    if (options.bounded) config.query_timeout = this.#writeTimeoutMs;
    try {
      return await client.query(config);
    } catch (err) {
      throw this.#describe(err);
    }
  }

  #statementName(text: string): string {
    let name = this.#statementNames.get(text);
    if (name === undefined) {
      name = `portcullis_batch_${this.#statementNames.size}`;
      this.#statementNames.set(text, name);
    }
    return name;
  }

  #describe(err: unknown): Error {
    if (err instanceof StoreSchemaError || err instanceof StoreUnavailableError) return err;
    const e = err as { message?: string; code?: string };
    return new StoreUnavailableError(`the PostgreSQL store ${this.location} failed: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`, {
      cause: err,
    });
  }
}
