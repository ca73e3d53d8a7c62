import { isUnreadable } from '../encryption/readable-store.js';
import type { Store } from '../store/store.js';
import type { EventRow, SessionQuery, SessionRow } from '../store/types.js';

/**
 * Exchanges in a recording: what a request says of itself in its `_meta` (MCP 2026-07-28 carries the protocol version
 * there; any client may carry a W3C trace context), and the events that belong to the requests of one trace. A trace
 * id groups what a client says belongs together; it is never evidence of anything: the client chooses it.
 */

/** `_meta` key of the protocol version a 2026-07-28 request is made in. */
export const protocolVersionMetaKey = 'io.modelcontextprotocol/protocolVersion';

const traceparentPattern = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The trace id of a W3C `traceparent` value, lower case; undefined unless it is well formed (an all-zero id is invalid). */
export function traceIdOf(traceparent: unknown): string | undefined {
  if (typeof traceparent !== 'string' || traceparent.length > 128) return undefined;
  const id = traceparentPattern.exec(traceparent.trim().toLowerCase())?.[1];
  return id === undefined || /^0+$/.test(id) ? undefined : id;
}

/** Whether `text` is a trace id as `--trace` and the API take it: 32 hex digits, not all zero. */
export function isTraceId(text: string): boolean {
  return /^[0-9a-fA-F]{32}$/.test(text) && !/^0+$/.test(text);
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** What a message's `params._meta` says of its exchange: the protocol version it is made in, its trace id. */
export function exchangeMeta(message: Record<string, unknown>): { protocolVersion?: string; traceId?: string } {
  const meta = record(record(message.params)?._meta);
  if (meta === undefined) return {};
  const version = meta[protocolVersionMetaKey];
  const traceId = traceIdOf(meta.traceparent);
  return {
    ...(typeof version === 'string' && version.length <= 64 ? { protocolVersion: version } : {}),
    ...(traceId === undefined ? {} : { traceId }),
  };
}

type Id = string | number;

function parse(text: string | null): Record<string, unknown> | undefined {
  if (text === null) return undefined;
  try {
    return record(JSON.parse(text));
  } catch {
    return undefined;
  }
}

const idOf = (m: Record<string, unknown> | undefined): Id | undefined => (typeof m?.id === 'string' || typeof m?.id === 'number' ? m.id : undefined);
const key = (id: Id) => JSON.stringify(id);

/**
 * The events of a session that belong to the requests whose `_meta.traceparent` names `traceId`: those requests (as
 * received and as forwarded), the verdicts on them, their progress and cancellation, their responses, and the
 * requests the server made while one of them was the only request in flight (as the gateway relates them), with the
 * client's answers. The ids are followed through the gateway's renumbering: a relayed event states both.
 */
export function eventsOfTrace(events: readonly EventRow[], traceId: string): EventRow[] {
  const wanted = traceId.toLowerCase();
  return eventsOfRequests(events, (m) => exchangeMeta(m).traceId === wanted);
}

/**
 * The events that belong to the requests `chosen` picks (called on each request, as the client sent it and as
 * forwarded), followed as `eventsOfTrace` says.
 */
export function eventsOfRequests(events: readonly EventRow[], chosen: (request: Record<string, unknown>, e: EventRow) => boolean): EventRow[] {
  /** Client ids of its requests, and the ids they were forwarded under, in the trace. */
  const clientIds = new Set<string>();
  const upstreamIds = new Set<string>();
  const progressTokens = new Set<string>();
  /** Server→client requests of the trace: the server's ids and the ids the client got. */
  const serverIds = new Set<string>();
  const relayedToClientIds = new Set<string>();
  /** Every client request not answered yet: a server request belongs to a traced one only when it is alone. */
  const inFlight = new Set<string>();
  const out: EventRow[] = [];
  for (const e of events) {
    if (e.kind === 'verdict') {
      // A verdict names its message by the id it had in the pipeline: a client request or a response to it by the
      // client's id; a server request by the server's, and the client's answer to it by the id the client was given.
      const d = parse(e.payload);
      const id = d?.messageId;
      if (typeof id !== 'string' && typeof id !== 'number') continue;
      const theirs = e.direction === 'toClient' ? serverIds : relayedToClientIds;
      if (clientIds.has(key(id)) || theirs.has(key(id))) out.push(e);
      continue;
    }
    if (e.kind !== 'message') continue;
    const m = parse(e.payload);
    const forwarded = parse(e.forwarded);
    if (m === undefined) continue;
    const id = idOf(m);
    const isRequest = typeof m.method === 'string' && id !== undefined;
    const isResponse = m.method === undefined && (m.result !== undefined || m.error !== undefined) && id !== undefined;
    let inTrace = false;
    if (e.direction === 'toServer') {
      if (isRequest) {
        const client = e.boundary !== 'delivered';
        if (client) inFlight.add(key(id));
        if (chosen(m, e)) {
          inTrace = true;
          (client ? clientIds : upstreamIds).add(key(id));
          const forwardedId = idOf(forwarded);
          if (forwardedId !== undefined) upstreamIds.add(key(forwardedId));
          const token = record(record(m.params)?._meta)?.progressToken;
          if (typeof token === 'string' || typeof token === 'number') progressTokens.add(key(token));
        }
      } else if (isResponse) {
        // The client's answer to a server request of the trace: by the client's id, or the server's once forwarded.
        inTrace = relayedToClientIds.has(key(id)) || serverIds.has(key(id));
      } else {
        const params = record(m.params);
        const target = params?.requestId;
        inTrace = (typeof target === 'string' || typeof target === 'number') && (clientIds.has(key(target)) || upstreamIds.has(key(target)));
      }
    } else if (e.direction === 'toClient') {
      if (isResponse) {
        const clientId = e.boundary === 'received' ? undefined : e.boundary === 'relayed' ? idOf(forwarded) : id;
        if (clientId !== undefined) inFlight.delete(key(clientId));
        inTrace = (clientId !== undefined && clientIds.has(key(clientId))) || (e.boundary !== 'delivered' && upstreamIds.has(key(id)));
      } else if (isRequest) {
        const alone = inFlight.size === 1 && clientIds.has([...inFlight][0]!);
        const known = e.boundary === 'delivered' ? relayedToClientIds.has(key(id)) : serverIds.has(key(id));
        if (alone || known) {
          inTrace = true;
          if (e.boundary === 'delivered') relayedToClientIds.add(key(id));
          else serverIds.add(key(id));
          const forwardedId = idOf(forwarded);
          if (forwardedId !== undefined) relayedToClientIds.add(key(forwardedId));
        }
      } else {
        const params = record(m.params);
        const token = params?.progressToken;
        const target = params?.requestId;
        inTrace =
          ((typeof token === 'string' || typeof token === 'number') && progressTokens.has(key(token))) ||
          ((typeof target === 'string' || typeof target === 'number') && (serverIds.has(key(target)) || relayedToClientIds.has(key(target))));
      }
    }
    if (inTrace) out.push(e);
  }
  return out;
}

/** One client request of a recording and what became of it, as `verify` reports it. */
export interface ExchangeRecord {
  /** The client's request id. */
  id: Id;
  method: string;
  /** The event that recorded the request. */
  seq: number;
  /** Verdicts recorded on the request or on its answer. */
  verdicts: number;
  /** How it ended: answered with a result or an error, refused by a stage, withdrawn by the client, or not at all. */
  outcome: 'result' | 'error' | 'refused' | 'cancelled' | 'unanswered';
  protocolVersion?: string;
  traceId?: string;
  /** Its view group (`1`, `2`, … by idle gap, or `trace <id>`), when asked for. */
  group?: string;
}

/**
 * Follows a recording's events and pairs each client request with its verdicts and its answer (by the client's id:
 * the request as received, the answer as delivered). Fed the events in order; `records()` says where each stands.
 */
export class ExchangeTracker {
  readonly #open = new Map<string, ExchangeRecord>();
  readonly #done: ExchangeRecord[] = [];

  add(e: EventRow): void {
    if (e.kind === 'verdict') {
      const d = parse(e.payload);
      const id = d?.messageId;
      const record = typeof id === 'string' || typeof id === 'number' ? this.#open.get(key(id)) : undefined;
      if (record === undefined) return;
      record.verdicts++;
      // A stage that answered a request itself: refused (its answer, the gateway's error, follows as delivered).
      if (d?.action === 'answer' && d.direction === 'toServer') record.outcome = 'refused';
      return;
    }
    if (e.kind !== 'message') return;
    if (e.direction === 'toServer' && (e.boundary === 'received' || e.boundary === 'relayed')) {
      const m = parse(e.payload);
      const id = idOf(m);
      if (m === undefined || typeof m.method !== 'string') return;
      if (id !== undefined) this.#open.set(key(id), { id, method: m.method, seq: e.seq, verdicts: 0, outcome: 'unanswered', ...exchangeMeta(m) });
      else if (m.method === 'notifications/cancelled') this.#end(record(m.params)?.requestId, 'cancelled');
      return;
    }
    if (e.direction === 'toServer') return;
    const m = parse(e.boundary === 'relayed' ? e.forwarded : e.boundary === 'delivered' ? e.payload : null);
    if (m === undefined) return;
    if (m.method === 'notifications/cancelled') return;
    const id = idOf(m);
    if (id === undefined || typeof m.method === 'string') return;
    this.#end(id, m.error !== undefined ? 'error' : 'result');
  }

  /** The request `id` is over: answered, or withdrawn by the client (no answer is then expected). */
  #end(id: unknown, outcome: ExchangeRecord['outcome']): void {
    if (typeof id !== 'string' && typeof id !== 'number') return;
    const open = this.#open.get(key(id));
    if (open === undefined) return;
    this.#open.delete(key(id));
    if (open.outcome !== 'refused') open.outcome = outcome;
    this.#done.push(open);
  }

  /** Every request, in the order it was made. */
  records(): ExchangeRecord[] {
    return [...this.#done, ...this.#open.values()].sort((a, b) => a.seq - b.seq);
  }
}

/** Sessions scanned at most by `sessionsWithTrace`: a trace id has no index, so the search reads recordings. */
export const traceScanLimit = 5000;

/**
 * The sessions (newest first, of those `query` lists) with an exchange of the trace: a modern client's requests of one
 * trace may be served by several pooled sessions. A scan of each candidate's events, up to `traceScanLimit` sessions:
 * `exhausted` says the scan stopped there (narrow the query, e.g. by time).
 */
export async function sessionsWithTrace(store: Store, query: SessionQuery, traceId: string): Promise<{ sessions: SessionRow[]; exhausted: boolean }> {
  const wanted = traceId.toLowerCase();
  const out: SessionRow[] = [];
  let scanned = 0;
  let before = query.before;
  for (;;) {
    const page = await store.listSessions({ ...query, limit: 200, ...(before ? { before } : {}) });
    for (const s of page) {
      if (scanned++ >= traceScanLimit) return { sessions: out, exhausted: true };
      if (await hasTrace(store, s.id, wanted)) out.push(s);
      if (out.length >= query.limit) return { sessions: out, exhausted: false };
    }
    if (page.length < 200) return { sessions: out, exhausted: false };
    const last = page.at(-1)!;
    before = { openedAtUs: last.openedAtUs, id: last.id };
  }
}

async function hasTrace(store: Store, sessionId: string, traceId: string): Promise<boolean> {
  for (let after = -1; ; ) {
    // A recording that cannot be read here (encrypted under a KEK this config lacks, erased) shows no trace.
    const events = await store.events(sessionId, after, 5000).catch((err: unknown) => {
      if (isUnreadable(err)) return undefined;
      throw err;
    });
    if (events === undefined) return false;
    // The id as text first (cheap); then whether a request really carries it in its traceparent.
    for (const e of events) {
      if (e.kind !== 'message' || !e.payload.includes(traceId)) continue;
      const m = parse(e.payload);
      if (m !== undefined && typeof m.method === 'string' && exchangeMeta(m).traceId === traceId) return true;
    }
    if (events.length < 5000) return false;
    after = events.at(-1)!.seq;
  }
}
