import type { Logger } from 'pino';
import type { UpstreamConfig } from './config.js';
import { SseUpstream } from './http.js';
import { upstreamScrubber } from './injected-credentials.js';
import { StreamableHttpUpstream, type UpstreamAgents } from './streamable-http.js';
import { type SpareSource, StdioUpstream } from './stdio.js';
import type { Upstream } from './upstream.js';

export type { Upstream } from './upstream.js';
export { UpstreamError } from './upstream.js';
export { UpstreamAgents } from './streamable-http.js';
export { StdioSparePools } from './stdio-spares.js';

/**
 * Builds a fresh, unstarted upstream link for one client session on a connection. A connection served by an agent
 * is reached through `viaAgent` (the gateway's tunnels); the agent itself has none. A stdio connection's session takes
 * its process from `spares` when one waits there.
 */
export function createUpstream(
  connection: { name: string; upstream: UpstreamConfig },
  maxMessageBytes: number,
  agents: UpstreamAgents,
  log: Logger,
  viaAgent?: (agent: string) => Upstream,
  spares?: SpareSource,
): Upstream {
  const u = connection.upstream;
  // Every credential the gateway injects is scrubbed from everything the server sends back, where it enters.
  const scrubber = upstreamScrubber(connection.name, u);
  switch (u.kind) {
    case 'agent':
      if (viaAgent === undefined) throw new Error(`connection '${connection.name}' is served by an agent, and agents are not reachable here`);
      return viaAgent(u.agent);
    case 'stdio':
      return new StdioUpstream(u, maxMessageBytes, log, scrubber, spares);
    case 'http':
      return new StreamableHttpUpstream(u, agents.for(connection.name, u.url.reveal().startsWith('https:')), maxMessageBytes, scrubber);
    case 'sse':
      return new SseUpstream(u, scrubber);
  }
}
