import { z } from 'zod';
import { resolvedText } from '../core/config-fields.js';
import { parseDuration, parseSize } from '../core/duration.js';
import { parseYaml, readConfigText } from '../config/load.js';
import { oneUpstream, upstreamOf, upstreamSchemas } from '../upstream/config.js';
import { resolveSecretString, type SecretSources, processSecretSources, SecretReferenceError } from '../core/secrets.js';

/**
 * The agent's own config: where the gateway is, who the agent is, and the connections it serves. It holds the
 * upstream credentials (as references resolved in the agent's process); the gateway's config names only the agent.
 *
 *   gateway: https://portcullis.example.com     # or gateways: [url, …], one tunnel to each replica
 *   tunnels: 2                                  # optional: tunnels kept on distinct replicas
 *   name: vpc-prod
 *   token: ${env:PORTCULLIS_AGENT_TOKEN}
 *   connections:
 *     aws: { stdio: { command: aws-mcp, env: { AWS_SECRET_ACCESS_KEY: "${env:AWS_SECRET_ACCESS_KEY}" } } }
 */

function secret(sources: SecretSources, what: string) {
  return z.string().transform((template, ctx) => {
    if (!/\$\{(env|file):/.test(template)) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a reference such as \${env:NAME} or \${file:PATH}, never a literal value` });
      return z.NEVER;
    }
    try {
      return resolveSecretString(template, sources);
    } catch (err) {
      if (!(err instanceof SecretReferenceError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  });
}

function agentSchema(sources: SecretSources) {
  const { stdio, http, sse } = upstreamSchemas(sources);
  return z
    .strictObject({
      /** The gateway's base URL (https in production; a load balancer's for replicas); the tunnel is its /agent endpoint. */
      gateway: gatewayUrl.optional(),
      /** Several replicas' base URLs instead, one tunnel to each (failover: a session goes on through the others). */
      gateways: z.array(gatewayUrl).min(1, 'expected at least one URL, e.g. [https://gw-1.internal, https://gw-2.internal]').max(maxTunnels).optional(),
      /**
       * How many tunnels to keep, each on a distinct replica (the gateway says which one it is): through `gateway`, a
       * load-balanced URL, new tunnels are opened until that many ended on distinct replicas. Default: one per URL.
       */
      tunnels: z.int().min(1).max(maxTunnels).optional(),
      name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'an agent name is lower-case letters, digits, - and _ (as the gateway config names it)'),
      /** The token `portcullis agents create` printed. */
      token: secret(sources, 'the agent token'),
      tls: z
        .strictObject({
          /** PEM of the CA that signed the gateway's certificate, when not a public one (usually ${file:…}). */
          ca: resolvedText(sources).optional(),
          /** The SHA-256 of the gateway certificate's public key (base64, as `openssl … | base64` prints it): any other is refused. */
          pin: z
            .string()
            .regex(/^(sha256\/)?[A-Za-z0-9+/]{43}=$/, 'expected sha256/ followed by a base64 SHA-256 of the public key')
            .optional(),
        })
        .prefault({}),
      heartbeat: z
        .union([z.string(), z.number()])
        .default('15s')
        .transform((v, ctx) => {
          const ms = parseDuration(v);
          if (ms === undefined || ms < 1000) {
            ctx.addIssue({ code: 'custom', message: `expected a duration of at least 1s such as 15s, found ${JSON.stringify(v)}` });
            return z.NEVER;
          }
          return ms;
        }),
      limits: z
        .strictObject({
          maxMessageSize: z
            .union([z.string(), z.number()])
            .default('16MiB')
            .transform((v, ctx) => {
              const bytes = parseSize(v);
              if (bytes === undefined) {
                ctx.addIssue({ code: 'custom', message: `expected a size such as 16MiB, found ${JSON.stringify(v)}` });
                return z.NEVER;
              }
              return bytes;
            }),
        })
        .prefault({}),
      log: z
        .strictObject({
          level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
          /** auto: pretty when stderr is a terminal, JSON lines otherwise (as the gateway's log.format). */
          format: z.enum(['auto', 'json', 'pretty']).default('auto'),
        })
        .prefault({}),
      connections: z
        .record(
          z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a connection name is lower-case letters, digits, - and _, as in the gateway config'),
          z
            .strictObject({ description: z.string().optional(), stdio: stdio.optional(), http: http.optional(), sse: sse.optional() })
            .superRefine(oneUpstream(['stdio', 'http', 'sse'])),
        )
        .refine((c) => Object.keys(c).length > 0, { message: 'expected at least one connection to serve' }),
    })
    .superRefine((c, ctx) => {
      if (c.gateway === undefined && c.gateways === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['gateway'],
          message: "expected the gateway's base URL, e.g. https://portcullis.example.com (or gateways: a list of replicas' URLs)",
        });
      if (c.gateway !== undefined && c.gateways !== undefined)
        ctx.addIssue({ code: 'custom', path: ['gateways'], message: 'set either gateway (one URL) or gateways (a list of URLs), not both' });
      if (c.gateways !== undefined && c.tunnels !== undefined && c.tunnels < c.gateways.length)
        ctx.addIssue({
          code: 'custom',
          path: ['tunnels'],
          message: `expected at least one tunnel per URL of gateways (${c.gateways.length}): raise tunnels or remove it (default: one per URL)`,
        });
    });
}

/** Tunnels one agent may keep. */
const maxTunnels = 16;

const gatewayUrl = z.url({ protocol: /^(https?|wss?)$/, error: "expected the gateway's base URL, e.g. https://portcullis.example.com" });

/** The tunnel endpoint (ws(s)://…/agent) of a gateway's base URL. */
function tunnelUrlOf(base: string): string {
  return `${base.replace(/\/+$/, '').replace(/^http/, 'ws')}/agent`;
}

/** The agent's config as it runs: the tunnel URL from the gateway's, durations in ms, sizes in bytes, connections by name. */
function toAgentConfig(p: z.output<ReturnType<typeof agentSchema>>) {
  const tunnelUrls = (p.gateways ?? [p.gateway!]).map(tunnelUrlOf);
  return {
    /** The gateway's tunnel endpoint, ws(s)://…/agent (the first, with several). */
    tunnelUrl: tunnelUrls[0]!,
    /** Every tunnel endpoint; tunnel i dials the (i mod n)th. */
    tunnelUrls,
    /** How many tunnels to keep on distinct replicas. */
    tunnels: p.tunnels ?? tunnelUrls.length,
    name: p.name,
    token: p.token,
    tls: { ...(p.tls.ca ? { ca: p.tls.ca } : {}), ...(p.tls.pin ? { pin: p.tls.pin.replace(/^sha256\//, '') } : {}) },
    heartbeatMs: p.heartbeat,
    maxMessageBytes: p.limits.maxMessageSize,
    logLevel: p.log.level,
    logFormat: p.log.format,
    connections: new Map(Object.entries(p.connections).map(([name, c]) => [name, { name, upstream: upstreamOf(c) }])),
  };
}

export type AgentConfig = ReturnType<typeof toAgentConfig>;

export function parseAgentConfig(text: string, source: string, sources: SecretSources = processSecretSources): AgentConfig {
  return toAgentConfig(parseYaml(agentSchema(sources), text, source));
}

export function loadAgentConfig(path: string, sources?: SecretSources): AgentConfig {
  return parseAgentConfig(readConfigText(path), path, sources);
}
