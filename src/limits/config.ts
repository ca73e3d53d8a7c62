import { z } from 'zod';
import { duration, durationOrOff, size } from '../core/config-fields.js';

/** The limits slice of the config (`limits`, and a connection's own `limits`; docs/security.md, Limits). */

/** A rate with bursts: `{ perSecond: 100, burst: 500 }`. */
function rateSchema(perSecond: number, burst: number) {
  return z
    .strictObject({
      /** Sustained events per second (fractions allowed: 0.2 is one every 5 s). */
      perSecond: z.number().positive().max(1_000_000).default(perSecond),
      /** How many may come at once above the sustained rate. */
      burst: z.number().int().min(1).max(10_000_000).default(burst),
    })
    .prefault({});
}

/** A count limit: a whole number from 1 (there is no "unlimited": to lift a limit, set a large number). */
const countLimit = z.number().int().min(1).max(10_000_000);

/** Every connection's limits unless it gives its own (`limits.connection`). */
function connectionLimitDefaults() {
  return z
    .strictObject({
      /** Live sessions on the connection, all principals together. */
      sessions: countLimit.default(1024),
      /** Live server processes of a stdio connection (one per session). */
      stdioProcesses: countLimit.default(64),
      /** Client requests waiting for their answer on the connection, all principals together. */
      requestsInFlight: countLimit.default(1024),
    })
    .prefault({});
}

/** A connection's own limits: the keys given replace `limits.connection`'s; per tool rates exist only here. */
export function connectionLimitsSchema() {
  return z
    .strictObject({
      sessions: countLimit.optional(),
      stdioProcesses: countLimit.optional(),
      requestsInFlight: countLimit.optional(),
      /** Tool name pattern (`*` wildcards) → the rate each principal may call the matching tools at (one bucket per pattern). */
      tools: z.record(z.string().min(1), rateSchema(1, 10)).default({}),
    })
    .prefault({});
}

export function limitsSchema() {
  return z
    .strictObject({
      maxMessageSize: size('16MiB'),
      /** Bytes on their way to one session's client, unread, above which the gateway stops reading its server. */
      clientBacklog: size('8MiB').refine((bytes) => bytes >= 64 * 1024, 'expected at least 64KiB'),
      /** How long a session's server may stay paused for a client that does not catch up before the session ends. */
      slowClientTimeout: duration('60s').refine((ms) => ms >= 1000, 'expected at least 1s'),
      /**
       * At a session limit, the least recently used session quiet this long (nothing pending, no client stream open)
       * is closed to make room instead of the new one being refused; `off` refuses.
       */
      reclaimIdleAfter: durationOrOff('1s'),
      /** Each principal (issuer + subject), on this gateway. */
      principal: z
        .strictObject({
          sessions: countLimit.default(64),
          /** Live server processes of stdio connections started for the principal (one per session). */
          stdioProcesses: countLimit.default(16),
          sessionOpens: rateSchema(2, 60),
          requestsInFlight: countLimit.default(64),
          requests: rateSchema(100, 500),
        })
        .prefault({}),
      /** The defaults of every connection; a connection's own `limits` replaces the keys it gives. */
      connection: connectionLimitDefaults(),
      /** This gateway as a whole. */
      global: z.strictObject({ sessions: countLimit.default(4096), requestsInFlight: countLimit.default(4096) }).prefault({}),
      /** Requests to MCP endpoints whose token is not already verified, checked before any signature is. */
      unauthenticated: z
        .strictObject({
          perAddress: rateSchema(10, 100),
          total: rateSchema(500, 2000),
          /** Remote addresses remembered (IPv6 by /64); beyond it the stalest are forgotten. */
          addresses: countLimit.default(10_000),
        })
        .prefault({}),
    })
    .prefault({})
    .transform(({ maxMessageSize, clientBacklog, slowClientTimeout, reclaimIdleAfter, ...rest }) => ({
      ...rest,
      maxMessageBytes: maxMessageSize,
      clientBacklogBytes: clientBacklog,
      slowClientTimeoutMs: slowClientTimeout,
      /** undefined: never reclaim (refuse at the limit). */
      reclaimIdleAfterMs: reclaimIdleAfter,
    }));
}

export type LimitsConfig = z.output<ReturnType<typeof limitsSchema>>;
/** A rate with bursts. */
export type RateConfig = z.output<ReturnType<typeof rateSchema>>;

/** A connection's limits: the gateway-wide `limits.connection` with the connection's own keys applied. */
export function connectionLimits(own: z.output<ReturnType<typeof connectionLimitsSchema>>, defaults: LimitsConfig['connection']) {
  return {
    sessions: own.sessions ?? defaults.sessions,
    stdioProcesses: own.stdioProcesses ?? defaults.stdioProcesses,
    requestsInFlight: own.requestsInFlight ?? defaults.requestsInFlight,
    tools: own.tools,
  };
}

export type ConnectionLimits = ReturnType<typeof connectionLimits>;

/** What the limits read of a connection (its config satisfies it). */
export interface LimitedConnection {
  name: string;
  upstream: { kind: string };
  /** `pooled`: client sessions share server processes, so a stdio process is counted when one starts (admitProcess). */
  upstreamSessions?: string;
  limits: ConnectionLimits;
}
