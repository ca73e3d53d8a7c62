import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import type { Identity } from '../core/identity.js';
import { defaultMaxConnections } from '../edge/connection-guard.js';
import { LegacySseEdge } from '../edge/legacy-sse.js';
import { loopbackHosts } from '../edge/origin.js';
import type { PublicUrls } from '../edge/public-urls.js';
import type { KeepAlive } from '../edge/sse-writer.js';
import { StreamableHttpEdge } from '../edge/streamable-http.js';
import type { HttpServerOptions } from '../http/http-server.js';
import type { SessionRegistry, SessionRegistryOptions } from '../session/registry.js';

/** The config's settings as the options of the parts the composition root builds: the session registry, the edges, the port. */

export function registrySettings(
  config: GatewayConfig,
): Pick<SessionRegistryOptions, 'connections' | 'idleTimeoutMs' | 'holdProgressMs' | 'flow'> &
  Partial<Pick<SessionRegistryOptions, 'reclaimIdleAfterMs' | 'abandonedAfterMs'>> {
  return {
    connections: config.connections,
    ...(config.limits.reclaimIdleAfterMs === undefined ? {} : { reclaimIdleAfterMs: config.limits.reclaimIdleAfterMs }),
    idleTimeoutMs: config.sessions.idleTimeoutMs,
    ...(config.sessions.abandonedAfterMs === undefined ? {} : { abandonedAfterMs: config.sessions.abandonedAfterMs }),
    holdProgressMs: config.reviews.progressIntervalMs,
    flow: {
      backlogBytes: config.limits.clientBacklogBytes,
      stallTimeoutMs: config.limits.slowClientTimeoutMs,
      // What may still arrive after the pause: a read under way (up to one whole message) and a last one parsed.
      hardCapBytes: config.limits.clientBacklogBytes + 2 * config.limits.maxMessageBytes,
    },
  };
}

/** The MCP edges: Streamable HTTP and legacy SSE, over one registry. */
export function edges(
  config: GatewayConfig,
  o: {
    registry: SessionRegistry;
    keepAlive: KeepAlive;
    refuseEarly: (identity: Identity) => { message: string; retryAfterSeconds: number } | undefined;
    log: Logger;
  },
): Pick<HttpServerOptions, 'streamableHttp' | 'legacySse'> {
  const common = { registry: o.registry, keepAlive: o.keepAlive, maxMessageBytes: config.limits.maxMessageBytes, refuseEarly: o.refuseEarly };
  return {
    streamableHttp: new StreamableHttpEdge({
      ...common,
      eventBufferSize: config.http.eventBufferSize,
      clientBacklogBytes: config.limits.clientBacklogBytes,
      log: o.log.child({ edge: 'streamable-http' }),
    }),
    legacySse: new LegacySseEdge({ ...common, log: o.log.child({ edge: 'sse' }) }),
  };
}

/** The port's Host/Origin policy, timeouts and connection cap, and the roles its APIs check. */
export function serverSettings(config: GatewayConfig, publicUrls: PublicUrls): Pick<HttpServerOptions, 'hostPolicy' | 'connections' | 'roles' | 'publicUrls'> {
  return {
    hostPolicy: {
      allowedHosts: config.http.allowedHosts ?? loopbackHosts,
      allowedOrigins: config.http.allowedOrigins ?? [],
      ownOrigins: () => publicUrls.origins(),
    },
    connections: {
      headersMs: config.http.headersTimeoutMs,
      requestMs: config.http.requestTimeoutMs,
      idleMs: config.http.idleTimeoutMs,
      maxConnections: config.http.maxConnections ?? defaultMaxConnections(),
    },
    roles: config.roles,
    publicUrls,
  };
}
