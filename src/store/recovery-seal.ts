import { raw, type Sql, type SqlValue, sql } from './sql.js';
import type { EventRow, LedgerRow, SealFields, WriteBatch } from './types.js';

/**
 * The write that seals a session another run or another gateway left open (recording/sweeper.ts): its close event,
 * the seal on its row and the sealing gateway's ledger row, written only if the session is still open and nobody has
 * written past the head the close event goes on from. Two gateways may recover one session at once (a crashed replica
 * restarted under its id while a survivor seals its sessions, two replicas each briefly the recovering one, a paused
 * replica waking to write its next event): the one that loses writes nothing and is told so, never a failed store.
 */

interface RecoverySeal {
  event: EventRow;
  seal: { id: string } & SealFields;
  ledger: LedgerRow;
}

/** The one close event, seal and ledger row a recovery seal's batch holds (batch.ts writes it alone). */
function recoverySealOf(b: WriteBatch): RecoverySeal {
  const [event] = b.events;
  const [seal] = b.sealed;
  const [ledger] = b.ledger;
  const others = b.sessionsOpened.length + b.negotiated.length + b.deletions.length + b.dataKeys.length;
  if (b.events.length !== 1 || b.sealed.length !== 1 || b.ledger.length !== 1 || others > 0 || event!.sessionId !== seal!.id) {
    throw new Error('a recovery seal is written alone: one close event, its seal and one ledger row');
  }
  return { event: event!, seal: seal!, ledger: ledger! };
}

const eventValues = (e: EventRow, p: (v: SqlValue, type: string) => Sql): Sql =>
  sql`${p(e.sessionId, 'text')}, ${p(e.seq, 'int4')}, ${p(e.timeUs, 'int8')}, ${p(e.monoUs, 'int8')}, ${p(e.kind, 'text')}, ${p(e.direction, 'text')},
    ${p(e.boundary, 'text')}, ${p(e.payload, 'text')}, ${p(e.forwarded, 'text')}, ${p(e.hash, 'text')}`;

const ledgerValues = (l: LedgerRow, p: (v: SqlValue, type: string) => Sql): Sql =>
  sql`${p(l.instanceId, 'text')}, ${p(l.seq, 'int4')}, ${p(l.timeUs, 'int8')}, ${p(l.kind, 'text')}, ${p(l.sessionId, 'text')}, ${p(l.detail, 'text')}, ${p(l.hash, 'text')}`;

const sealSet = (s: SealFields): Sql =>
  sql`status = ${s.status}, closed_at_us = ${s.closedAtUs}, close_reason = ${s.closeReason}, event_count = ${s.eventCount}, last_hash = ${s.lastHash},
    seal = ${s.seal}, seal_key_id = ${s.sealKeyId}, denials = ${s.denials}, redactions = ${s.redactions}`;

const eventColumns = raw('session_id, seq, time_us, mono_us, kind, direction, boundary, payload, forwarded, hash');
const ledgerColumns = raw('instance_id, seq, time_us, kind, session_id, detail, hash');

/**
 * PostgreSQL, one statement: the session row is locked while still open (a concurrent seal makes it wait, then find
 * it sealed), the close event goes in unless its sequence number is taken (by another seal, or by the session's own
 * gateway writing on), and only then are the row sealed and the ledger row added. It returns one row when it sealed.
 */
export function recoverySealStatement(batch: WriteBatch): Sql {
  const { event, seal, ledger } = recoverySealOf(batch);
  const p = (value: SqlValue, type: string) => sql`${value}::${raw(type)}`;
  return sql`WITH still_open AS (SELECT id FROM sessions WHERE id = ${seal.id} AND status = 'open' FOR UPDATE),
    close_event AS (INSERT INTO events (${eventColumns}) SELECT ${eventValues(event, p)} WHERE EXISTS (SELECT 1 FROM still_open)
      ON CONFLICT (session_id, seq) DO NOTHING RETURNING seq),
    claimed AS (UPDATE sessions SET ${sealSet(seal)} WHERE id = ${seal.id} AND status = 'open' AND EXISTS (SELECT 1 FROM close_event) RETURNING id)
    INSERT INTO ledger (${ledgerColumns}) SELECT ${ledgerValues(ledger, p)} FROM claimed`;
}

/**
 * SQLite, inside the caller's transaction (which holds the write lock, so nothing comes in between): the close event
 * goes in only while the session is open and its sequence number free; nothing else is written otherwise. Whether it sealed.
 */
export function writeRecoverySealRows(run: (statement: Sql) => number, batch: WriteBatch): boolean {
  const { event, seal, ledger } = recoverySealOf(batch);
  const v = (value: SqlValue) => sql`${value}`;
  const inserted = run(sql`INSERT INTO events (${eventColumns}) SELECT ${eventValues(event, v)}
    WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ${seal.id} AND status = 'open') ON CONFLICT (session_id, seq) DO NOTHING`);
  if (inserted === 0) return false;
  run(sql`UPDATE sessions SET ${sealSet(seal)} WHERE id = ${seal.id}`);
  run(sql`INSERT INTO ledger (${ledgerColumns}) VALUES (${ledgerValues(ledger, v)})`);
  return true;
}
