import { basename } from 'node:path';
import type { ConnectionConfig, UpstreamConfig } from '../config/schema.js';

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

export function connectionSummaries(connections: Iterable<ConnectionConfig>, openSessions: (connection: string) => number): ConnectionSummary[] {
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
  }));
}
