import type { Logger } from 'pino';
import type { ConnectionConfig } from '../config/schema.js';
import { SseUpstream } from './http.js';
import { StreamableHttpUpstream, type UpstreamAgents } from './streamable-http.js';
import { StdioUpstream } from './stdio.js';
import type { Upstream } from './upstream.js';

export type { Upstream } from './upstream.js';
export { UpstreamError } from './upstream.js';
export { UpstreamAgents } from './streamable-http.js';

/** Builds a fresh, unstarted upstream link for one client session on a connection. */
export function createUpstream(connection: ConnectionConfig, maxMessageBytes: number, agents: UpstreamAgents, log: Logger): Upstream {
  const u = connection.upstream;
  switch (u.kind) {
    case 'stdio':
      return new StdioUpstream(u, maxMessageBytes, log);
    case 'http':
      return new StreamableHttpUpstream(u, agents.for(connection.name, u.url.reveal().startsWith('https:')), maxMessageBytes);
    case 'sse':
      return new SseUpstream(u);
  }
}
