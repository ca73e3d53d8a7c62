import { basename } from 'node:path';
import type { ConnectionConfig, UpstreamConfig } from '../config/schema.js';
import type { MemberState } from '../virtual/member-health.js';

/**
 * A connection as the console's admins see it: who may open it, what decides unmatched calls, how many sessions are
 * open. The upstream is named by its kind and the least that identifies it (a command's file name, a URL's host):
 * never its arguments, environment, headers, path or query, where credentials live.
 */
export interface ConnectionSummary {
  name: string;
  description: string | null;
  upstream: string;
  agent: string | null;
  groups: string[];
  approvers: string[];
  guardrailsDefault: 'allow' | 'deny' | 'review';
  pinning: boolean;
  openSessions: number;
  /** A virtual server's members, in its order, each as last seen (src/virtual/member-health.ts); null for a connection. */
  members: MemberSummary[] | null;
}

/**
 * One member of a virtual server on the connections page: `unknown` until a session of the virtual server has opened
 * it; `down` with why and since when (it is left out of the lists and retried in the background).
 */
export interface MemberSummary {
  connection: string;
  state: 'up' | 'down' | 'unknown';
  reason: string | null;
  since: string | null;
  /** The virtual sessions open now that use it; 0: none, and its state is as last seen. */
  sessions: number;
}

function upstreamLabel(u: UpstreamConfig): string {
  if (u.kind === 'agent') return `agent ${u.agent}`;
  if (u.kind === 'stdio') return `stdio: ${basename(u.command)}`;
  if (u.kind === 'virtual') return `virtual: ${u.members.map((m) => m.connection).join(', ')}`;
  try {
    return `${u.kind === 'sse' ? 'legacy SSE' : 'Streamable HTTP'}: ${new URL(u.url.reveal()).host}`;
  } catch {
    return u.kind;
  }
}

/**
 * `members` says a connection is a virtual server by naming its members' states; undefined for any other connection.
 */
export function connectionSummaries(
  connections: Iterable<ConnectionConfig>,
  openSessions: (connection: string) => number,
  members: (connection: ConnectionConfig) => MemberSummary[] | undefined = () => undefined,
): ConnectionSummary[] {
  return [...connections].map((c) => ({
    name: c.name,
    description: c.description ?? null,
    upstream: upstreamLabel(c.upstream),
    agent: c.upstream.kind === 'agent' ? c.upstream.agent : null,
    groups: c.access.groups,
    approvers: c.access.approvers,
    guardrailsDefault: c.guardrails.default,
    pinning: c.tools.pin,
    openSessions: openSessions(c.name),
    members: members(c) ?? null,
  }));
}

/** A virtual server's members (its member connections, in order) with what the gateway last saw of each. */
export function memberSummaries(members: readonly string[], seen: readonly MemberState[]): MemberSummary[] {
  return members.map((connection) => {
    const status = seen.find((s) => s.member === connection);
    if (status === undefined) return { connection, state: 'unknown', reason: null, since: null, sessions: 0 };
    return {
      connection,
      state: status.up ? 'up' : 'down',
      reason: status.reason ?? null,
      since: new Date(status.since).toISOString(),
      sessions: status.sessions,
    };
  });
}
