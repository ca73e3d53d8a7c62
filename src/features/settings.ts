import type { RefusalPlace } from '../core/refusal-log.js';
import type { Logger } from 'pino';
import type { ConnectionConfig, GatewayConfig } from '../config/schema.js';
import type { ToolPins } from '../pins/tool-pins.js';
import type { Identity } from '../core/identity.js';
import { defaultMaxConnections } from '../edge/connection-guard.js';
import { LegacySseEdge } from '../edge/legacy-sse.js';
import { loopbackHosts } from '../edge/origin.js';
import type { PublicUrls } from '../edge/public-urls.js';
import type { KeepAlive } from '../edge/sse-writer.js';
import { StreamableHttpEdge } from '../edge/streamable-http.js';
import { ModernHttpEdge } from '../edge/modern-http.js';
import { RequestStateSealer } from '../edge/request-state.js';
import type { Replicas } from '../cluster/replicas.js';
import type { TokenKeys } from '../cluster/token-keys.js';
import { ModernPool } from '../session/modern-pool.js';
import type { HttpServerOptions } from '../http/http-server.js';
import type { Limits } from '../limits/limits.js';
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

/** The pooled internal sessions that serve MCP 2026-07-28 clients (sessions.modernIdleTimeout, sessions.modernPoolSize). */
export function modernPool(config: GatewayConfig, registry: () => SessionRegistry, log: Logger): ModernPool {
  return new ModernPool({
    registry,
    idleMs: config.sessions.modernIdleTimeoutMs,
    maxPerKey: config.sessions.modernPoolSize,
    log: log.child({ edge: 'modern' }),
  });
}

/** The MCP edges: Streamable HTTP (legacy sessions and modern requests) and legacy SSE, over one registry. */
export function edges(
  config: GatewayConfig,
  o: {
    registry: SessionRegistry;
    keepAlive: KeepAlive;
    /** Callers refused before their session (limits), and refusals charged to the caller's request rate. */
    limits: Pick<Limits, 'refusesRequestsEarly' | 'admitRefused'>;
    log: Logger;
    /** The pooled sessions of modern clients. */
    pool: ModernPool;
    /** This replica among its peers: its instance id, which MRTR states bind, and the hop to the others. */
    replicas: Replicas;
    /** The shared keys of the gateway's sealed tokens. */
    tokenKeys: TokenKeys;
    /** Tool pins, when the gateway pins tool definitions: `Mcp-Param-*` headers are checked against the pinned schemas. */
    pins?: ToolPins | undefined;
  },
): Pick<HttpServerOptions, 'streamableHttp' | 'legacySse' | 'modernHttp' | 'maxMessageBytes'> {
  const refuseEarly = (identity: Identity, at: RefusalPlace) => o.limits.refusesRequestsEarly(identity, at);
  const common = { registry: o.registry, keepAlive: o.keepAlive, maxMessageBytes: config.limits.maxMessageBytes, refuseEarly };
  return {
    streamableHttp: new StreamableHttpEdge({
      ...common,
      eventBufferSize: config.http.eventBufferSize,
      clientBacklogBytes: config.limits.clientBacklogBytes,
      log: o.log.child({ edge: 'streamable-http' }),
    }),
    legacySse: new LegacySseEdge({ ...common, log: o.log.child({ edge: 'sse' }) }),
    modernHttp: new ModernHttpEdge({
      pool: o.pool,
      keepAlive: o.keepAlive,
      log: o.log.child({ edge: 'modern' }),
      ttlCapMs: config.sessions.maxResultTtlMs,
      variesByCaller: (connection) => o.registry.resultsVaryByCaller(connection),
      recordRefusal: (connection, identity, origin, reason, text, answer) => o.registry.refuse(connection, identity, origin, reason, 'edge', { text, answer }),
      sealer: new RequestStateSealer(o.replicas.instance, config.sessions.inputTimeoutMs, o.tokenKeys.ring('requestState')),
      forwardRound: (owner, req, res, caller, text, unreachable) => {
        const address = o.replicas.addressOf(owner, req);
        if (address === undefined) return undefined;
        // The target as the owner will see it (normalized), not the raw request line: the signature covers it.
        const url = new URL(req.url ?? '/', 'http://gateway');
        const forward = async (to: string) => {
          await o.replicas.forward(req, res, owner, to, url.pathname + url.search, caller, text, unreachable, {
            peer: 'the gateway replica holding this round',
          });
        };
        if (address !== 'gone') return forward(address);
        // Not a live replica as last read: read again (rate-limited) before answering that its round is gone; in
        // flight meanwhile, so that a drain beginning then waits for it.
        return o.replicas.holdDrain(
          req,
          o.replicas.recheck(owner).then((to) => (to === 'gone' ? unreachable() : forward(to))),
        );
      },
      roundTtlMs: config.sessions.inputTimeoutMs,
      refuseEarly,
      admitRefused: (identity: Identity, at: RefusalPlace) => o.limits.admitRefused(identity, at),
      ...(o.pins === undefined ? {} : { pinnedInputSchema: pinnedInputSchema(o.pins) }),
    }),
    maxMessageBytes: config.limits.maxMessageBytes,
  };
}

/** A tool's approved inputSchema on a connection that pins tools (read from the store the first time). */
function pinnedInputSchema(pins: ToolPins): (connection: ConnectionConfig, tool: string) => Promise<unknown> {
  return async (connection, tool) => {
    if (!connection.tools.pin) return undefined;
    if (pins.inputSchema(connection.name, tool) === undefined) await pins.load(connection.name);
    return pins.inputSchema(connection.name, tool) ?? undefined;
  };
}

/** The port's Host/Origin policy, timeouts and connection cap, and the roles its APIs check. */
export function serverSettings(
  config: GatewayConfig,
  publicUrls: PublicUrls,
  limits: Pick<Limits, 'admitRefused'>,
): Pick<HttpServerOptions, 'hostPolicy' | 'connections' | 'roles' | 'publicUrls' | 'admitRefused'> {
  return {
    admitRefused: (identity, at) => limits.admitRefused(identity, at),
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
