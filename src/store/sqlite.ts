import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { latestVersion, type Migration, sqliteMigrations } from './migrations.js';
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
  likeEachColumn,
  sessionToDb,
  toolPinFromDb,
  toolPinQuerySql,
  toolPinToDb,
  toolPinUpdateSql,
} from './rows.js';
import { type Store, StoreSchemaError, StoreUnavailableError } from './store.js';
import type { AccessRequestQuery, AccessRequestRow, AccessRequestStatus, AgentRow, ConsoleLoginRow, ConsoleSessionRow, EventRow, KeyRow, LedgerRow, ReviewQuery, ReviewRow, ReviewStatus, ReviewUpdate, SessionQuery, SessionRow, ToolPinRow, ToolPinUpdate, WriteBatch } from './types.js';

type Row = Record<string, string | number | null>;

export interface SqliteOptions {
  /** `full` fsyncs every group commit (durable across power loss); `normal` is durable across a crash of the gateway. */
  sync: 'normal' | 'full';
  /** How long a write waits for a lock held by another process before the store counts as unavailable. */
  busyTimeoutMs?: number;
  /** A reader (the CLI) opens an existing store and never migrates it. */
  reader?: boolean;
}

/**
 * The embedded store: one SQLite file in WAL mode (readers never block the writer). better-sqlite3 is
 * synchronous, which suits the group commit: a batch is written in one transaction on the event loop, in
 * microseconds, with no thread hand-off.
 */
export class SqliteStore implements Store {
  readonly backend = 'sqlite' as const;
  readonly location: string;
  readonly #db: Database.Database;
  readonly #insertSession: Database.Statement;
  readonly #insertEvent: Database.Statement;
  readonly #updateNegotiated: Database.Statement;
  readonly #updateSeal: Database.Statement;
  readonly #insertLedger: Database.Statement;
  readonly #deleteEvents: Database.Statement;
  readonly #deleteSession: Database.Statement;
  readonly #writeBatch: Database.Transaction<(batch: WriteBatch) => void>;
  readonly #busyTimeoutMs: number;
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
      this.#migrateSync();
      this.#checkpointer = new Worker(new URL('./sqlite-checkpointer.js', import.meta.url), { workerData: { path, intervalMs: 1000 } });
      this.#checkpointer.unref();
      // A checkpoint that fails is retried on the next tick; the WAL only grows meanwhile.
      this.#checkpointer.on('error', () => {});
    } else {
      this.#checkSchemaSync();
    }

    const placeholders = sessionColumns.map(() => '?').join(', ');
    this.#insertSession = this.#db.prepare(`INSERT INTO sessions (${sessionColumns.join(', ')}) VALUES (${placeholders})`);
    this.#insertEvent = this.#db.prepare(
      'INSERT INTO events (session_id, seq, time_us, mono_us, kind, direction, boundary, payload, forwarded, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.#updateNegotiated = this.#db.prepare('UPDATE sessions SET client_info = ?, server_info = ?, protocol_version = ? WHERE id = ?');
    this.#updateSeal = this.#db.prepare(
      `UPDATE sessions SET status = ?, closed_at_us = ?, close_reason = ?, event_count = ?, last_hash = ?, seal = ?, seal_key_id = ?,
       denials = ?, redactions = ? WHERE id = ?`,
    );
    this.#insertLedger = this.#db.prepare('INSERT INTO ledger (instance_id, seq, time_us, kind, session_id, detail, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#deleteEvents = this.#db.prepare('DELETE FROM events WHERE session_id = ?');
    this.#deleteSession = this.#db.prepare('DELETE FROM sessions WHERE id = ?');
    this.#writeBatch = this.#db.transaction((b: WriteBatch) => {
      for (const s of b.sessionsOpened) this.#insertSession.run(...sessionToDb(s));
      for (const e of b.events) this.#insertEvent.run(e.sessionId, e.seq, e.timeUs, e.monoUs, e.kind, e.direction, e.boundary, e.payload, e.forwarded, e.hash);
      for (const n of b.negotiated) {
        this.#updateNegotiated.run(n.clientInfo == null ? null : JSON.stringify(n.clientInfo), n.serverInfo == null ? null : JSON.stringify(n.serverInfo), n.protocolVersion, n.id);
      }
      for (const s of b.sealed) {
        this.#updateSeal.run(s.status, s.closedAtUs, s.closeReason, s.eventCount, s.lastHash, s.seal, s.sealKeyId, s.denials, s.redactions, s.id);
      }
      for (const l of b.ledger) this.#insertLedger.run(l.instanceId, l.seq, l.timeUs, l.kind, l.sessionId, l.detail, l.hash);
      for (const id of b.deletions) {
        this.#deleteEvents.run(id);
        this.#deleteSession.run(id);
      }
    });
  }

  #schemaVersion(): number {
    const exists = this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    if (exists === undefined) return 0;
    const row = this.#db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
    return row.v ?? 0;
  }

  #migrateSync(): number {
    const apply = this.#db.transaction((pending: readonly Migration[]) => {
      this.#db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at_us INTEGER NOT NULL)');
      for (const m of pending) {
        this.#db.exec(m.sql);
        this.#db.prepare('INSERT INTO schema_migrations (version, description, applied_at_us) VALUES (?, ?, ?)').run(m.version, m.description, Date.now() * 1000);
      }
    });
    const current = this.#schemaVersion();
    if (current > latestVersion(sqliteMigrations)) {
      throw new StoreSchemaError(`the store ${this.location} has schema version ${current}, newer than this Portcullis understands (${latestVersion(sqliteMigrations)}); upgrade Portcullis`);
    }
    apply.immediate(sqliteMigrations.filter((m) => m.version > current));
    return this.#schemaVersion();
  }

  #checkSchemaSync(): void {
    const v = this.#schemaVersion();
    if (v === 0) throw new StoreSchemaError(`the store ${this.location} holds no recordings yet (no Portcullis schema); start the gateway once to create it`);
    if (v > latestVersion(sqliteMigrations)) {
      throw new StoreSchemaError(`the store ${this.location} has schema version ${v}, newer than this Portcullis understands; upgrade Portcullis`);
    }
  }

  async migrate(): Promise<number> {
    return this.#migrateSync();
  }

  async checkSchema(): Promise<void> {
    this.#checkSchemaSync();
  }

  async write(batch: WriteBatch): Promise<void> {
    this.writeSync(batch);
  }

  /** The group commit's path: synchronous, so a batch costs no promise and no thread hand-off. */
  writeSync(batch: WriteBatch): void {
    try {
      this.#writeBatch.immediate(batch);
    } catch (err) {
      throw new StoreUnavailableError(`the SQLite store ${this.location} did not take the write: ${(err as Error).message}`, { cause: err });
    }
  }

  async probe(): Promise<void> {
    // Never wait on a lock here: a probe that blocked the event loop would stall every session.
    this.#db.pragma('busy_timeout = 0');
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        this.#insertEvent.run('portcullis-probe', -1, 0, 0, 'probe', null, null, '{}', null, '');
      } finally {
        this.#db.exec('ROLLBACK');
      }
    } catch (err) {
      throw new StoreUnavailableError(`the SQLite store ${this.location} still does not take writes: ${(err as Error).message}`, { cause: err });
    } finally {
      this.#db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
    }
  }

  async heartbeat(instanceId: string, nowUs: number): Promise<void> {
    try {
      this.#db
        .prepare('INSERT INTO instances (id, heartbeat_at_us) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at_us = excluded.heartbeat_at_us')
        .run(instanceId, nowUs);
    } catch (err) {
      throw new StoreUnavailableError(`the SQLite store ${this.location} did not take the write: ${(err as Error).message}`, { cause: err });
    }
  }

  async staleInstances(beforeUs: number): Promise<string[]> {
    return (this.#db.prepare('SELECT id FROM instances WHERE heartbeat_at_us < ?').all(beforeUs) as Row[]).map((r) => String(r.id));
  }

  async registerKey(key: KeyRow): Promise<void> {
    this.#db
      .prepare('INSERT INTO signing_keys (key_id, public_key, instance_id, created_at_us) VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING')
      .run(key.keyId, key.publicKey, key.instanceId, key.createdAtUs);
  }

  #writing<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new StoreUnavailableError(`the SQLite store ${this.location} did not take the write: ${(err as Error).message}`, { cause: err });
    }
  }

  async insertAccessRequest(row: AccessRequestRow): Promise<boolean> {
    const { columns, values } = accessRequestToDb(row);
    const sql = `INSERT INTO access_requests (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ON CONFLICT DO NOTHING`;
    return this.#writing(() => this.#db.prepare(sql).run(...values).changes === 1);
  }

  async getAccessRequest(id: string): Promise<AccessRequestRow | undefined> {
    const row = this.#db.prepare('SELECT * FROM access_requests WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : accessRequestFromDb(row);
  }

  async listAccessRequests(query: AccessRequestQuery): Promise<AccessRequestRow[]> {
    const params: Array<string | number> = [];
    const sql = accessQuerySql(query, (v) => {
      params.push(v);
      return '?';
    });
    return (this.#db.prepare(sql).all(...params) as Row[]).map(accessRequestFromDb);
  }

  async updateAccessRequest(id: string, from: AccessRequestStatus, to: Parameters<Store['updateAccessRequest']>[2]): Promise<boolean> {
    const params: Array<string | number | null> = [];
    const set = accessUpdateSql(to, (v) => {
      params.push(v);
      return '?';
    });
    return this.#writing(() => this.#db.prepare(`UPDATE access_requests SET ${set} WHERE id = ? AND status = ?`).run(...params, id, from).changes === 1);
  }

  async insertReview(row: ReviewRow): Promise<void> {
    const { columns, values } = reviewToDb(row);
    const sql = `INSERT INTO reviews (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
    this.#writing(() => this.#db.prepare(sql).run(...values));
  }

  async getReview(id: string): Promise<ReviewRow | undefined> {
    const row = this.#db.prepare('SELECT * FROM reviews WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : reviewFromDb(row);
  }

  async listReviews(query: ReviewQuery): Promise<ReviewRow[]> {
    const params: Array<string | number> = [];
    const sql = reviewQuerySql(query, (v) => {
      params.push(v);
      return '?';
    });
    return (this.#db.prepare(sql).all(...params) as Row[]).map(reviewFromDb);
  }

  async updateReview(id: string, from: { status: ReviewStatus; approvalCount: number }, to: ReviewUpdate): Promise<boolean> {
    const params: Array<string | number | null> = [];
    const sql = reviewUpdateSql(id, from, to, (v) => {
      params.push(v);
      return '?';
    });
    return this.#writing(() => this.#db.prepare(sql).run(...params).changes === 1);
  }

  async insertToolPin(row: ToolPinRow): Promise<boolean> {
    const { columns, values } = toolPinToDb(row);
    const sql = `INSERT INTO tool_pins (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ON CONFLICT (connection, tool) DO NOTHING`;
    return this.#writing(() => this.#db.prepare(sql).run(...values).changes === 1);
  }

  async listToolPins(connection?: string): Promise<ToolPinRow[]> {
    const params: Array<string | number> = [];
    const sql = toolPinQuerySql(connection, (v) => {
      params.push(v);
      return '?';
    });
    return (this.#db.prepare(sql).all(...params) as Row[]).map(toolPinFromDb);
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
        return '?';
      },
      'IS',
    );
    return this.#writing(() => this.#db.prepare(sql).run(...params).changes === 1);
  }

  async putAgent(row: AgentRow, replace: boolean): Promise<boolean> {
    const params: Array<string | number | null> = [];
    const sql = agentPutSql(row, replace, (v) => {
      params.push(v);
      return '?';
    });
    return this.#writing(() => this.#db.prepare(sql).run(...params).changes === 1);
  }

  async getAgent(name: string): Promise<AgentRow | undefined> {
    const row = this.#db.prepare('SELECT * FROM agents WHERE name = ?').get(name) as Row | undefined;
    return row === undefined ? undefined : agentFromDb(row);
  }

  async listAgents(): Promise<AgentRow[]> {
    return (this.#db.prepare(agentListSql).all() as Row[]).map(agentFromDb);
  }

  async updateAgent(name: string, to: Parameters<Store['updateAgent']>[1]): Promise<boolean> {
    const params: Array<string | number | null> = [];
    const sql = agentUpdateSql(name, to, (v) => {
      params.push(v);
      return '?';
    });
    return this.#writing(() => this.#db.prepare(sql).run(...params).changes === 1);
  }

  async putConsoleLogin(row: ConsoleLoginRow): Promise<void> {
    const { columns, values } = consoleLoginToDb(row);
    this.#writing(() => this.#db.prepare(`INSERT INTO console_logins (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(...values));
  }

  async takeConsoleLogin(state: string, nowUs: number): Promise<ConsoleLoginRow | undefined> {
    const row = this.#writing(() => this.#db.prepare('DELETE FROM console_logins WHERE state = ? RETURNING *').get(state) as Row | undefined);
    const login = row === undefined ? undefined : consoleLoginFromDb(row);
    return login !== undefined && login.expiresAtUs > nowUs ? login : undefined;
  }

  async putConsoleSession(row: ConsoleSessionRow): Promise<void> {
    const { columns, values } = consoleSessionToDb(row);
    this.#writing(() => this.#db.prepare(`INSERT INTO console_sessions (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(...values));
  }

  async getConsoleSession(idHash: string, nowUs: number): Promise<ConsoleSessionRow | undefined> {
    const row = this.#db.prepare('SELECT * FROM console_sessions WHERE id_hash = ? AND expires_at_us > ?').get(idHash, nowUs) as Row | undefined;
    return row === undefined ? undefined : consoleSessionFromDb(row);
  }

  async deleteConsoleSession(idHash: string): Promise<void> {
    this.#writing(() => this.#db.prepare('DELETE FROM console_sessions WHERE id_hash = ?').run(idHash));
  }

  async pruneConsole(nowUs: number): Promise<number> {
    return this.#writing(
      () => this.#db.prepare('DELETE FROM console_logins WHERE expires_at_us <= ?').run(nowUs).changes + this.#db.prepare('DELETE FROM console_sessions WHERE expires_at_us <= ?').run(nowUs).changes,
    );
  }

  async getSession(id: string): Promise<SessionRow | undefined> {
    const row = this.#db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : sessionFromDb(row);
  }

  async listSessions(query: SessionQuery): Promise<SessionRow[]> {
    const params: Array<string | number | null> = [];
    const sql = sessionQuerySql(query, (v) => {
      params.push(v);
      return '?';
    }, likeEachColumn);
    return (this.#db.prepare(sql).all(...params) as Row[]).map(sessionFromDb);
  }

  async openSessions(instanceIds?: readonly string[]): Promise<SessionRow[]> {
    if (instanceIds !== undefined && instanceIds.length === 0) return [];
    const rows =
      instanceIds === undefined
        ? this.#db.prepare("SELECT * FROM sessions WHERE status = 'open' ORDER BY opened_at_us").all()
        : this.#db.prepare(`SELECT * FROM sessions WHERE status = 'open' AND instance_id IN (${instanceIds.map(() => '?').join(', ')}) ORDER BY opened_at_us`).all(...instanceIds);
    return (rows as Row[]).map(sessionFromDb);
  }

  async expiredSessions(beforeUs: number, limit: number): Promise<SessionRow[]> {
    const rows = this.#db.prepare("SELECT * FROM sessions WHERE status <> 'open' AND closed_at_us < ? ORDER BY closed_at_us LIMIT ?").all(beforeUs, limit);
    return (rows as Row[]).map(sessionFromDb);
  }

  async events(sessionId: string, afterSeq: number, limit: number): Promise<EventRow[]> {
    const rows = this.#db.prepare('SELECT * FROM events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(sessionId, afterSeq, limit);
    return (rows as Row[]).map(eventFromDb);
  }

  async openingEvents(sessionIds: readonly string[]): Promise<EventRow[]> {
    if (sessionIds.length === 0) return [];
    const rows = this.#db.prepare(`SELECT * FROM events WHERE seq = 0 AND session_id IN (${sessionIds.map(() => '?').join(', ')})`).all(...sessionIds);
    return (rows as Row[]).map(eventFromDb);
  }

  async lastEvent(sessionId: string): Promise<EventRow | undefined> {
    const row = this.#db.prepare('SELECT * FROM events WHERE session_id = ? ORDER BY seq DESC LIMIT 1').get(sessionId) as Row | undefined;
    return row === undefined ? undefined : eventFromDb(row);
  }

  async ledger(instanceId: string, afterSeq: number, limit: number): Promise<LedgerRow[]> {
    const rows = this.#db.prepare('SELECT * FROM ledger WHERE instance_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(instanceId, afterSeq, limit);
    return (rows as Row[]).map(ledgerFromDb);
  }

  async ledgerInstances(): Promise<string[]> {
    return (this.#db.prepare('SELECT DISTINCT instance_id FROM ledger ORDER BY instance_id').all() as Row[]).map((r) => String(r.instance_id));
  }

  async ledgerHead(instanceId: string): Promise<LedgerRow | undefined> {
    const row = this.#db.prepare('SELECT * FROM ledger WHERE instance_id = ? ORDER BY seq DESC LIMIT 1').get(instanceId) as Row | undefined;
    return row === undefined ? undefined : ledgerFromDb(row);
  }

  async ledgerFor(sessionId: string): Promise<LedgerRow[]> {
    return (this.#db.prepare('SELECT * FROM ledger WHERE session_id = ? ORDER BY time_us, seq').all(sessionId) as Row[]).map(ledgerFromDb);
  }

  async keys(): Promise<KeyRow[]> {
    return (this.#db.prepare('SELECT * FROM signing_keys ORDER BY created_at_us').all() as Row[]).map(keyFromDb);
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
}
