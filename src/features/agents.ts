import { AgentHub } from '../agent/hub.js';
import { AgentsApi } from '../api/agents.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Limits } from '../limits/limits.js';
import type { SessionRegistryOptions } from '../session/registry.js';
import { createUpstream, type SharedUpstreams, type StdioSparePools, type UpstreamAgents } from '../upstream/index.js';
import { TunnelUpstream } from '../upstream/tunnel.js';
import type { Feature, FeatureModule } from './feature.js';

export interface AgentsFeature extends Feature {
  readonly hub: AgentHub;
}

/** Agent tunnels: the hub the agents dial (/agent), /api/agents; on only when a connection is served by an agent. */
export const agentsModule: FeatureModule<AgentsFeature> = {
  name: 'agents',
  api: { path: '/api/agents', caller: 'machineOrPerson', readsBody: false, whenOff: 'no connection is served by an agent' },
  create(ctx) {
    const names = [...new Set([...ctx.config.connections.values()].flatMap((c) => (c.upstream.kind === 'agent' ? [c.upstream.agent] : [])))];
    if (!ctx.store || names.length === 0) return undefined;
    const hub = new AgentHub({
      store: ctx.store,
      log: ctx.log.child({ part: 'agents' }),
      expected: names,
      heartbeatMs: ctx.config.agents.heartbeatMs,
      maxMessageBytes: ctx.config.limits.maxMessageBytes,
    });
    // A revocation or rotation (the CLI, on any machine sharing the store) ends the tunnel held here at once.
    ctx.cluster?.bus.on('agent', (c) => void hub.recheck(c.id));
    return { hub, routes: new AgentsApi(hub, ctx.config.roles.admins).routes(), http: { agents: { hub } }, stop: () => hub.close() };
  },
  // Without agents the list is empty (for those who may see it), rather than an error.
  offRoutes: (ctx) => new AgentsApi(undefined, ctx.config.roles.admins).routes(),
};

/**
 * How a session reaches its server: stdio (a warm spare when one waits), HTTP, or (for an agent's connection) a
 * tunnel through the hub.
 */
export function upstreams(
  config: GatewayConfig,
  agents: UpstreamAgents,
  hub: AgentHub | undefined,
  spares: StdioSparePools,
  shared: SharedUpstreams,
  limits?: Limits,
): SessionRegistryOptions['createUpstream'] {
  return (c, log, sessionId, identity) => {
    // Pooled: the client session leases a shared upstream session; one is created (without a spare: it lives on,
    // warm, for the sessions after it) only when none can take it. Its stdio process is what the process limits count.
    if (c.upstreamSessions === 'pooled') {
      const admit =
        limits !== undefined && c.upstream.kind === 'stdio'
          ? () => {
              const admitted = limits.admitProcess(c, identity);
              if ('refused' in admitted) throw admitted.refused;
              return admitted.lease;
            }
          : undefined;
      return shared.lease(
        c.name,
        identity,
        () => createUpstream(c, config.limits.maxMessageBytes, agents, log.child({ pooled: true }), undefined, undefined),
        admit,
      );
    }
    return createUpstream(c, config.limits.maxMessageBytes, agents, log, (agent) => new TunnelUpstream(hub!, agent, c.name, sessionId), spares.for(c.name));
  };
}
