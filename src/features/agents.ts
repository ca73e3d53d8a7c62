import { AgentHub } from '../agent/hub.js';
import { TunnelLocations } from '../agent/locations.js';
import { TunnelRelay } from '../agent/relay.js';
import { TunnelRouter } from '../agent/tunnel-router.js';
import { AgentsApi } from '../api/agents.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Limits } from '../limits/limits.js';
import type { SessionRegistryOptions } from '../session/registry.js';
import { createUpstream, type SharedUpstreams, type StdioSparePools, type UpstreamAgents } from '../upstream/index.js';
import { type AgentTunnels, TunnelUpstream } from '../upstream/tunnel.js';
import type { Feature, FeatureModule } from './feature.js';

export interface AgentsFeature extends Feature {
  readonly hub: AgentHub;
  /** How sessions reach the agents: their tunnels here, else relayed by the replica holding one. */
  readonly router: TunnelRouter;
}

/**
 * Agent tunnels: the hub the agents dial (/agent), the relay other replicas use for the tunnels held here, /api/agents;
 * on only when a connection is served by an agent. With replicas that reach each other (a shared store and
 * cluster.secret), where each agent's tunnels end is recorded in the store, and a session for an agent whose tunnel
 * ends elsewhere is relayed by that replica.
 */
export const agentsModule: FeatureModule<AgentsFeature> = {
  name: 'agents',
  api: { path: '/api/agents', caller: 'machineOrPerson', readsBody: false, whenOff: 'no connection is served by an agent' },
  create(ctx) {
    const names = [...new Set([...ctx.config.connections.values()].flatMap((c) => (c.upstream.kind === 'agent' ? [c.upstream.agent] : [])))];
    if (!ctx.store || names.length === 0) return undefined;
    const { replicas, cluster } = ctx;
    const log = ctx.log.child({ part: 'agents' });
    const locations =
      cluster !== undefined && replicas.reachesPeers
        ? new TunnelLocations({ store: ctx.store, self: replicas.instance, isAlive: (id) => cluster.membership.isAlive(id), log })
        : undefined;
    const hub = new AgentHub({
      store: ctx.store,
      log,
      expected: names,
      heartbeatMs: ctx.config.agents.heartbeatMs,
      maxMessageBytes: ctx.config.limits.maxMessageBytes,
      instanceId: replicas.instance,
      ...(locations === undefined ? {} : { holding: locations }),
    });
    const relay = new TunnelRelay(hub, replicas.hopAuth, log, ctx.config.limits.maxMessageBytes, ctx.config.agents.heartbeatMs);
    const remote =
      locations === undefined || replicas.hopAuth === undefined
        ? undefined
        : {
            locations,
            addressOf: (id: string) => replicas.peerAddress(id),
            auth: replicas.hopAuth,
            self: replicas.instance,
            maxMessageBytes: ctx.config.limits.maxMessageBytes,
            heartbeatMs: ctx.config.agents.heartbeatMs,
          };
    const router = new TunnelRouter(hub, remote, log);
    if (locations !== undefined) cluster?.membership.onGone((ids) => locations.forget(ids));
    // A revocation or rotation (the CLI, on any machine sharing the store) ends the tunnel held here at once.
    cluster?.bus.on('agent', (c) => void hub.recheck(c.id));
    return {
      hub,
      router,
      routes: new AgentsApi(hub, ctx.config.roles.admins, locations && ((agent) => locations.holders(agent))).routes(),
      http: { agents: { hub, relay } },
      start: async () => locations?.start(),
      stop: async () => {
        hub.close();
        relay.close();
        await locations?.leave();
      },
    };
  },
  // Without agents the list is empty (for those who may see it), rather than an error.
  offRoutes: (ctx) => new AgentsApi(undefined, ctx.config.roles.admins).routes(),
};

/**
 * How a session reaches its server: stdio (a warm spare when one waits), HTTP, or (for an agent's connection) a
 * tunnel to its agent.
 */
export function upstreams(
  config: GatewayConfig,
  agents: UpstreamAgents,
  tunnels: AgentTunnels | undefined,
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
    return createUpstream(c, config.limits.maxMessageBytes, agents, log, (agent) => new TunnelUpstream(tunnels!, agent, c.name, sessionId), spares.for(c.name));
  };
}
