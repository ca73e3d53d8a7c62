import { AuthorizeStage } from '../pipeline/authorize.js';
import { ToolFilterStage } from '../pipeline/tool-filter.js';
import type { FeatureModule } from './feature.js';

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
