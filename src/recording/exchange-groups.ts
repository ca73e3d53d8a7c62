import type { EventRow } from '../store/types.js';
import { eventsOfRequests, exchangeMeta } from './exchanges.js';

/**
 * The views of a modern (2026-07-28) recording: a pooled session serves one principal on one connection, and what
 * its client did is grouped further, by the W3C trace id of a request's `_meta.traceparent` when it carries one, else
 * by an idle gap: an untraced request that starts more than the gap after the last untraced exchange ended opens a
 * new group. Grouping only: a trace id and a pause prove nothing, and nothing is decided on them.
 */

/** One group of exchanges: `label` is `trace <id>` or the idle group's number, from 1. */
export interface ExchangeGroup {
  /** Where the group starts, its address across views (`<session id>.<seq>` of its first request: see groupId). */
  id: string;
  label: string;
  traceId?: string;
  exchanges: number;
  /** When its first request was recorded, and when its last event was (µs since the epoch). */
  firstUs: number;
  lastUs: number;
  /** The pooled sessions that recorded its exchanges, in the order they first served it. */
  sessions: string[];
}

export interface ExchangeGroups {
  groups: ExchangeGroup[];
  /** The group of each request event (by its seq), as the client sent it and as forwarded. */
  bySeq: Map<number, string>;
}

/** The events of one recorded session, for grouping several (a principal's pooled sessions on one connection). */
export interface SessionEvents {
  sessionId: string;
  events: readonly EventRow[];
}

/**
 * A group's id: the session and seq of its first request. Session ids are base64url, so the dot tells a group id from
 * a session id anywhere one is taken (`sessions show|export`, the API, the console).
 */
export function groupId(sessionId: string, seq: number): string {
  return `${sessionId}.${seq}`;
}

/** The session and seq a group id names; undefined when `id` is not one. */
export function parseGroupId(id: string): { sessionId: string; seq: number } | undefined {
  const m = /^([A-Za-z0-9_-]{1,200})\.(0|[1-9][0-9]{0,15})$/.exec(id);
  return m === null ? undefined : { sessionId: m[1]!, seq: Number(m[2]) };
}

type Message = Record<string, unknown>;

function parse(text: string | null): Message | undefined {
  if (text === null) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Message) : undefined;
  } catch {
    return undefined;
  }
}

const idOf = (m: Message | undefined): string | number | undefined => (typeof m?.id === 'string' || typeof m?.id === 'number' ? m.id : undefined);
const key = (id: string | number) => JSON.stringify(id);
/** A request's identity across the gateway's renumbering: its method and params. */
const shape = (m: Message) => `${String(m.method)} ${JSON.stringify(m.params ?? null)}`;

/** Groups the client requests of a session's events (in order) by trace id, else by an idle gap of `gapMs`. */
export function exchangeGroups(events: readonly EventRow[], gapMs: number): ExchangeGroups {
  const sessionId = events[0]?.sessionId ?? '';
  const merged = groupSessions([{ sessionId, events }], gapMs);
  const bySeq = new Map<number, string>();
  for (const [at, label] of merged.byEvent) bySeq.set(Number(at.slice(at.lastIndexOf('.') + 1)), label);
  return { groups: merged.groups, bySeq };
}

/**
 * Groups the client requests of several sessions of one principal on one connection as one stream, in time order (a
 * pooled upstream session is the gateway's, not the client's: the client's exchanges may be spread over several, and
 * over the sessions that record refused requests). `byEvent` names the group of each request event by groupId(session, seq).
 */
export function groupSessions(sessions: readonly SessionEvents[], gapMs: number): { groups: ExchangeGroup[]; byEvent: Map<string, string> } {
  const gapUs = gapMs * 1000;
  const groups = new Map<string, ExchangeGroup>();
  const byEvent = new Map<string, string>();
  /** Untraced requests not answered yet, by session and the client's id; and when the last untraced exchange was last active. */
  const untraced = new Map<string, string>();
  let lastActiveUs: number | undefined;
  let idle = 0;
  /** Requests received and not yet seen forwarded, per session: a forwarded one takes the group of the first of its shape. */
  const unforwarded = new Map<string, Array<{ shape: string; method: unknown; label: string }>>();
  const touch = (label: string, us: number) => {
    const g = groups.get(label)!;
    g.lastUs = Math.max(g.lastUs, us);
  };
  for (const e of inTimeOrder(sessions)) {
    if (e.kind !== 'message') continue;
    const m = parse(e.payload);
    if (m === undefined) continue;
    const id = idOf(m);
    const here = (i: string | number) => `${e.sessionId} ${key(i)}`;
    const pending = unforwarded.get(e.sessionId) ?? [];
    unforwarded.set(e.sessionId, pending);
    if (e.direction === 'toServer' && typeof m.method === 'string' && id !== undefined) {
      if (e.boundary === 'delivered') {
        // The request as forwarded after a stage held or rewrote it: the group of the request it was.
        const at = pending.findIndex((u) => u.shape === shape(m));
        const i = at >= 0 ? at : pending.findIndex((u) => u.method === m.method);
        if (i >= 0) {
          byEvent.set(groupId(e.sessionId, e.seq), pending[i]!.label);
          pending.splice(i, 1);
        }
        continue;
      }
      // A pooled session's initialize is the gateway's own, made before any exchange of its client.
      if (m.method === 'initialize') continue;
      const traceId = exchangeMeta(m).traceId;
      let label: string;
      if (traceId !== undefined) label = `trace ${traceId}`;
      else {
        if (idle === 0 || (untraced.size === 0 && lastActiveUs !== undefined && e.timeUs - lastActiveUs > gapUs)) idle++;
        label = String(idle);
        untraced.set(here(id), label);
        lastActiveUs = e.timeUs;
      }
      let g = groups.get(label);
      if (g === undefined) {
        g = { id: groupId(e.sessionId, e.seq), label, ...(traceId ? { traceId } : {}), exchanges: 0, firstUs: e.timeUs, lastUs: e.timeUs, sessions: [] };
        groups.set(label, g);
      }
      g.exchanges++;
      if (!g.sessions.includes(e.sessionId)) g.sessions.push(e.sessionId);
      touch(label, e.timeUs);
      byEvent.set(groupId(e.sessionId, e.seq), label);
      if (e.boundary === 'received') pending.push({ shape: shape(m), method: m.method, label });
      continue;
    }
    if (e.direction === 'toServer' && m.method === 'notifications/cancelled' && e.boundary !== 'delivered') {
      // The client gave a request up: it no longer keeps its group open.
      const target = (m.params as Message | undefined)?.requestId;
      if ((typeof target === 'string' || typeof target === 'number') && untraced.delete(here(target))) lastActiveUs = Math.max(lastActiveUs ?? 0, e.timeUs);
      continue;
    }
    if (e.direction === 'toClient' && typeof m.method !== 'string' && e.boundary !== 'received') {
      // An answer as the client got it: the exchange it ends was active until now.
      const clientId = e.boundary === 'relayed' ? idOf(parse(e.forwarded)) : id;
      const label = clientId === undefined ? undefined : untraced.get(here(clientId));
      if (label !== undefined) {
        untraced.delete(here(clientId!));
        lastActiveUs = Math.max(lastActiveUs ?? 0, e.timeUs);
        touch(label, e.timeUs);
      }
    }
  }
  return { groups: [...groups.values()], byEvent };
}

/** The events of several sessions as one stream by time; each session's own order kept (its seq) at equal times. */
function inTimeOrder(sessions: readonly SessionEvents[]): EventRow[] {
  if (sessions.length === 1) return [...sessions[0]!.events];
  const all = sessions.flatMap((s, index) => s.events.map((e) => ({ e, index })));
  all.sort((a, b) => a.e.timeUs - b.e.timeUs || a.index - b.index || a.e.seq - b.e.seq);
  return all.map((x) => x.e);
}

/** The events of one group (its requests and what belongs to them, as `eventsOfTrace` follows them). */
export function eventsOfGroup(events: readonly EventRow[], label: string, gapMs: number): EventRow[] {
  const { bySeq } = exchangeGroups(events, gapMs);
  return eventsOfRequests(events, (_m, e) => bySeq.get(e.seq) === label);
}

/** The events of one group of several sessions (`byEvent` as groupSessions gave it), each session's followed on its own, then merged by time. */
export function eventsOfMergedGroup(sessions: readonly SessionEvents[], byEvent: ReadonlyMap<string, string>, label: string): EventRow[] {
  const picked = sessions.map((s) => ({
    sessionId: s.sessionId,
    events: eventsOfRequests(s.events, (_m, e) => byEvent.get(groupId(e.sessionId, e.seq)) === label),
  }));
  return inTimeOrder(picked);
}
