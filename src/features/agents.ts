import { AgentHub } from '../agent/hub.js';
import { AgentsApi } from '../api/agents.js';
import type { Feature, FeatureModule } from './feature.js';

export interface AgentsFeature extends Feature {
  readonly hub: AgentHub;
}

/** Agent tunnels: the hub the agents dial (/agent), /api/agents; on only when a connection is served by an agent. */
export const agentsModule: FeatureModule<AgentsFeature> = {
  name: 'agents',
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
    return { hub, http: { agents: { hub, api: new AgentsApi(hub, ctx.config.roles.admins) } }, stop: () => hub.close() };
  },
};
