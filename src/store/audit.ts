import type { DatabasePort } from './port.js';
import { ledgerFromDb } from './recording-rows.js';
import { num, strOrNull } from './rows.js';
import { join, list, raw, type Sql, sql } from './sql.js';
import type { EventRow, LedgerRow } from './types.js';

/** The cursor key of an instance's ledger (never a session id: those have no `/`). */
export const ledgerCursorKey = (instanceId: string): string => `ledger/${instanceId}`;

/** What the audit stream reads of a recorded event. */
export type AuditEventRow = Pick<EventRow, 'sessionId' | 'seq' | 'timeUs' | 'kind' | 'direction' | 'payload' | 'hash'>;

/** An audit sink's place in the store (migration 11): shared by every replica that ships to a sink of that name. */
export interface AuditSinkRow {
  name: string;
  /** When the sink was first seen: sessions opened before are not shipped to it. */
  sinceUs: number;
  /** Every session opened before this has been shipped whole to it: scans start here. */
  watermarkUs: number;
}

/** A session with recorded events a sink has not taken yet (or sealed, and not yet marked as shipped whole). */
export interface AuditPendingSession {
  sessionId: string;
  instanceId: string;
  connection: string;
  subject: string;
  email: string | null;
  edge: string;
  openedAtUs: number;
  /** Sealed: no event will be added, so once the cursor reaches `lastSeq` it is shipped whole. */
  sealed: boolean;
  /** The last event the sink took (or passed over), -1 for none. */
  cursor: number;
  /** The session's last recorded event, -1 for none. */
  lastSeq: number;
}

export interface AuditPendingQuery {
  /** Sessions opened at or after this (the sink's watermark). */
  fromUs: number;
  /** Sessions of these instances are left to them (the replicas alive besides this one). */
  exceptInstances: readonly string[];
  /** Only these sessions (the ones a commit just wrote). */
  sessionIds?: readonly string[];
  /** Keyset: sessions after this one in (opened time, id) order. */
  after?: { openedAtUs: number; id: string };
  limit: number;
}

/** How far a sink has taken a session: its cursor moves to `seq`, and `done` when the sealed session is shipped whole. */
export interface AuditCursorMove {
  sessionId: string;
  seq: number;
  done: boolean;
}

/** The audit streams' durable cursors (src/audit/shipper.ts). */
export interface AuditStore {
  /** The sink's row, made with both times at `nowUs` when the sink is new. */
  auditSink(name: string, nowUs: number): Promise<AuditSinkRow>;
  /** Sessions with events the sink has not taken, or sealed and not marked whole, oldest first. */
  auditPending(sink: string, q: AuditPendingQuery): Promise<AuditPendingSession[]>;
  /**
   * The events of several sessions, each after its own seq, in one statement: ordered by session, then seq, at most
   * `limit` in all (the sessions first in id order may take them all: ask again with the cursors moved).
   */
  auditEvents(after: ReadonlyArray<{ sessionId: string; seq: number }>, limit: number): Promise<AuditEventRow[]>;
  /** How many recorded events of the sessions `auditPending` would list (all of them) the sink has not taken. */
  auditBacklog(sink: string, q: Pick<AuditPendingQuery, 'fromUs' | 'exceptInstances'>): Promise<number>;
  /** Moves cursors forward, all in one statement (a cursor never moves back, and `done` is never undone). */
  advanceAuditCursors(sink: string, moves: readonly AuditCursorMove[]): Promise<void>;
  /**
   * Just-in-time access events (ledger rows of kind `access`) of one instance's ledger that the sink has not taken,
   * recorded at or after `fromUs`, in order; and the sink's cursor over that ledger (-1 for none). The cursor is kept
   * with the sessions' as `ledgerCursorKey(instanceId)`.
   */
  auditAccessPending(sink: string, instanceId: string, fromUs: number, limit: number): Promise<{ cursor: number; rows: LedgerRow[] }>;
  /**
   * Moves the sink's watermark forward to the opening of its oldest session (of any instance) not shipped whole, at
   * most to `capUs`, and forgets the cursors of sessions now behind it. Returns the watermark.
   */
  advanceAuditWatermark(sink: string, capUs: number): Promise<number>;
}

export function auditStore(db: DatabasePort): AuditStore {
  const sinkRow = async (name: string): Promise<AuditSinkRow | undefined> => {
    const [r] = await db.query(sql`SELECT * FROM audit_sinks WHERE name = ${name}`);
    return r === undefined ? undefined : { name: String(r.name), sinceUs: num(r.since_us), watermarkUs: num(r.watermark_us) };
  };
  return {
    async auditSink(name, nowUs) {
      await db.run(sql`INSERT INTO audit_sinks (name, since_us, watermark_us) VALUES (${name}, ${nowUs}, ${nowUs}) ON CONFLICT (name) DO NOTHING`);
      return (await sinkRow(name))!;
    },
    async auditPending(sink, q) {
      const rows = await db.query(sql`SELECT * FROM (${pendingSql(sink, q)}) AS p
        WHERE p.last_seq > p.cursor_seq OR p.status <> 'open'
        ORDER BY p.opened_at_us, p.id LIMIT ${q.limit}`);
      return rows.map((r) => ({
        sessionId: String(r.id),
        instanceId: String(r.instance_id),
        connection: String(r.connection),
        subject: String(r.subject),
        email: strOrNull(r.email),
        edge: String(r.edge),
        openedAtUs: num(r.opened_at_us),
        sealed: r.status !== 'open',
        cursor: num(r.cursor_seq),
        lastSeq: num(r.last_seq),
      }));
    },
    async auditBacklog(sink, q) {
      const [r] = await db.query(sql`SELECT COALESCE(SUM(p.last_seq - p.cursor_seq), 0) AS backlog FROM (${pendingSql(sink, q)}) AS p
        WHERE p.last_seq > p.cursor_seq`);
      return num(r?.backlog ?? 0);
    },
    async auditEvents(after, limit) {
      if (after.length === 0) return [];
      // One primary-key range per session, OR'd: both planners walk the index once per session.
      const ranges = join(
        after.map((a) => sql`(session_id = ${a.sessionId} AND seq > ${a.seq})`),
        ' OR ',
      );
      // Only what a record carries: not the forwarded copy of a relayed message (as long as the message itself).
      const rows = await db.query(sql`SELECT session_id, seq, time_us, kind, direction, payload, hash FROM events WHERE ${ranges}
        ORDER BY session_id, seq LIMIT ${limit}`);
      return rows.map((r) => ({
        sessionId: String(r.session_id),
        seq: num(r.seq),
        timeUs: num(r.time_us),
        kind: String(r.kind) as EventRow['kind'],
        direction: strOrNull(r.direction) as EventRow['direction'],
        payload: String(r.payload),
        hash: String(r.hash),
      }));
    },
    async auditAccessPending(sink, instanceId, fromUs, limit) {
      const [c] = await db.query(sql`SELECT seq FROM audit_cursors WHERE sink = ${sink} AND session_id = ${ledgerCursorKey(instanceId)}`);
      const cursor = c === undefined ? -1 : num(c.seq);
      const rows = await db.query(sql`SELECT * FROM ledger WHERE instance_id = ${instanceId} AND seq > ${cursor} AND kind = 'access'
        AND time_us >= ${fromUs} ORDER BY seq LIMIT ${limit}`);
      return { cursor, rows: rows.map(ledgerFromDb) };
    },
    async advanceAuditCursors(sink, moves) {
      if (moves.length === 0) return;
      const values = join(moves.map((m) => sql`(${list([sink, m.sessionId, m.seq, m.done ? 1 : 0])})`));
      await db.run(sql`INSERT INTO audit_cursors (sink, session_id, seq, done) VALUES ${values}
        ON CONFLICT (sink, session_id) DO UPDATE SET
          seq = CASE WHEN excluded.seq > audit_cursors.seq THEN excluded.seq ELSE audit_cursors.seq END,
          done = CASE WHEN excluded.done > audit_cursors.done THEN excluded.done ELSE audit_cursors.done END`);
    },
    async advanceAuditWatermark(sink, capUs) {
      const current = await sinkRow(sink);
      if (current === undefined) throw new Error(`no audit sink named ${sink} in the store`);
      const [r] = await db.query(sql`SELECT MIN(s.opened_at_us) AS first FROM sessions s
        LEFT JOIN audit_cursors c ON c.sink = ${sink} AND c.session_id = s.id
        WHERE s.opened_at_us >= ${current.watermarkUs} AND (c.done IS NULL OR c.done = 0)`);
      const first = r?.first === null || r?.first === undefined ? capUs : Math.min(num(r.first), capUs);
      if (first <= current.watermarkUs) return current.watermarkUs;
      await db.run(sql`UPDATE audit_sinks SET watermark_us = ${first} WHERE name = ${sink} AND watermark_us < ${first}`);
      // Cursors of sessions behind the watermark are never read again (scans start at it); nor of sessions deleted since.
      await db.run(sql`DELETE FROM audit_cursors WHERE sink = ${sink} AND done = 1
        AND session_id NOT IN (SELECT id FROM sessions WHERE opened_at_us >= ${first})`);
      return first;
    },
  };
}

/**
 * The sessions of a sink's scope not shipped whole, with their cursor and last event. The last event is read by the
 * events' primary key (one index probe per session) in the same statement as the status: a session read as sealed
 * has every event committed (its seal is written in the batch of its last event).
 */
function pendingSql(sink: string, q: Omit<AuditPendingQuery, 'limit'>): Sql {
  const where: Sql[] = [sql`s.opened_at_us >= ${q.fromUs}`, raw('(c.done IS NULL OR c.done = 0)')];
  if (q.exceptInstances.length > 0) where.push(sql`s.instance_id NOT IN (${list(q.exceptInstances)})`);
  if (q.sessionIds !== undefined) where.push(sql`s.id IN (${list(q.sessionIds)})`);
  if (q.after !== undefined) {
    const { openedAtUs, id } = q.after;
    where.push(sql`(s.opened_at_us > ${openedAtUs} OR (s.opened_at_us = ${openedAtUs} AND s.id > ${id}))`);
  }
  return sql`SELECT s.id, s.instance_id, s.connection, s.subject, s.email, s.edge, s.opened_at_us, s.status,
      COALESCE(c.seq, -1) AS cursor_seq, COALESCE((SELECT MAX(e.seq) FROM events e WHERE e.session_id = s.id), -1) AS last_seq
    FROM sessions s LEFT JOIN audit_cursors c ON c.sink = ${sink} AND c.session_id = s.id
    WHERE ${join(where, ' AND ')}`;
}
