import type { Logger } from 'pino';
import type { ConnectionConfig } from '../config/schema.js';
import { SseUpstream, StreamableHttpUpstream } from './http.js';
import { StdioUpstream } from './stdio.js';
import type { Upstream } from './upstream.js';

export type { Upstream } from './upstream.js';
export { UpstreamError } from './upstream.js';

/** Builds a fresh, unstarted upstream link for one client session on a connection. */
export function createUpstream(connection: ConnectionConfig, maxMessageBytes: number, log: Logger): Upstream {
  const u = connection.upstream;
  switch (u.kind) {
    case 'stdio':
      return new StdioUpstream(u, maxMessageBytes, log);
    case 'http':
      return new StreamableHttpUpstream(u);
    case 'sse':
      return new SseUpstream(u);
  }
}
