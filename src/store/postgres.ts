import pg from 'pg';
import { latestVersion, postgresMigrations } from './migrations.js';
import {
  accessQuerySql,
  accessRequestFromDb,
  accessRequestToDb,
  accessUpdateSql,
  agentFromDb,
  agentListSql,
  agentPutSql,
  agentUpdateSql,
  consoleLoginFromDb,
  consoleLoginToDb,
  consoleSessionFromDb,
  consoleSessionToDb,
  eventFromDb,
  keyFromDb,
  ledgerFromDb,
  reviewFromDb,
  reviewQuerySql,
  reviewToDb,
  reviewUpdateSql,
  sessionColumns,
  sessionFromDb,
  sessionQuerySql,
  likeSearchText,
  sessionToDb,
  toolPinFromDb,
  toolPinQuerySql,
  toolPinToDb,
  toolPinUpdateSql,
} from './rows.js';
import { type Store, StoreSchemaError, StoreUnavailableError } from './store.js';
import type { AccessRequestQuery, AccessRequestRow, AccessRequestStatus, AgentRow, ConsoleLoginRow, ConsoleSessionRow, EventRow, KeyRow, LedgerRow, ReviewQuery, ReviewRow, ReviewStatus, ReviewUpdate, SessionQuery, SessionRow, ToolPinRow, ToolPinUpdate, WriteBatch } from './types.js';

type Row = Record<string, string | number | null>;

/** BIGINT columns (µs times) as numbers: exact below 2^53, which µs since 1970 stay under until 2255. */
const int8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === int8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** `postgres://user@host:port/db?schema=name` → pg's connection string and the schema to use (default public). */
export function parsePostgresUrl(url: string): { connectionString: string; schema: string; location: string } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/i.test(schema)) throw new Error(`the store URL's schema ${JSON.stringify(schema)} is not a plain SQL identifier`);
  u.searchParams.delete('schema');
  const location = `postgres://${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname}${schema === 'public' ? '' : ` (schema ${schema})`}`;
  return { connectionString: u.toString(), schema, location };
}

/**
 * The shared store for production: many gateways write to one PostgreSQL database. A group commit is one
 * SQL statement (data-modifying CTEs over unnest() arrays), so it costs one round trip and is atomic
 * without BEGIN/COMMIT; one commit is in flight at a time, so commits land in order.
 */
export class PostgresStore implements Store {
  readonly backend = 'postgres' as const;
  readonly location: string;
  readonly #pool: pg.Pool;
  readonly #schema: string;
  /** How long a write (a batch, a heartbeat, a probe) may go unanswered before its connection is given up. */
  readonly #writeTimeoutMs: number;

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

  async #query(sql: string, params: unknown[] = [], timeoutMs?: number): Promise<Row[]> {
    try {
      return (await this.#pool.query({ text: sql, values: params, ...(timeoutMs ? { query_timeout: timeoutMs } : {}) } as pg.QueryConfig)).rows as Row[];
    } catch (err) {
      throw this.#describe(err);
    }
  }

  #describe(err: unknown): Error {
    if (err instanceof StoreSchemaError || err instanceof StoreUnavailableError) return err;
    const e = err as { message?: string; code?: string };
    return new StoreUnavailableError(`the PostgreSQL store ${this.location} failed: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`, { cause: err });
  }

  async migrate(): Promise<number> {
    const client = await this.#pool.connect().catch((err: unknown) => {
      throw this.#describe(err);
    });
    try {
      await client.query('BEGIN');
      // Gateways starting together migrate one at a time.
      await client.query("SELECT pg_advisory_xact_lock(hashtext('portcullis-migrations'))");
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.#schema}"`);
      await client.query(`SET LOCAL search_path TO "${this.#schema}"`);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at_us BIGINT NOT NULL)');
      const { rows } = await client.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations');
      const current = Number((rows[0] as { v: number }).v);
      if (current > latestVersion(postgresMigrations)) {
        throw new StoreSchemaError(`the store ${this.location} has schema version ${current}, newer than this Portcullis understands (${latestVersion(postgresMigrations)}); upgrade Portcullis`);
      }
      for (const m of postgresMigrations.filter((x) => x.version > current)) {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, description, applied_at_us) VALUES ($1, $2, $3)', [m.version, m.description, Date.now() * 1000]);
      }
      await client.query('COMMIT');
      return latestVersion(postgresMigrations);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw this.#describe(err);
    } finally {
      client.release();
    }
  }

  async checkSchema(): Promise<void> {
    const rows = await this.#query("SELECT to_regclass('schema_migrations') AS t");
    if (rows[0]?.t === null || rows[0]?.t === undefined) {
      throw new StoreSchemaError(`the store ${this.location} holds no recordings yet (no Portcullis schema); start the gateway once to create it`);
    }
    const v = Number((await this.#query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations'))[0]!.v);
    if (v > latestVersion(postgresMigrations)) throw new StoreSchemaError(`the store ${this.location} has schema version ${v}, newer than this Portcullis understands; upgrade Portcullis`);
  }

  async write(batch: WriteBatch): Promise<void> {
    const statement = buildBatchStatement(batch);
    if (statement === undefined) return;
    // A named statement is parsed and planned once per connection: batches come in a handful of shapes, and
    // planning every commit afresh cost PostgreSQL more than writing small batches did.
    let name = this.#statementNames.get(statement.sql);
    if (name === undefined) {
      name = `portcullis_batch_${this.#statementNames.size}`;
      this.#statementNames.set(statement.sql, name);
    }
    try {
      // A stalled server (connection open, no answer) must not hold the connection for ever: past the bound pg fails
      // the query and the pool discards the connection. (The recorder fails the exchanges waiting on it sooner.)
      await this.#pool.query({ name, text: statement.sql, values: statement.params, query_timeout: this.#writeTimeoutMs } as pg.QueryConfig);
    } catch (err) {
      throw this.#describe(err);
    }
  }

  readonly #statementNames = new Map<string, string>();

  async probe(): Promise<void> {
    const client = await this.#pool.connect().catch((err: unknown) => {
      throw this.#describe(err);
    });
    try {
      const bounded = (text: string) => client.query({ text, query_timeout: this.#writeTimeoutMs } as pg.QueryConfig);
      await bounded('BEGIN');
      await bounded("SET LOCAL lock_timeout = '500ms'");
      await bounded("INSERT INTO events (session_id, seq, time_us, mono_us, kind, payload, hash) VALUES ('portcullis-probe', -1, 0, 0, 'probe', '{}', '')");
      await bounded('ROLLBACK');
      client.release();
    } catch (err) {
      // A connection that failed or stalled mid-transaction is not given back to the pool.
      client.release(err as Error);
      throw this.#describe(err);
    }
  }

  async heartbeat(instanceId: string, nowUs: number): Promise<void> {
    await this.#query(
      'INSERT INTO instances (id, heartbeat_at_us) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET heartbeat_at_us = EXCLUDED.heartbeat_at_us',
      [instanceId, nowUs],
      this.#writeTimeoutMs,
    );
  }

  async staleInstances(beforeUs: number): Promise<string[]> {
    return (await this.#query('SELECT id FROM instances WHERE heartbeat_at_us < $1', [beforeUs])).map((r) => String(r.id));
  }

  async registerKey(key: KeyRow): Promise<void> {
    await this.#query('INSERT INTO signing_keys (key_id, public_key, instance_id, created_at_us) VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING', [
      key.keyId,
      key.publicKey,
      key.instanceId,
      key.createdAtUs,
    ]);
  }

  async insertAccessRequest(row: AccessRequestRow): Promise<boolean> {
    const { columns, values } = accessRequestToDb(row);
    const sql = `INSERT INTO access_requests (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT DO NOTHING RETURNING id`;
    return (await this.#query(sql, values)).length === 1;
  }

  async getAccessRequest(id: string): Promise<AccessRequestRow | undefined> {
    const rows = await this.#query('SELECT * FROM access_requests WHERE id = $1', [id]);
    return rows[0] === undefined ? undefined : accessRequestFromDb(rows[0]);
  }

  async listAccessRequests(query: AccessRequestQuery): Promise<AccessRequestRow[]> {
    const params: Array<string | number> = [];
    const sql = accessQuerySql(query, (v) => {
      params.push(v);
      return `$${params.length}`;
    });
    return (await this.#query(sql, params)).map(accessRequestFromDb);
  }

  async updateAccessRequest(id: string, from: AccessRequestStatus, to: Parameters<Store['updateAccessRequest']>[2]): Promise<boolean> {
    const params: Array<string | number | null> = [];
    const set = accessUpdateSql(to, (v) => {
      params.push(v);
      return `$${params.length}`;
    });
    params.push(id, from);
    const rows = await this.#query(`UPDATE access_requests SET ${set} WHERE id = $${params.length - 1} AND status = $${params.length} RETURNING id`, params);
    return rows.length === 1;
  }

  async insertReview(row: ReviewRow): Promise<void> {
    const { columns, values } = reviewToDb(row);
    await this.#query(`INSERT INTO reviews (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, values);
  }

  async getReview(id: string): Promise<ReviewRow | undefined> {
    const rows = await this.#query('SELECT * FROM reviews WHERE id = $1', [id]);
    return rows[0] === undefined ? undefined : reviewFromDb(rows[0]);
  }

  async listReviews(query: ReviewQuery): Promise<ReviewRow[]> {
    const params: Array<string | number> = [];
    const sql = reviewQuerySql(query, (v) => {
      params.push(v);
      return `$${params.length}`;
    });
    return (await this.#query(sql, params)).map(reviewFromDb);
  }

  async updateReview(id: string, from: { status: ReviewStatus; approvalCount: number }, to: ReviewUpdate): Promise<boolean> {
    const params: Array<string | number | null> = [];
    const sql = reviewUpdateSql(id, from, to, (v) => {
      params.push(v);
      return `$${params.length}`;
    });
    return (await this.#query(`${sql} RETURNING id`, params)).length === 1;
  }

  async insertToolPin(row: ToolPinRow): Promise<boolean> {
    const { columns, values } = toolPinToDb(row);
    const sql = `INSERT INTO tool_pins (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (connection, tool) DO NOTHING RETURNING tool`;
    return (await this.#query(sql, values)).length === 1;
  }

  async listToolPins(connection?: string): Promise<ToolPinRow[]> {
    const params: Array<string | number> = [];
    const sql = toolPinQuerySql(connection, (v) => {
      params.push(v);
      return `$${params.length}`;
    });
    return (await this.#query(sql, params)).map(toolPinFromDb);
  }

  async updateToolPin(connection: string, tool: string, expect: { digest: string | null; pendingDigest: string | null }, to: ToolPinUpdate): Promise<boolean> {
    const params: Array<string | number | null> = [];
    const sql = toolPinUpdateSql(
      connection,
      tool,
      expect,
      to,
      (v) => {
        params.push(v);
        return `$${params.length}`;
      },
      'IS NOT DISTINCT FROM',
    );
    return (await this.#query(`${sql} RETURNING tool`, params)).length === 1;
  }

  async putAgent(row: AgentRow, replace: boolean): Promise<boolean> {
    const params: Array<string | number | null> = [];
    const sql = agentPutSql(row, replace, (v) => {
      params.push(v);
      return `$${params.length}`;
    });
    return (await this.#query(`${sql} RETURNING name`, params)).length === 1;
  }

  async getAgent(name: string): Promise<AgentRow | undefined> {
    const rows = await this.#query('SELECT * FROM agents WHERE name = $1', [name]);
    return rows[0] === undefined ? undefined : agentFromDb(rows[0]);
  }

  async listAgents(): Promise<AgentRow[]> {
    return (await this.#query(agentListSql)).map(agentFromDb);
  }

  async updateAgent(name: string, to: Parameters<Store['updateAgent']>[1]): Promise<boolean> {
    const params: Array<string | number | null> = [];
    const sql = agentUpdateSql(name, to, (v) => {
      params.push(v);
      return `$${params.length}`;
    });
    return (await this.#query(`${sql} RETURNING name`, params)).length === 1;
  }

  async putConsoleLogin(row: ConsoleLoginRow): Promise<void> {
    const { columns, values } = consoleLoginToDb(row);
    await this.#query(`INSERT INTO console_logins (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, values);
  }

  async takeConsoleLogin(state: string, nowUs: number): Promise<ConsoleLoginRow | undefined> {
    const [row] = await this.#query('DELETE FROM console_logins WHERE state = $1 RETURNING *', [state]);
    const login = row === undefined ? undefined : consoleLoginFromDb(row);
    return login !== undefined && login.expiresAtUs > nowUs ? login : undefined;
  }

  async putConsoleSession(row: ConsoleSessionRow): Promise<void> {
    const { columns, values } = consoleSessionToDb(row);
    await this.#query(`INSERT INTO console_sessions (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, values);
  }

  async getConsoleSession(idHash: string, nowUs: number): Promise<ConsoleSessionRow | undefined> {
    const [row] = await this.#query('SELECT * FROM console_sessions WHERE id_hash = $1 AND expires_at_us > $2', [idHash, nowUs]);
    return row === undefined ? undefined : consoleSessionFromDb(row);
  }

  async deleteConsoleSession(idHash: string): Promise<void> {
    await this.#query('DELETE FROM console_sessions WHERE id_hash = $1', [idHash]);
  }

  async pruneConsole(nowUs: number): Promise<number> {
    const logins = await this.#query('DELETE FROM console_logins WHERE expires_at_us <= $1 RETURNING state', [nowUs]);
    const sessions = await this.#query('DELETE FROM console_sessions WHERE expires_at_us <= $1 RETURNING id_hash', [nowUs]);
    return logins.length + sessions.length;
  }

  async getSession(id: string): Promise<SessionRow | undefined> {
    const rows = await this.#query('SELECT * FROM sessions WHERE id = $1', [id]);
    return rows[0] === undefined ? undefined : sessionFromDb(rows[0]);
  }

  async listSessions(query: SessionQuery): Promise<SessionRow[]> {
    const params: unknown[] = [];
    const sql = sessionQuerySql(query, (v) => {
      params.push(v);
      return `$${params.length}`;
    }, likeSearchText);
    return (await this.#query(sql, params)).map(sessionFromDb);
  }

  async openSessions(instanceIds?: readonly string[]): Promise<SessionRow[]> {
    const rows =
      instanceIds === undefined
        ? await this.#query("SELECT * FROM sessions WHERE status = 'open' ORDER BY opened_at_us")
        : await this.#query("SELECT * FROM sessions WHERE status = 'open' AND instance_id = ANY($1) ORDER BY opened_at_us", [instanceIds]);
    return rows.map(sessionFromDb);
  }

  async expiredSessions(beforeUs: number, limit: number): Promise<SessionRow[]> {
    return (await this.#query("SELECT * FROM sessions WHERE status <> 'open' AND closed_at_us < $1 ORDER BY closed_at_us LIMIT $2", [beforeUs, limit])).map(sessionFromDb);
  }

  async events(sessionId: string, afterSeq: number, limit: number): Promise<EventRow[]> {
    return (await this.#query('SELECT * FROM events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [sessionId, afterSeq, limit])).map(eventFromDb);
  }

  async openingEvents(sessionIds: readonly string[]): Promise<EventRow[]> {
    if (sessionIds.length === 0) return [];
    return (await this.#query('SELECT * FROM events WHERE seq = 0 AND session_id = ANY($1::text[])', [sessionIds])).map(eventFromDb);
  }

  async lastEvent(sessionId: string): Promise<EventRow | undefined> {
    const rows = await this.#query('SELECT * FROM events WHERE session_id = $1 ORDER BY seq DESC LIMIT 1', [sessionId]);
    return rows[0] === undefined ? undefined : eventFromDb(rows[0]);
  }

  async ledger(instanceId: string, afterSeq: number, limit: number): Promise<LedgerRow[]> {
    return (await this.#query('SELECT * FROM ledger WHERE instance_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [instanceId, afterSeq, limit])).map(ledgerFromDb);
  }

  async ledgerInstances(): Promise<string[]> {
    return (await this.#query('SELECT DISTINCT instance_id FROM ledger ORDER BY instance_id')).map((r) => String(r.instance_id));
  }

  async ledgerHead(instanceId: string): Promise<LedgerRow | undefined> {
    const rows = await this.#query('SELECT * FROM ledger WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1', [instanceId]);
    return rows[0] === undefined ? undefined : ledgerFromDb(rows[0]);
  }

  async ledgerFor(sessionId: string): Promise<LedgerRow[]> {
    return (await this.#query('SELECT * FROM ledger WHERE session_id = $1 ORDER BY time_us, seq', [sessionId])).map(ledgerFromDb);
  }

  async keys(): Promise<KeyRow[]> {
    return (await this.#query('SELECT * FROM signing_keys ORDER BY created_at_us')).map(keyFromDb);
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }
}

/**
 * One statement for a whole group commit. Data-modifying CTEs share one snapshot, so an UPDATE cannot see a
 * row inserted beside it: facts about a session opened in the same batch (its negotiated details, its seal)
 * are folded into the row before it is inserted, and only older sessions are updated.
 */
export function buildBatchStatement(batch: WriteBatch): { sql: string; params: unknown[] } | undefined {
  const params: unknown[] = [];
  const p = (value: unknown, type: string) => {
    params.push(value);
    return `$${params.length}::${type}`;
  };
  const opened = new Map(batch.sessionsOpened.map((s) => [s.id, { ...s }]));
  const negotiated = batch.negotiated.filter((n) => {
    const row = opened.get(n.id);
    if (row === undefined) return true;
    Object.assign(row, { clientInfo: n.clientInfo, serverInfo: n.serverInfo, protocolVersion: n.protocolVersion });
    return false;
  });
  const sealed = batch.sealed.filter((s) => {
    const row = opened.get(s.id);
    if (row === undefined) return true;
    const { id: _id, ...fields } = s;
    Object.assign(row, fields);
    return false;
  });
  const parts: string[] = [];
  if (opened.size > 0) {
    const rows = [...opened.values()].map(sessionToDb);
    const types = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'int8', 'int8', 'text', 'text', 'int4', 'text', 'text', 'text', 'int4', 'int4', 'text'];
    const arrays = sessionColumns.map((_, i) => p(rows.map((r) => r[i]), `${types[i]}[]`));
    parts.push(`INSERT INTO sessions (${sessionColumns.join(', ')}) SELECT * FROM unnest(${arrays.join(', ')})`);
  }
  if (batch.events.length > 0) {
    // The hot path: one JSON text for all the events, parsed by PostgreSQL in C, rather than ten array literals
    // whose escaping of every payload costs the gateway more than the JSON encoding does.
    const rows = batch.events.map((e) => ({ s: e.sessionId, q: e.seq, t: e.timeUs, m: e.monoUs, k: e.kind, d: e.direction, b: e.boundary, p: e.payload, f: e.forwarded, h: e.hash }));
    parts.push(
      `INSERT INTO events (session_id, seq, time_us, mono_us, kind, direction, boundary, payload, forwarded, hash)
       SELECT s, q, t, m, k, d, b, p, f, h FROM json_to_recordset(${p(JSON.stringify(rows), 'json')})
         AS x(s text, q int, t bigint, m bigint, k text, d text, b text, p text, f text, h text)`,
    );
  }
  // One UPDATE per existing session, whatever the batch learned of it: two updates of one row in one statement would lose one.
  const updates = new Map<string, { n?: (typeof negotiated)[number]; s?: (typeof sealed)[number] }>();
  for (const n of negotiated) updates.set(n.id, { ...updates.get(n.id), n });
  for (const x of sealed) updates.set(x.id, { ...updates.get(x.id), s: x });
  if (updates.size > 0) {
    const u = [...updates.entries()];
    const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
    parts.push(
      `UPDATE sessions s SET
         client_info = CASE WHEN u.hn THEN u.ci ELSE s.client_info END,
         server_info = CASE WHEN u.hn THEN u.si ELSE s.server_info END,
         protocol_version = CASE WHEN u.hn THEN u.pv ELSE s.protocol_version END,
         status = CASE WHEN u.hs THEN u.st ELSE s.status END,
         closed_at_us = CASE WHEN u.hs THEN u.ca ELSE s.closed_at_us END,
         close_reason = CASE WHEN u.hs THEN u.cr ELSE s.close_reason END,
         event_count = CASE WHEN u.hs THEN u.ec ELSE s.event_count END,
         last_hash = CASE WHEN u.hs THEN u.lh ELSE s.last_hash END,
         seal = CASE WHEN u.hs THEN u.se ELSE s.seal END,
         seal_key_id = CASE WHEN u.hs THEN u.sk ELSE s.seal_key_id END,
         denials = CASE WHEN u.hs THEN u.de ELSE s.denials END,
         redactions = CASE WHEN u.hs THEN u.re ELSE s.redactions END
       FROM unnest(${[
         p(u.map(([id]) => id), 'text[]'),
         p(u.map(([, x]) => x.n !== undefined), 'bool[]'),
         p(u.map(([, x]) => json(x.n?.clientInfo)), 'text[]'),
         p(u.map(([, x]) => json(x.n?.serverInfo)), 'text[]'),
         p(u.map(([, x]) => x.n?.protocolVersion ?? null), 'text[]'),
         p(u.map(([, x]) => x.s !== undefined), 'bool[]'),
         p(u.map(([, x]) => x.s?.status ?? null), 'text[]'),
         p(u.map(([, x]) => x.s?.closedAtUs ?? null), 'int8[]'),
         p(u.map(([, x]) => x.s?.closeReason ?? null), 'text[]'),
         p(u.map(([, x]) => x.s?.eventCount ?? null), 'int4[]'),
         p(u.map(([, x]) => x.s?.lastHash ?? null), 'text[]'),
         p(u.map(([, x]) => x.s?.seal ?? null), 'text[]'),
         p(u.map(([, x]) => x.s?.sealKeyId ?? null), 'text[]'),
         p(u.map(([, x]) => x.s?.denials ?? null), 'int4[]'),
         p(u.map(([, x]) => x.s?.redactions ?? null), 'int4[]'),
       ].join(', ')}) AS u(id, hn, ci, si, pv, hs, st, ca, cr, ec, lh, se, sk, de, re) WHERE s.id = u.id`,
    );
  }
  if (batch.ledger.length > 0) {
    const l = batch.ledger;
    parts.push(
      `INSERT INTO ledger (instance_id, seq, time_us, kind, session_id, detail, hash) SELECT * FROM unnest(${[
        p(l.map((x) => x.instanceId), 'text[]'),
        p(l.map((x) => x.seq), 'int4[]'),
        p(l.map((x) => x.timeUs), 'int8[]'),
        p(l.map((x) => x.kind), 'text[]'),
        p(l.map((x) => x.sessionId), 'text[]'),
        p(l.map((x) => x.detail), 'text[]'),
        p(l.map((x) => x.hash), 'text[]'),
      ].join(', ')})`,
    );
  }
  if (batch.deletions.length > 0) {
    const ids = p(batch.deletions, 'text[]');
    parts.push(`DELETE FROM events WHERE session_id = ANY(${ids})`);
    parts.push(`DELETE FROM sessions WHERE id = ANY(${ids})`);
  }
  if (parts.length === 0) return undefined;
  if (parts.length === 1) return { sql: parts[0]!, params };
  const ctes = parts.slice(0, -1).map((sql, i) => `w${i} AS (${sql})`);
  return { sql: `WITH ${ctes.join(', ')} ${parts.at(-1)!}`, params };
}
