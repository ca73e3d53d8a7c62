import { sessionColumns, sessionToDb } from './recording-rows.js';
import { dataKeyToDb } from './data-keys.js';
import { insertSql, jsonOrNull } from './rows.js';
import { join, list, raw, type Sql, type SqlValue, sql } from './sql.js';
import type { WriteBatch } from './types.js';

/**
 * The recorder's group commit, the store's hot path, in the two shapes that are fastest on each backend:
 * statement by statement inside one transaction where the database answers in this thread (SQLite), and one
 * statement for the whole batch where every statement is a round trip (PostgreSQL).
 */

/** Runs a batch's writes, in order, with `run` (inside the caller's transaction). */
export function writeBatchRows(run: (statement: Sql) => unknown, b: WriteBatch): void {
  for (const k of b.dataKeys) run(insertSql('data_keys', dataKeyToDb(k)));
  for (const s of b.sessionsOpened) run(sql`INSERT INTO sessions (${raw(sessionColumns.join(', '))}) VALUES (${list(sessionToDb(s))})`);
  for (const e of b.events) {
    run(sql`INSERT INTO events (session_id, seq, time_us, mono_us, kind, direction, boundary, payload, forwarded, hash)
      VALUES (${e.sessionId}, ${e.seq}, ${e.timeUs}, ${e.monoUs}, ${e.kind}, ${e.direction}, ${e.boundary}, ${e.payload}, ${e.forwarded}, ${e.hash})`);
  }
  for (const n of b.negotiated) {
    run(
      sql`UPDATE sessions SET client_info = ${jsonOrNull(n.clientInfo)}, server_info = ${jsonOrNull(n.serverInfo)}, protocol_version = ${n.protocolVersion} WHERE id = ${n.id}`,
    );
  }
  for (const s of b.sealed) {
    run(sql`UPDATE sessions SET status = ${s.status}, closed_at_us = ${s.closedAtUs}, close_reason = ${s.closeReason}, event_count = ${s.eventCount},
      last_hash = ${s.lastHash}, seal = ${s.seal}, seal_key_id = ${s.sealKeyId}, denials = ${s.denials}, redactions = ${s.redactions} WHERE id = ${s.id}`);
  }
  for (const l of b.ledger) {
    run(
      sql`INSERT INTO ledger (instance_id, seq, time_us, kind, session_id, detail, hash) VALUES (${l.instanceId}, ${l.seq}, ${l.timeUs}, ${l.kind}, ${l.sessionId}, ${l.detail}, ${l.hash})`,
    );
  }
  for (const id of b.deletions) {
    run(sql`DELETE FROM events WHERE session_id = ${id}`);
    run(sql`DELETE FROM sessions WHERE id = ${id}`);
  }
}

/** PostgreSQL types of the session columns, in `sessionColumns` order. */
const sessionTypes = [
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'int8',
  'int8',
  'text',
  'text',
  'int4',
  'text',
  'text',
  'text',
  'int4',
  'int4',
  'text',
];

/**
 * PostgreSQL: one statement for a whole group commit (data-modifying CTEs over unnest() arrays), so it costs one
 * round trip and is atomic without BEGIN/COMMIT. Data-modifying CTEs share one snapshot, so an UPDATE cannot see a
 * row inserted beside it: facts about a session opened in the same batch (its negotiated details, its seal) are
 * folded into the row before it is inserted, and only older sessions are updated.
 */
export function batchStatement(batch: WriteBatch): Sql | undefined {
  const p = (value: SqlValue, type: string) => sql`${value}::${raw(type)}`;
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
  const parts: Sql[] = [];
  if (batch.dataKeys.length > 0) {
    const k = batch.dataKeys;
    parts.push(
      sql`INSERT INTO data_keys (owner, kek_id, wrapped, created_at_us) SELECT * FROM unnest(${join([
        p(
          k.map((x) => x.owner),
          'text[]',
        ),
        p(
          k.map((x) => x.kekId),
          'text[]',
        ),
        p(
          k.map((x) => x.wrapped),
          'text[]',
        ),
        p(
          k.map((x) => x.createdAtUs),
          'int8[]',
        ),
      ])})`,
    );
  }
  if (opened.size > 0) {
    const rows = [...opened.values()].map(sessionToDb);
    const arrays = sessionColumns.map((_, i) =>
      p(
        rows.map((r) => r[i]!),
        `${sessionTypes[i]}[]`,
      ),
    );
    parts.push(sql`INSERT INTO sessions (${raw(sessionColumns.join(', '))}) SELECT * FROM unnest(${join(arrays)})`);
  }
  if (batch.events.length > 0) {
    // The hot path: one JSON text for all the events, parsed by PostgreSQL in C, rather than ten array literals
    // whose escaping of every payload costs the gateway more than the JSON encoding does.
    const rows = batch.events.map((e) => ({
      s: e.sessionId,
      q: e.seq,
      t: e.timeUs,
      m: e.monoUs,
      k: e.kind,
      d: e.direction,
      b: e.boundary,
      p: e.payload,
      f: e.forwarded,
      h: e.hash,
    }));
    parts.push(
      sql`INSERT INTO events (session_id, seq, time_us, mono_us, kind, direction, boundary, payload, forwarded, hash)
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
    parts.push(
      sql`UPDATE sessions s SET
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
       FROM unnest(${join([
         p(
           u.map(([id]) => id),
           'text[]',
         ),
         p(
           u.map(([, x]) => x.n !== undefined),
           'bool[]',
         ),
         p(
           u.map(([, x]) => jsonOrNull(x.n?.clientInfo)),
           'text[]',
         ),
         p(
           u.map(([, x]) => jsonOrNull(x.n?.serverInfo)),
           'text[]',
         ),
         p(
           u.map(([, x]) => x.n?.protocolVersion ?? null),
           'text[]',
         ),
         p(
           u.map(([, x]) => x.s !== undefined),
           'bool[]',
         ),
         p(
           u.map(([, x]) => x.s?.status ?? null),
           'text[]',
         ),
         p(
           u.map(([, x]) => x.s?.closedAtUs ?? null),
           'int8[]',
         ),
         p(
           u.map(([, x]) => x.s?.closeReason ?? null),
           'text[]',
         ),
         p(
           u.map(([, x]) => x.s?.eventCount ?? null),
           'int4[]',
         ),
         p(
           u.map(([, x]) => x.s?.lastHash ?? null),
           'text[]',
         ),
         p(
           u.map(([, x]) => x.s?.seal ?? null),
           'text[]',
         ),
         p(
           u.map(([, x]) => x.s?.sealKeyId ?? null),
           'text[]',
         ),
         p(
           u.map(([, x]) => x.s?.denials ?? null),
           'int4[]',
         ),
         p(
           u.map(([, x]) => x.s?.redactions ?? null),
           'int4[]',
         ),
       ])}) AS u(id, hn, ci, si, pv, hs, st, ca, cr, ec, lh, se, sk, de, re) WHERE s.id = u.id`,
    );
  }
  if (batch.ledger.length > 0) {
    const l = batch.ledger;
    parts.push(
      sql`INSERT INTO ledger (instance_id, seq, time_us, kind, session_id, detail, hash) SELECT * FROM unnest(${join([
        p(
          l.map((x) => x.instanceId),
          'text[]',
        ),
        p(
          l.map((x) => x.seq),
          'int4[]',
        ),
        p(
          l.map((x) => x.timeUs),
          'int8[]',
        ),
        p(
          l.map((x) => x.kind),
          'text[]',
        ),
        p(
          l.map((x) => x.sessionId),
          'text[]',
        ),
        p(
          l.map((x) => x.detail),
          'text[]',
        ),
        p(
          l.map((x) => x.hash),
          'text[]',
        ),
      ])})`,
    );
  }
  if (batch.deletions.length > 0) {
    const ids = p(batch.deletions, 'text[]');
    parts.push(sql`DELETE FROM events WHERE session_id = ANY(${ids})`);
    parts.push(sql`DELETE FROM sessions WHERE id = ANY(${ids})`);
  }
  if (parts.length === 0) return undefined;
  if (parts.length === 1) return parts[0]!;
  const ctes = parts.slice(0, -1).map((part, i) => sql`${raw(`w${i}`)} AS (${part})`);
  return sql`WITH ${join(ctes)} ${parts.at(-1)!}`;
}
