import { z } from 'zod';
import { duration, httpUrl, secretList, secretMap } from '../core/config-fields.js';
import type { SecretSources } from '../core/secrets.js';

/** The MCP protocol versions an upstream may be told to speak: `auto` probes `server/discover` once per connection. */
export const upstreamProtocols = ['auto', '2026-07-28', '2025-11-25'] as const;
export type UpstreamProtocol = (typeof upstreamProtocols)[number];

function protocolSetting() {
  // The loader names the key, the choices and what was found.
  return z.enum(upstreamProtocols).default('auto');
}

/** How a server is reached: a process over stdio, or a URL (Streamable HTTP or legacy SSE). The gateway's and the agent's config share it. */
export function upstreamSchemas(sources: SecretSources) {
  const stdio = z.strictObject({
    command: z.string().min(1, 'expected the program to run, e.g. node or npx'),
    args: secretList(sources),
    env: secretMap(sources, 'environment variable'),
    /**
     * Variables passed through from the environment of the process that starts the server (the agent's, e.g. an
     * instance role's AWS_* credentials), by name or by a prefix ending in `*`. Nothing else of it is passed.
     */
    passEnv: z
      .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*\*?$/, 'expected an environment variable name, or a prefix ending in * such as AWS_*'))
      .default([]),
    cwd: z.string().min(1).optional(),
    /**
     * Server processes the gateway keeps spawned and waiting (not initialized) for the connection's next sessions, so a
     * new session does not wait for its process to start; 0 turns it off. Each is spawned exactly as a session's
     * process would be, and is given to one session only (src/upstream/stdio-spares.ts). The agent ignores it.
     */
    spares: z.number().int('expected a whole number of processes').min(0).max(16).default(1),
    /** Which era the server speaks (MCP 2026-07-28 or the 2025 initialize sessions); auto asks it once. */
    protocol: protocolSetting(),
    /** A modern (2026-07-28) server's processes, shared by the connection's sessions (requests multiplexed by id). */
    processes: z.number().int().min(1, 'at least one process').max(32, 'at most 32 processes').default(2),
    /**
     * protocol: auto: how long the server gets to answer server/discover. A silent one is served as a 2025-era server
     * meanwhile, and heard for 12 times as long: a late 2026-07-28 answer (a slow start) still makes it modern.
     */
    probeTimeout: duration('5s').refine((ms) => ms >= 100 && ms <= 300_000, 'expected from 100ms to 5m'),
  });
  const http = z.strictObject({
    url: httpUrl(sources),
    headers: secretMap(sources, 'header'),
    /** Which era the server speaks (MCP 2026-07-28 or the 2025 initialize sessions); auto asks it once. */
    protocol: protocolSetting(),
  });
  // Legacy HTTP+SSE (2024-11-05) has one era only.
  const sse = http.omit({ protocol: true });
  return { stdio, http, sse };
}

type Stdio = z.output<ReturnType<typeof upstreamSchemas>['stdio']>;
type Http = z.output<ReturnType<typeof upstreamSchemas>['http']>;
type Sse = z.output<ReturnType<typeof upstreamSchemas>['sse']>;

/** The upstream a parsed connection names (exactly one of its kinds is present, as checked by `oneUpstream`). */
export function upstreamOf(c: { stdio?: Stdio | undefined; http?: Http | undefined; sse?: Sse | undefined; agent?: string | undefined }) {
  if (c.stdio)
    return {
      kind: 'stdio' as const,
      command: c.stdio.command,
      args: c.stdio.args,
      env: c.stdio.env,
      passEnv: c.stdio.passEnv,
      spares: c.stdio.spares,
      protocol: c.stdio.protocol,
      processes: c.stdio.processes,
      probeTimeoutMs: c.stdio.probeTimeout,
      ...(c.stdio.cwd ? { cwd: c.stdio.cwd } : {}),
    };
  if (c.http) return { kind: 'http' as const, url: c.http.url, headers: c.http.headers, protocol: c.http.protocol };
  if (c.sse) return { kind: 'sse' as const, url: c.sse.url, headers: c.sse.headers };
  return { kind: 'agent' as const, agent: c.agent! };
}

/** What a virtual server's member selects of one of its kinds (tools, prompts, resources by URI): globs, absent = all. */
export interface NameSelection {
  readonly include?: readonly string[] | undefined;
  readonly exclude?: readonly string[] | undefined;
}

/** One member connection of a virtual server, resolved (its prefix filled in from the default). */
export interface VirtualMemberConfig {
  readonly connection: string;
  /** Put before each of its tool and prompt names on the virtual server ('' for none). */
  readonly prefix: string;
  readonly tools: NameSelection;
  readonly prompts: NameSelection;
  readonly resources: NameSelection;
  /** The server's name → the exposed name, exactly (no prefix added). */
  readonly rename: Readonly<Record<string, string>>;
  /** Description overrides, by the server's name. */
  readonly descriptions: Readonly<Record<string, string>>;
}

/**
 * A virtual server (src/virtual): one endpoint over several member connections. It has no link of this folder: the
 * composition root serves it with the gateway's own sessions of each member, in-process.
 */
export interface VirtualUpstreamConfig {
  readonly kind: 'virtual';
  readonly members: readonly VirtualMemberConfig[];
  readonly separator: string;
  /** A member that has not opened, or answered a list, within this is left out of that answer. */
  readonly memberTimeoutMs: number;
}

export type UpstreamConfig = ReturnType<typeof upstreamOf> | VirtualUpstreamConfig;

/** Exactly one upstream kind of those allowed. */
export function oneUpstream(kinds: readonly string[]) {
  return (c: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const present = kinds.filter((k) => c[k] !== undefined);
    if (present.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          present.length === 0
            ? `a connection needs exactly one upstream: ${kinds.join(', ')}`
            : `a connection has exactly one upstream, found ${present.join(' and ')}`,
      });
    }
  };
}
