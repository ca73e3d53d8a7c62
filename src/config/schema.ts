import { isIP } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { auditSchema } from '../audit/config.js';
import { connectionNamePattern, connectionNameRule, duration, durationOrOff, referenceOnly } from '../core/config-fields.js';
import { type SecretSources, SecretString } from '../core/secrets.js';
import { accessSchema, identitySchema } from '../identity/config.js';
import { connectionLimits, connectionLimitsSchema, limitsSchema } from '../limits/config.js';
import { checkMaskingNames, connectionMasking, connectionMaskingSchema, type MaskingConfig, maskingSchema } from '../masking/config.js';
import { isLoopbackHost } from '../net/loopback.js';
import { checkHeartbeatFits, clusterSchema } from '../cluster/config.js';
import { clientCapabilitiesSchema } from '../pipeline/client-capabilities.js';
import { pinsSchema } from '../pins/config.js';
import { guardrailsSchema, rulesSchema } from '../policy/config.js';
import { recordingSchema } from '../recording/config.js';
import { checkWebhookNames, notificationsSchema, reviewsSchema } from '../reviews/config.js';
import { storeUrl } from '../store/config.js';
import { oneUpstream, type UpstreamConfig, upstreamOf, upstreamSchemas } from '../upstream/config.js';
import { checkVirtualServers, type VirtualServerConfig, virtualServersSchema, virtualUpstreamOf } from '../virtual/config.js';
import { telemetrySchema } from '../telemetry/config.js';

/**
 * The config file's schema: the composition of the slices each feature owns (src/<feature>/config.ts) with the
 * gateway-wide keys and the checks across slices. Parsing turns the YAML as written into the resolved GatewayConfig
 * (its type is the schema's output): durations in ms, sizes in bytes, secret references resolved into SecretStrings.
 * Every object is strict so that a misspelt key is an error rather than a silently ignored setting.
 */

const namePatterns = z.array(z.string().min(1)).optional();

function connectionSchema(sources: SecretSources) {
  const { stdio, http, sse } = upstreamSchemas(sources);
  return z
    .strictObject({
      description: z.string().optional(),
      stdio: stdio.optional(),
      http: http.optional(),
      sse: sse.optional(),
      /** Served by this agent, inside the server's network (portcullis agent); its credentials never leave it. */
      agent: z
        .string()
        .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'an agent name is lower-case letters, digits, - and _')
        .optional(),
      access: accessSchema(),
      masking: connectionMaskingSchema(),
      guardrails: guardrailsSchema(),
      /** This connection's limits; keys not given come from the gateway-wide `limits.connection`. */
      limits: connectionLimitsSchema(),
      tools: z
        .strictObject({
          /** Tool names (`*` wildcards) the connection exposes; all when absent. */
          allow: namePatterns,
          /** Tool names (`*` wildcards) hidden and refused, even when allowed. */
          deny: namePatterns,
          /** Pin the server's tool definitions and quarantine changed or new ones until an admin approves them. */
          pin: z.boolean().default(true),
        })
        .prefault({}),
      /** Client capabilities the server is never offered (sampling, roots, elicitation.url, ...). */
      clientCapabilities: clientCapabilitiesSchema(),
      /**
       * How 2025-era client sessions reach the server. `per-client` (default): each client session has an upstream
       * session of its own (for stdio, its own server process). `pooled`: client sessions of the same principal,
       * protocol version and client capabilities share a few upstream sessions (sessions.modernPoolSize at most,
       * closed after sessions.modernIdleTimeout unused); only for servers that keep no per-session state, since the
       * server then sees one session for several of that principal's clients (docs/protocol.md, "Pooled upstream sessions").
       */
      upstreamSessions: z.enum(['per-client', 'pooled']).default('per-client'),
    })
    .superRefine(oneUpstream(['stdio', 'http', 'sse', 'agent']))
    .superRefine((c, ctx) => {
      if (c.upstreamSessions === 'pooled' && c.agent !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['upstreamSessions'],
          message: 'an agent connection has an upstream session per client session; remove upstreamSessions: pooled (or serve the connection from the gateway)',
        });
    });
}

function listenAddress() {
  return z
    .string()
    .default('127.0.0.1:8080')
    .transform((v, ctx) => {
      const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
      const port = m ? Number(m[3]) : NaN;
      const host = m ? (m[1] ?? m[2] ?? '') : '';
      if (!m || port > 65535 || (host !== 'localhost' && isIP(host) === 0)) {
        ctx.addIssue({ code: 'custom', message: `expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080 (0 picks a free port), found ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      return { host, port };
    });
}

/** The file as written, every slice parsed and checked. */
function fileSchema(sources: SecretSources) {
  return (
    z
      .strictObject({
        listen: listenAddress(),
        /** The recording store; default: sqlite:<dataDir>/portcullis.db. */
        store: storeUrl(sources),
        dataDir: z.string().min(1).default('./data'),
        recording: recordingSchema(sources),
        /** OpenTelemetry traces (OTLP/HTTP); off unless an endpoint is configured here or by OTEL_* variables. */
        telemetry: telemetrySchema(sources),
        /** Recorded events streamed to a SIEM or a log shipper (src/audit/). */
        audit: auditSchema(sources),
        /** Replicas of one gateway: membership, change notifications, the hop's secret and the shared token keys. */
        cluster: clusterSchema(sources),
        identity: identitySchema(sources),
        masking: maskingSchema(),
        api: z
          .strictObject({
            /** A bearer token for /api/sessions and /metrics (a Prometheus scrape, scripts elsewhere); on the host, the local API key in dataDir does the same. */
            token: referenceOnly(sources, 'an API token').optional(),
          })
          .prefault({}),
        limits: limitsSchema(),
        http: z
          .strictObject({
            /** Host header values accepted (DNS-rebinding defence); defaults to loopback names on a loopback listen. */
            allowedHosts: z.array(z.string().min(1)).optional(),
            /** The URL clients reach the gateway at (behind a proxy, its public https URL); default: the listen address. */
            publicUrl: z
              .url({ protocol: /^https?$/, error: "expected the gateway's base URL as clients see it, e.g. https://portcullis.example.com" })
              .transform((url) => url.replace(/\/+$/, ''))
              .optional(),
            /** Origin header values accepted from browsers; defaults to the allowed hosts over http and https. */
            allowedOrigins: z.array(z.string().min(1)).optional(),
            keepAlive: duration('15s'),
            /** Events kept per SSE stream for Last-Event-ID resumption. */
            eventBuffer: z.number().int().min(0).max(100_000).default(1000),
            /** Slow clients (docs/security.md): a request's head must arrive within this, head and body within requestTimeout. */
            headersTimeout: duration('10s').refine((ms) => ms >= 100, 'expected at least 100ms'),
            requestTimeout: duration('60s').refine((ms) => ms >= 100, 'expected at least 100ms'),
            /** How long a keep-alive connection may wait for its next request. */
            idleTimeout: duration('65s').refine((ms) => ms >= 100, 'expected at least 100ms'),
            /** Open connections at most; over it idle ones are shed first. Default: half the open-file limit. */
            maxConnections: z.number().int().min(1).optional(),
          })
          .superRefine((h, ctx) => {
            if (h.requestTimeout < h.headersTimeout) {
              ctx.addIssue({
                code: 'custom',
                path: ['requestTimeout'],
                message: 'expected at least http.headersTimeout: the head is part of the request; raise requestTimeout or lower headersTimeout',
              });
            }
          })
          .prefault({})
          .transform(({ keepAlive, eventBuffer, headersTimeout, requestTimeout, idleTimeout, ...rest }) => ({
            ...rest,
            keepAliveMs: keepAlive,
            eventBufferSize: eventBuffer,
            headersTimeoutMs: headersTimeout,
            requestTimeoutMs: requestTimeout,
            idleTimeoutMs: idleTimeout,
          })),
        sessions: z
          .strictObject({
            idleTimeout: duration('30m'),
            /**
             * MCP 2026-07-28 clients (and 2025-era clients of `upstreamSessions: pooled` connections) are served through
             * pooled upstream sessions: one unused this long is closed.
             */
            modernIdleTimeout: duration('5m').refine((ms) => ms >= 100, 'expected at least 100ms'),
            /** Pooled sessions per (connection, principal, client capabilities) at most; past it requests (sessions) share one. */
            modernPoolSize: z.number().int().min(1).max(64).default(4),
            /** Cacheable results to modern clients carry at most this ttlMs, so a policy change or quarantine is seen in time. */
            maxResultTtl: duration('60s'),
            /** How long an MRTR round (input_required) waits for the client's retry before the request is cancelled upstream. */
            inputTimeout: duration('5m').refine((ms) => ms >= 100, 'expected at least 100ms'),
            /**
             * A session whose client has no stream open, nothing in flight and has sent nothing for this long is taken as
             * abandoned (clients leave without DELETE) and closed, stopping its server; `off`: only idleTimeout applies.
             */
            abandonedAfter: durationOrOff('2m').refine((ms) => ms === undefined || ms >= 1000, 'expected at least 1s, or off'),
            /**
             * The session views (CLI, API, console) group a modern session's exchanges by trace id, else by this idle
             * gap: an untraced request this long after the previous one ended starts a new group. A view only.
             */
            viewIdleGap: duration('5m').refine((ms) => ms >= 1, 'expected at least 1ms'),
          })
          .prefault({})
          .transform((s) => ({
            idleTimeoutMs: s.idleTimeout,
            modernIdleTimeoutMs: s.modernIdleTimeout,
            modernPoolSize: s.modernPoolSize,
            maxResultTtlMs: s.maxResultTtl,
            inputTimeoutMs: s.inputTimeout,
            /** undefined: off. */
            abandonedAfterMs: s.abandonedAfter,
            viewIdleGapMs: s.viewIdleGap,
          })),
        agents: z
          .strictObject({
            /** How often the gateway pings each agent's tunnel; a tunnel that misses one is closed. */
            heartbeat: duration('15s'),
          })
          .prefault({})
          .transform((a) => ({ heartbeatMs: a.heartbeat })),
        roles: z
          .strictObject({
            /** Groups whose members administer the gateway: approve changed tool definitions (portcullis pins approve). */
            admins: z.array(z.string().min(1)).default([]),
            /** Groups whose members see every session in the console and the API (others see their own). */
            auditors: z.array(z.string().min(1)).default([]),
          })
          .prefault({}),
        pins: pinsSchema(),
        console: z
          .strictObject({
            /** Serve the web console at / (its API and sign-in stay available to the CLI either way). */
            enabled: z.boolean().default(true),
            /** How long a console sign-in lasts before the person signs in again. */
            sessionLifetime: duration('8h').refine((ms) => ms >= 60_000 && ms <= 30 * 86_400_000, 'expected between 1m and 30d'),
          })
          .prefault({})
          .transform((c) => ({ enabled: c.enabled, sessionLifetimeMs: c.sessionLifetime })),
        rules: rulesSchema(),
        reviews: reviewsSchema(),
        notifications: notificationsSchema(sources),
        shutdown: z
          .strictObject({
            /**
             * On SIGTERM, how long /readyz answers 503 while the gateway still serves everything (new sessions too),
             * so a load balancer moves traffic away before the port closes; 0: close at once. A second signal ends it.
             */
            drainDelay: duration('5s').refine((ms) => ms <= 600_000, 'expected at most 10m (0 to close the port at once)'),
            /** Then how long requests in flight may take to finish before sessions are ended. */
            drainTimeout: duration('10s'),
          })
          .prefault({})
          .transform((s) => ({ drainDelayMs: s.drainDelay, drainTimeoutMs: s.drainTimeout })),
        log: z
          .strictObject({
            level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
            /** auto: pretty (for people) when stderr is a terminal, JSON lines otherwise; `--log-format` overrides it. */
            format: z.enum(['auto', 'json', 'pretty']).default('auto'),
          })
          .prefault({}),
        connections: z
          .record(z.string().regex(connectionNamePattern, connectionNameRule), connectionSchema(sources))
          .refine((conns) => Object.keys(conns).length > 0, { message: 'expected at least one connection' }),
        /** Endpoints over several member connections (src/virtual), served at /mcp/<name> like a connection. */
        virtualServers: virtualServersSchema(),
      })
      .check(z.superRefine(checkVirtualServers, { when: () => true }))
      .check(z.superRefine(checkMaskingNames, { when: () => true }))
      .check(z.superRefine(checkWebhookNames, { when: () => true }))
      .check(z.superRefine(checkHeartbeatFits, { when: () => true }))
      // Runs even when other keys are invalid (`when`), so every problem is listed at once; the value may be partly parsed.
      .check(
        z.superRefine(
          (
            c: {
              listen?: { host?: unknown };
              http?: { allowedHosts?: unknown; publicUrl?: unknown };
              identity?: { issuers?: unknown; dev?: { allowNonLoopback?: unknown } };
              recording?: { mode?: unknown };
              audit?: { sinks?: unknown };
              connections?: unknown;
            },
            ctx,
          ) => {
            const conns =
              c.connections !== null && typeof c.connections === 'object' ? Object.values<{ agent?: unknown } | undefined>({ ...c.connections }) : [];
            if (c.recording?.mode === 'off' && conns.some((x) => x?.agent !== undefined)) {
              ctx.addIssue({
                code: 'custom',
                path: ['recording', 'mode'],
                message: 'connections served by an agent need the store (agent tokens live there): recording.mode cannot be off',
              });
            }
            if (c.recording?.mode === 'off' && Array.isArray(c.audit?.sinks) && c.audit.sinks.length > 0) {
              ctx.addIssue({
                code: 'custom',
                path: ['audit', 'sinks'],
                message: 'audit streams ship what is recorded, from the store: recording.mode cannot be off (remove audit.sinks or turn recording on)',
              });
            }
            const host = c.listen?.host;
            if (typeof host !== 'string') return;
            const loopback = isLoopbackHost(host);
            if (!loopback && c.http?.allowedHosts === undefined) {
              ctx.addIssue({
                code: 'custom',
                path: ['http', 'allowedHosts'],
                message: `required when listening on ${host}: list the host names clients use to reach the gateway (DNS-rebinding defence)`,
              });
            }
            const devIdentity = Array.isArray(c.identity?.issuers) && c.identity.issuers.length === 0;
            if (!loopback && !devIdentity && c.http?.publicUrl === undefined) {
              ctx.addIssue({
                code: 'custom',
                path: ['http', 'publicUrl'],
                message: `required when listening on ${host} with identity issuers: the URL clients use (e.g. https://portcullis.example.com) is what their tokens must be meant for`,
              });
            }
            if (!loopback && devIdentity && c.identity?.dev?.allowNonLoopback !== true) {
              ctx.addIssue({
                code: 'custom',
                path: ['identity', 'issuers'],
                message: `the embedded dev identity (on when no issuer is configured) is refused on ${host}: configure an OIDC issuer here, or set identity.dev.allowNonLoopback: true to accept dev tokens from the network`,
              });
            }
          },
          { when: () => true },
        ),
      )
  );
}

// The slices their features own, re-exported for the code that reads a whole connection or gateway config.
export type { AuditConfig, AuditSinkConfig } from '../audit/config.js';
export type { AccessConfig, IdentityConfig, IssuerConfig } from '../identity/config.js';
export type { ConnectionLimits, LimitsConfig, RateConfig } from '../limits/config.js';
export type { MaskingConfig, MaskingRule } from '../masking/config.js';
export type { GuardrailDefaults, ReviewPolicy, RuleConfig } from '../policy/config.js';
export type { RecordingConfig } from '../recording/config.js';
export type { ReviewEvent, WebhookConfig } from '../reviews/config.js';
export type { UpstreamConfig } from '../upstream/config.js';
export type { VirtualServerConfig } from '../virtual/config.js';

type Parsed = z.output<ReturnType<typeof fileSchema>>;

/** A connection as the gateway serves it: its own keys, with the gateway-wide masking and limits it does not override. */
function toConnection(name: string, c: Parsed['connections'][string], p: Parsed) {
  return {
    name,
    ...(c.description ? { description: c.description } : {}),
    upstream: upstreamOf(c) as UpstreamConfig,
    access: c.access,
    masking: connectionMasking(p.masking, c.masking),
    guardrails: c.guardrails,
    tools: c.tools,
    clientCapabilities: c.clientCapabilities,
    limits: connectionLimits(c.limits, p.limits.connection),
    upstreamSessions: c.upstreamSessions,
  };
}

export type ConnectionConfig = ReturnType<typeof toConnection>;

/**
 * A virtual server as the connection that serves it (so the edges, access, the modern pool, recording, the console and
 * `connect` serve it like any): its own access, no guardrails nor pins (each member's own apply to every call through
 * it), the gateway-wide masking and limits.
 */
function toVirtualConnection(name: string, s: VirtualServerConfig, p: Parsed): ConnectionConfig {
  return {
    name,
    ...(s.description ? { description: s.description } : {}),
    upstream: virtualUpstreamOf(s),
    access: s.access,
    masking: connectionMasking(p.masking, undefined),
    guardrails: guardrailsSchema().parse(undefined),
    tools: { pin: false },
    clientCapabilities: clientCapabilitiesSchema().parse(undefined),
    limits: connectionLimits(connectionLimitsSchema().parse(undefined), p.limits.connection),
    upstreamSessions: 'per-client',
  };
}

/** The parsed file as the gateway runs it: the store defaults into dataDir, connections by name. */
function toGatewayConfig(p: Parsed) {
  const defaultStore = `sqlite:${join(p.dataDir, 'portcullis.db')}`;
  // Typed as every connection's masking is, so code may read either (the gateway-wide one also has the rules).
  const masking: MaskingConfig = p.masking;
  return {
    ...p,
    masking,
    /** The store URL (it may hold a password from a reference: reveal only to connect). */
    store: p.store ?? new SecretString(defaultStore, defaultStore, false),
    connections: new Map([
      ...Object.entries(p.connections).map(([name, c]): [string, ConnectionConfig] => [name, toConnection(name, c, p)]),
      ...Object.entries(p.virtualServers).map(([name, s]): [string, ConnectionConfig] => [name, toVirtualConnection(name, s, p)]),
    ]),
  };
}

/** The config file's schema: parsing it gives the GatewayConfig the gateway runs. */
export function configSchema(sources: SecretSources) {
  return fileSchema(sources).transform(toGatewayConfig);
}

export type GatewayConfig = z.output<ReturnType<typeof configSchema>>;
