import { AuthorizeStage } from '../pipeline/authorize.js';
import { ToolFilterStage } from '../pipeline/tool-filter.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Identity } from '../core/identity.js';
import { ConnectionAccess } from '../identity/access-policy.js';
import type { FeatureModule } from './feature.js';

/** Who may use each connection (access.groups), built once from the config. */
export function connectionAccess(config: GatewayConfig): {
  access: (connection: string) => ConnectionAccess | undefined;
  mayOpen: (identity: Identity, connection: string) => boolean;
} {
  const byName = new Map([...config.connections.values()].map((c) => [c.name, new ConnectionAccess(c.name, c.access)]));
  return { access: (name) => byName.get(name), mayOpen: (identity, name) => byName.get(name)?.open(identity).allowed ?? false };
}

/** Who may use a connection and which of its tools: access to items, then the tool filter. */
export const connectionAccessModule: FeatureModule = {
  name: 'connection access',
  create(ctx) {
    for (const c of ctx.config.connections.values()) {
      if (ctx.access(c.name)?.closedToAll)
        ctx.log.warn(
          { connection: c.name },
          `connection '${c.name}' has no access.groups, so nobody may open it; list groups, or ["*"] for every signed-in user`,
        );
    }
    return {
      stages: (connection) => ({
        authorize: AuthorizeStage.forAccess(ctx.access(connection.name)!),
        'tool-filter': ToolFilterStage.forRules(connection.tools),
      }),
    };
  },
};
