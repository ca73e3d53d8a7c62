import type { Logger } from 'pino';
import type { CredentialScrubber } from '../scrub/credential-scrubber.js';
import type { UpstreamConfig } from './config.js';
import { type EraVerdict, EraUpstream } from './eras.js';
import { SseUpstream } from './http.js';
import type { UpstreamAgents } from './http-agents.js';
import { upstreamScrubber } from './injected-credentials.js';
import { type ModernConnection, modernVersion } from './modern-connection.js';
import type { HeaderParam } from './modern-headers.js';
import { ModernHttpTransport } from './modern-http.js';
import { ModernStdioPool, probeStdio, type StdioProbe } from './modern-stdio.js';
import { StreamableHttpUpstream } from './streamable-http.js';
import { type SpareSource, StdioUpstream } from './stdio.js';
import type { Upstream } from './upstream.js';

export type { Upstream } from './upstream.js';
export { UpstreamError } from './upstream.js';
export { UpstreamAgents } from './http-agents.js';
export { EraUpstream } from './eras.js';
export { StdioSparePools } from './stdio-spares.js';
export { SharedUpstreams } from './shared.js';

/**
 * Builds a fresh, unstarted upstream link for one client session on a connection. A connection served by an agent
 * is reached through `viaAgent` (the gateway's tunnels); the agent itself has none. A stdio or HTTP connection whose
 * `protocol` is not 2025-11-25 learns its server's era first (`server/discover`, once per connection): a 2026-07-28
 * server is reached per request, behind an emulated legacy session (ModernUpstream).
 * A 2025-era stdio server's session takes its process from `spares` when one waits there.
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
    case 'stdio': {
      const legacy = () => new StdioUpstream(u, maxMessageBytes, log, scrubber, spares);
      if (u.protocol === '2025-11-25') return legacy();
      const verdictOf = (found: StdioProbe): EraVerdict => {
        if ('legacy' in found) {
          const { later, ...settled } = found;
          if (later === undefined) return settled;
          log.warn(
            { connection: connection.name, probeTimeoutMs: u.probeTimeoutMs },
            'the server did not answer server/discover in time: served as a 2025-era server meanwhile (set protocol, or a longer probeTimeout, on the connection)',
          );
          return { ...settled, later: later.then(verdictOf) };
        }
        const pool = new ModernStdioPool(u, u.processes, maxMessageBytes, log.child({ pool: connection.name }), scrubber);
        pool.adopt(found.proc);
        const verdict: EraVerdict = { modern: { version: modernVersion, discover: found.discover, transport: pool, toolHeaders: new Map() } };
        // A process the pool starts later is the server as it is now: one that is no longer modern retires the verdict.
        pool.onLegacy = (why) => {
          log.info({ connection: connection.name, why }, "the server's era is asked again: a process it started is not a 2026-07-28 server");
          agents.eras.forget(connection.name, verdict, why, true);
        };
        return verdict;
      };
      const probe = async (): Promise<EraVerdict> => verdictOf(await probeStdio(u, maxMessageBytes, log, scrubber));
      // A legacy verdict contradicted by a later process, or a modern one whose server refused a 2026-07-28 request (a
      // process that died is no verdict: the pool starts another, and asks it server/discover first).
      const forget = (v: EraVerdict, why: string, retire: boolean) => {
        if ('modern' in v && !retire) return;
        log.info({ connection: connection.name, why }, "the server's era is asked again: it contradicted the verdict");
        agents.eras.forget(connection.name, v, why, retire);
      };
      return new EraUpstream(connection.name, () => agents.eras.verdict(connection.name, probe), legacy, u.protocol === modernVersion, forget);
    }
    case 'http': {
      const agent = agents.for(connection.name, u.url.reveal().startsWith('https:'));
      const legacy = () => new StreamableHttpUpstream(u, agent, maxMessageBytes, scrubber);
      if (u.protocol === '2025-11-25') return legacy();
      const probe = async (): Promise<EraVerdict> => {
        const toolHeaders = new Map<string, readonly HeaderParam[]>();
        const transport = modernHttp(u, agent, maxMessageBytes, scrubber, toolHeaders);
        const found = await transport.discover();
        if ('legacy' in found) return found;
        const modern: ModernConnection = { version: modernVersion, discover: found, transport, toolHeaders };
        return { modern };
      };
      const forget = (v: EraVerdict, why: string, retire: boolean) => {
        log.info({ connection: connection.name, why }, "the server's era is asked again: it contradicted the verdict");
        agents.eras.forget(connection.name, v, why, retire);
      };
      return new EraUpstream(connection.name, () => agents.eras.verdict(connection.name, probe), legacy, u.protocol === modernVersion, forget);
    }
    case 'sse':
      return new SseUpstream(u, scrubber);
    case 'virtual':
      // Served by the gateway's own sessions of its members (src/virtual), which the composition root builds.
      throw new Error(`connection '${connection.name}' is a virtual server: its upstream is built by the gateway, not here`);
  }
}

function modernHttp(
  u: Extract<UpstreamConfig, { kind: 'http' }>,
  agent: ReturnType<UpstreamAgents['for']>,
  maxMessageBytes: number,
  scrubber: CredentialScrubber,
  toolHeaders: Map<string, readonly HeaderParam[]>,
): ModernHttpTransport {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(u.headers)) headers[k] = v.reveal();
  return new ModernHttpTransport(new URL(u.url.reveal()), headers, agent, maxMessageBytes, scrubber, (tool) => toolHeaders.get(tool));
}
