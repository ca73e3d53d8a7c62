import type { DatabasePort, Row } from './port.js';
import { batchStatement, writeBatchRows } from './recording-batch.js';
import { recoverySealStatement, writeRecoverySealRows } from './recovery-seal.js';
import { eventFromDb, keyFromDb, ledgerFromDb, sessionFromDb } from './recording-rows.js';
import { join, list, raw, type Sql, sql } from './sql.js';
import { storeNowUs } from './store-clock.js';
import { type EventRow, type KeyRow, type LedgerRow, modernEdge, type SessionQuery, type SessionRow, type WriteBatch } from './types.js';

/**
 * The recordings: sessions, their events, each instance's ledger, signing keys and instance heartbeats. The
 * recorder is the only writer; the CLI, the API and the console read.
 */
export interface RecordingStore {
  /** Writes a group commit in one transaction: all of it or nothing. */
  write(batch: WriteBatch): Promise<void>;
  /**
   * The same, done before it returns, where the backend answers in this thread (SQLite): the recorder's group
   * commit then costs no promise and no thread hand-off. Absent on a network store.
   */
  readonly writeSync?: (batch: WriteBatch) => void;
  /**
   * Writes a recovery seal (a batch of one session's close event, its seal and the ledger row: recovery-seal.ts) only if
   * the session is still open and its close event's sequence number still free; false, with nothing written, when
   * another gateway sealed it first or the session was written past the head the seal goes on from.
   */
  sealRecovered(batch: WriteBatch): Promise<boolean>;
  /**
   * Proves the store takes event writes again after a failure: inserts a throw-away event in a transaction that
   * is rolled back (so locks, permissions and triggers are exercised) without waiting on a lock.
   */
  probe(): Promise<void>;
  /**
   * This instance is alive: its heartbeat's time is the store's clock (`nowUs` only for tests that plant an old one).
   * With `boot` (the membership's nonce of this process), only the row that boot holds is beaten, and false says
   * another process holds the id now: a replica that lost its identity never keeps the row alive.
   */
  heartbeat(instanceId: string, o?: { nowUs?: number; boot?: string }): Promise<boolean>;
  /** Instances silent (by the store's clock) for longer than `silentForUs`, or that left the membership. */
  staleInstances(silentForUs: number): Promise<string[]>;
  registerKey(key: KeyRow): Promise<void>;

  getSession(id: string): Promise<SessionRow | undefined>;
  listSessions(query: SessionQuery): Promise<SessionRow[]>;
  /** Sessions still marked open, optionally only those of some instances. */
  openSessions(instanceIds?: readonly string[]): Promise<SessionRow[]>;
  /**
   * Sealed sessions that closed before `beforeUs`, oldest first; with `keepUnshippedFor` (audit sink names), not those
   * one of these sinks is to ship and has not shipped whole (audit streams never lose to retention: store/audit.ts);
   * with `exceptErased`, not those whose data key is erased (retention's erase mode has done them).
   */
  expiredSessions(beforeUs: number, limit: number, keepUnshippedFor?: readonly string[], exceptErased?: boolean): Promise<SessionRow[]>;
  /** Events after `afterSeq`, in order, at most `limit`. */
  events(sessionId: string, afterSeq: number, limit: number): Promise<EventRow[]>;
  lastEvent(sessionId: string): Promise<EventRow | undefined>;
  /** The first event (seq 0, the opening) of each of these sessions that has one, in no particular order. */
  openingEvents(sessionIds: readonly string[]): Promise<EventRow[]>;
  /** Ledger rows of one instance after `afterSeq`, in order. */
  ledger(instanceId: string, afterSeq: number, limit: number): Promise<LedgerRow[]>;
  ledgerInstances(): Promise<string[]>;
  ledgerHead(instanceId: string): Promise<LedgerRow | undefined>;
  /** Every ledger row that names a session (opened, sealed, tombstone). */
  ledgerFor(sessionId: string): Promise<LedgerRow[]>;
  keys(): Promise<KeyRow[]>;
}

export function recordingStore(db: DatabasePort): RecordingStore {
  const { sync } = db;
  const writeSync = sync === undefined ? undefined : (batch: WriteBatch) => sync.transaction(() => writeBatchRows(sync.run, batch));
  const first = async <T>(statement: Sql, map: (r: Row) => T): Promise<T | undefined> => {
    const [row] = await db.query(statement);
    return row === undefined ? undefined : map(row);
  };
  return {
    ...(writeSync === undefined ? {} : { writeSync }),
    async write(batch) {
      if (writeSync !== undefined) return writeSync(batch);
      const statement = batchStatement(batch);
      // Batches come in a handful of shapes: each is parsed and planned once per connection, not at every commit.
      if (statement !== undefined) await db.run(statement, { bounded: true, prepared: true });
    },
    async sealRecovered(batch) {
      if (sync !== undefined) {
        let sealed = false;
        sync.transaction(() => {
          sealed = writeRecoverySealRows(sync.run, batch);
        });
        return sealed;
      }
      return (await db.run(recoverySealStatement(batch), { bounded: true })) === 1;
    },
    async probe() {
      await db.rehearse(
        sql`INSERT INTO events (session_id, seq, time_us, mono_us, kind, payload, hash) VALUES ('portcullis-probe', -1, 0, 0, 'probe', '{}', '')`,
      );
    },
    async heartbeat(instanceId, o = {}) {
      const at = o.nowUs === undefined ? storeNowUs(db.dialect) : sql`${o.nowUs}`;
      if (o.boot !== undefined) {
        return (await db.run(sql`UPDATE instances SET heartbeat_at_us = ${at} WHERE id = ${instanceId} AND boot = ${o.boot}`, { bounded: true })) === 1;
      }
      const upsert = sql`INSERT INTO instances (id, heartbeat_at_us) VALUES (${instanceId}, ${at})
        ON CONFLICT (id) DO UPDATE SET heartbeat_at_us = excluded.heartbeat_at_us`;
      await db.run(upsert, { bounded: true });
      return true;
    },
    async staleInstances(silentForUs) {
      const before = sql`${storeNowUs(db.dialect)} - ${silentForUs}`;
      return (await db.query(sql`SELECT id FROM instances WHERE heartbeat_at_us < ${before} OR state = 'gone'`)).map((r) => String(r.id));
    },
    async registerKey(key) {
      await db.run(sql`INSERT INTO signing_keys (key_id, public_key, instance_id, created_at_us)
        VALUES (${key.keyId}, ${key.publicKey}, ${key.instanceId}, ${key.createdAtUs}) ON CONFLICT (key_id) DO NOTHING`);
    },

    getSession: (id) => first(sql`SELECT * FROM sessions WHERE id = ${id}`, sessionFromDb),
    async listSessions(q) {
      return (await db.query(sessionQuerySql(q, db.dialect))).map(sessionFromDb);
    },
    async openSessions(instanceIds) {
      if (instanceIds !== undefined && instanceIds.length === 0) return [];
      const of = instanceIds === undefined ? raw('') : sql` AND instance_id IN (${list(instanceIds)})`;
      return (await db.query(sql`SELECT * FROM sessions WHERE status = 'open'${of} ORDER BY opened_at_us`)).map(sessionFromDb);
    },
    async expiredSessions(beforeUs, limit, keepUnshippedFor = [], exceptErased = false) {
      // A sink's sessions are those opened since its watermark (those before are shipped whole) without a done cursor.
      const unshipped =
        keepUnshippedFor.length === 0
          ? raw('')
          : sql` AND NOT EXISTS (SELECT 1 FROM audit_sinks a WHERE a.name IN (${list(keepUnshippedFor)}) AND s.opened_at_us >= a.watermark_us
              AND NOT EXISTS (SELECT 1 FROM audit_cursors c WHERE c.sink = a.name AND c.session_id = s.id AND c.done = 1))`;
      const erased = exceptErased ? sql` AND NOT EXISTS (SELECT 1 FROM data_keys k WHERE k.owner = s.id AND k.wrapped IS NULL)` : raw('');
      return (
        await db.query(
          sql`SELECT * FROM sessions s WHERE status <> 'open' AND closed_at_us < ${beforeUs}${unshipped}${erased} ORDER BY closed_at_us LIMIT ${limit}`,
        )
      ).map(sessionFromDb);
    },
    async events(sessionId, afterSeq, limit) {
      return (await db.query(sql`SELECT * FROM events WHERE session_id = ${sessionId} AND seq > ${afterSeq} ORDER BY seq LIMIT ${limit}`)).map(eventFromDb);
    },
    lastEvent: (sessionId) => first(sql`SELECT * FROM events WHERE session_id = ${sessionId} ORDER BY seq DESC LIMIT 1`, eventFromDb),
    async openingEvents(sessionIds) {
      if (sessionIds.length === 0) return [];
      return (await db.query(sql`SELECT * FROM events WHERE seq = 0 AND session_id IN (${list(sessionIds)})`)).map(eventFromDb);
    },
    async ledger(instanceId, afterSeq, limit) {
      return (await db.query(sql`SELECT * FROM ledger WHERE instance_id = ${instanceId} AND seq > ${afterSeq} ORDER BY seq LIMIT ${limit}`)).map(ledgerFromDb);
    },
    async ledgerInstances() {
      return (await db.query(sql`SELECT DISTINCT instance_id FROM ledger ORDER BY instance_id`)).map((r) => String(r.instance_id));
    },
    ledgerHead: (instanceId) => first(sql`SELECT * FROM ledger WHERE instance_id = ${instanceId} ORDER BY seq DESC LIMIT 1`, ledgerFromDb),
    async ledgerFor(sessionId) {
      return (await db.query(sql`SELECT * FROM ledger WHERE session_id = ${sessionId} ORDER BY time_us, seq`)).map(ledgerFromDb);
    },
    async keys() {
      return (await db.query(sql`SELECT * FROM signing_keys ORDER BY created_at_us`)).map(keyFromDb);
    },
  };
}

/**
 * Where a search text (a LIKE pattern, escaped with \) is found, ignoring case, in a session's user, e-mail,
 * connection or id: the one place the backends differ in a query.
 * - SQLite: its LIKE ignores case for ASCII letters (and only those, as its lower() does), so the columns are
 *   compared as stored, inside the time index, and the pattern is left as typed: other letters match in their case.
 * - PostgreSQL: one lowercase, byte-wise ("C") column the table keeps of the four (migration 6), one LIKE per row.
 */
function textMatch(pattern: string, dialect: DatabasePort['dialect']): Sql {
  if (dialect === 'postgres') return sql`search_text LIKE ${pattern.toLowerCase()} ESCAPE '\\'`;
  return sql`(${join(
    ['subject', 'email', 'connection', 'id'].map((c) => sql`${raw(c)} LIKE ${pattern} ESCAPE '\\'`),
    ' OR ',
  )})`;
}

/** A session query: newest first, keyset-paginated on (opened_at_us, id). */
export function sessionQuerySql(q: SessionQuery, dialect: DatabasePort['dialect']): Sql {
  const where: Sql[] = [];
  if (q.subject !== undefined) where.push(sql`subject = ${q.subject}`);
  if (q.issuer !== undefined) where.push(sql`issuer = ${q.issuer}`);
  if (q.connection !== undefined) where.push(sql`connection = ${q.connection}`);
  if (q.status !== undefined) where.push(sql`status = ${q.status}`);
  if (q.era !== undefined) where.push(q.era === 'modern' ? sql`edge = ${modernEdge}` : sql`edge <> ${modernEdge}`);
  if (q.fromUs !== undefined) where.push(sql`opened_at_us >= ${q.fromUs}`);
  if (q.toUs !== undefined) where.push(sql`opened_at_us < ${q.toUs}`);
  if (q.hadDenial !== undefined) where.push(raw(q.hadDenial ? 'denials > 0' : 'denials = 0'));
  if (q.hadRedaction !== undefined) where.push(raw(q.hadRedaction ? 'redactions > 0' : 'redactions = 0'));
  if (q.search !== undefined && q.search !== '') {
    // Anywhere in the user, e-mail, connection or session id, case-insensitively; % and _ are literal, and control
    // characters (PostgreSQL's search_text separates the columns with one) are dropped.
    const pattern = `%${q.search.replace(/[\u0000-\u001f]/g, '').replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    where.push(textMatch(pattern, dialect));
  }
  if (q.before !== undefined) {
    const { openedAtUs, id } = q.before;
    where.push(sql`(opened_at_us < ${openedAtUs} OR (opened_at_us = ${openedAtUs} AND id < ${id}))`);
  }
  const clause = where.length > 0 ? sql`WHERE ${join(where, ' AND ')}` : raw('');
  return sql`SELECT * FROM sessions ${clause} ORDER BY opened_at_us DESC, id DESC LIMIT ${q.limit}`;
}
