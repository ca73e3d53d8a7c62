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
  label: string;
  traceId?: string;
  exchanges: number;
  /** When its first request was recorded, and when its last event was (µs since the epoch). */
  firstUs: number;
  lastUs: number;
}

export interface ExchangeGroups {
  groups: ExchangeGroup[];
  /** The group of each request event (by its seq), as the client sent it and as forwarded. */
  bySeq: Map<number, string>;
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
  const gapUs = gapMs * 1000;
  const groups = new Map<string, ExchangeGroup>();
  const bySeq = new Map<number, string>();
  /** Untraced requests not answered yet, by the client's id; and when the last untraced exchange was last active. */
  const untraced = new Map<string, string>();
  let lastActiveUs: number | undefined;
  let idle = 0;
  /** Requests received and not yet seen forwarded: a forwarded one takes the group of the first of its shape. */
  const unforwarded: Array<{ shape: string; method: unknown; label: string }> = [];
  const touch = (label: string, us: number) => {
    const g = groups.get(label)!;
    g.lastUs = Math.max(g.lastUs, us);
  };
  for (const e of events) {
    if (e.kind !== 'message') continue;
    const m = parse(e.payload);
    if (m === undefined) continue;
    const id = idOf(m);
    if (e.direction === 'toServer' && typeof m.method === 'string' && id !== undefined) {
      if (e.boundary === 'delivered') {
        // The request as forwarded after a stage held or rewrote it: the group of the request it was.
        const at = unforwarded.findIndex((u) => u.shape === shape(m));
        const i = at >= 0 ? at : unforwarded.findIndex((u) => u.method === m.method);
        if (i >= 0) {
          bySeq.set(e.seq, unforwarded[i]!.label);
          unforwarded.splice(i, 1);
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
        untraced.set(key(id), label);
        lastActiveUs = e.timeUs;
      }
      if (!groups.has(label)) groups.set(label, { label, ...(traceId ? { traceId } : {}), exchanges: 0, firstUs: e.timeUs, lastUs: e.timeUs });
      groups.get(label)!.exchanges++;
      touch(label, e.timeUs);
      bySeq.set(e.seq, label);
      if (e.boundary === 'received') unforwarded.push({ shape: shape(m), method: m.method, label });
      continue;
    }
    if (e.direction === 'toServer' && m.method === 'notifications/cancelled' && e.boundary !== 'delivered') {
      // The client gave a request up: it no longer keeps its group open.
      const target = (m.params as Message | undefined)?.requestId;
      if ((typeof target === 'string' || typeof target === 'number') && untraced.delete(key(target))) lastActiveUs = Math.max(lastActiveUs ?? 0, e.timeUs);
      continue;
    }
    if (e.direction === 'toClient' && typeof m.method !== 'string' && e.boundary !== 'received') {
      // An answer as the client got it: the exchange it ends was active until now.
      const clientId = e.boundary === 'relayed' ? idOf(parse(e.forwarded)) : id;
      const label = clientId === undefined ? undefined : untraced.get(key(clientId));
      if (label !== undefined) {
        untraced.delete(key(clientId!));
        lastActiveUs = Math.max(lastActiveUs ?? 0, e.timeUs);
        touch(label, e.timeUs);
      }
    }
  }
  return { groups: [...groups.values()], bySeq };
}

/** The events of one group (its requests and what belongs to them, as `eventsOfTrace` follows them). */
export function eventsOfGroup(events: readonly EventRow[], label: string, gapMs: number): EventRow[] {
  const { bySeq } = exchangeGroups(events, gapMs);
  return eventsOfRequests(events, (_m, e) => bySeq.get(e.seq) === label);
}
