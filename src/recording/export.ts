import type { Store } from '../store/store.js';
import { type EventRow, eraOfEdge, type SessionEra, type SessionRow } from '../store/types.js';
import type { ColumnMismatch } from './session-facts.js';
import type { FoundGroup, SessionGroup } from './session-groups.js';
import { clientView, isoUs, type RpcSummary, summarizeRpc } from './transcript.js';

/**
 * The JSONL export: one `session` line, then one `event` line per event, in order. The schema is stable
 * (docs/recording.md): fields are only ever added, and a breaking change gets a new `schema` value. Every
 * field the hash chain covers is carried as stored (payload as the exact text), so an export can be
 * verified on its own; the rest (`rpc`, `details`, identity on each line) is there for SIEM queries.
 */

export const exportSchema = 'portcullis.recording/v1';

export interface SessionLine {
  type: 'session';
  schema: typeof exportSchema;
  session: {
    id: string;
    instance: string;
    connection: string;
    identity: { subject: string; issuer: string | null; email: string | null; groups: string[] };
    edge: string;
    /** modern (2026-07-28 exchanges) or legacy (a 2025-era session), by the edge. */
    era: SessionEra;
    remoteAddress: string | null;
    clientInfo: unknown;
    serverInfo: unknown;
    protocolVersion: string | null;
    openedAt: string;
    openedAtUs: number;
    closedAt: string | null;
    closedAtUs: number | null;
    status: string;
    closeReason: string | null;
    eventCount: number | null;
    lastHash: string | null;
    seal: { signature: string; keyId: string } | null;
    /** Columns of the session row that disagree with the recording (which the fields above follow); absent when none. */
    tampered?: ColumnMismatch[];
  };
}

export interface EventLine {
  type: 'event';
  schema: typeof exportSchema;
  session: string;
  seq: number;
  time: string;
  timeUs: number;
  monoUs: number;
  kind: string;
  direction: string | null;
  boundary: string | null;
  /** The exact text recorded: for messages, the JSON-RPC message as it crossed the boundary (for `relayed`: as received). */
  payload: string;
  /** A `relayed` message: the exact text forwarded (ids renumbered). */
  forwarded?: string;
  hash: string;
  subject: string;
  connection: string;
  /**
   * Messages: what the JSON-RPC message is (not covered by the hash; derived from payload). A request's
   * `protocolVersion` is its `_meta`'s (2026-07-28), else its legacy session's negotiated one.
   */
  rpc?: RpcSummary;
  /** Other events: the payload, parsed. */
  details?: unknown;
}

export function sessionLine(s: SessionRow & { tampered?: ColumnMismatch[] }): SessionLine {
  return {
    type: 'session',
    schema: exportSchema,
    session: {
      id: s.id,
      instance: s.instanceId,
      connection: s.connection,
      identity: { subject: s.subject, issuer: s.issuer, email: s.email, groups: s.groups },
      edge: s.edge,
      era: eraOfEdge(s.edge),
      remoteAddress: s.remoteAddress,
      clientInfo: s.clientInfo,
      serverInfo: s.serverInfo,
      protocolVersion: s.protocolVersion,
      openedAt: isoUs(s.openedAtUs),
      openedAtUs: s.openedAtUs,
      closedAt: s.closedAtUs === null ? null : isoUs(s.closedAtUs),
      closedAtUs: s.closedAtUs,
      status: s.status,
      closeReason: s.closeReason,
      eventCount: s.eventCount,
      lastHash: s.lastHash,
      seal: s.seal !== null && s.sealKeyId !== null ? { signature: s.seal, keyId: s.sealKeyId } : null,
      ...(s.tampered !== undefined && s.tampered.length > 0 ? { tampered: s.tampered } : {}),
    },
  };
}

export function eventLine(s: SessionRow, e: EventRow): EventLine {
  const line: EventLine = {
    type: 'event',
    schema: exportSchema,
    session: e.sessionId,
    seq: e.seq,
    time: isoUs(e.timeUs),
    timeUs: e.timeUs,
    monoUs: e.monoUs,
    kind: e.kind,
    direction: e.direction,
    boundary: e.boundary,
    payload: e.payload,
    ...(e.forwarded !== null ? { forwarded: e.forwarded } : {}),
    hash: e.hash,
    subject: s.subject,
    connection: s.connection,
  };
  // Ids as the client numbers them, so a request and its response pair up.
  if (e.kind === 'message') {
    line.rpc = summarizeRpc(clientView(e));
    // A request of a 2025-era session is made in the version its initialize agreed; a modern one names its own.
    if (line.rpc.kind === 'request' && line.rpc.protocolVersion === undefined && line.rpc.method !== 'initialize' && s.protocolVersion !== null)
      line.rpc.protocolVersion = s.protocolVersion;
  } else {
    try {
      line.details = JSON.parse(e.payload);
    } catch {
      line.details = null;
    }
  }
  return line;
}

/** The export of one session as JSONL lines (each without its newline), read from the store page by page. */
export async function* exportSession(store: Store, session: SessionRow): AsyncGenerator<string> {
  yield JSON.stringify(sessionLine(session));
  for (let after = -1; ; ) {
    const events = await store.events(session.id, after, 5000);
    for (const e of events) yield JSON.stringify(eventLine(session, e));
    if (events.length < 5000) break;
    after = events.at(-1)!.seq;
  }
}

/**
 * A group line: the view of a modern client's exchanges the export that follows holds (exchange-groups.ts). It is
 * grouping, not evidence: the events that follow are verifiable with their sessions (`sessions export <session>`),
 * as each line names its session and seq.
 */
export interface GroupLine {
  type: 'group';
  schema: typeof exportSchema;
  group: SessionGroup & { firstAt: string; lastAt: string; idleGapMs: number };
}

/** The export of one group: its `group` line, a `session` line per session that recorded it, then its events by time. */
export function* exportGroup(found: FoundGroup, idleGapMs: number): Generator<string> {
  const g = found.group;
  const line: GroupLine = { type: 'group', schema: exportSchema, group: { ...g, firstAt: isoUs(g.firstUs), lastAt: isoUs(g.lastUs), idleGapMs } };
  yield JSON.stringify(line);
  const byId = new Map(found.sessions.map((s) => [s.id, s]));
  for (const s of found.sessions) yield JSON.stringify(sessionLine(s));
  for (const e of found.events) yield JSON.stringify(eventLine(byId.get(e.sessionId)!, e));
}
