import { Hono } from 'hono';
import type { AgentHub } from '../agent/hub.js';
import { inGroups } from '../identity/roles.js';
import { type ControlEnv, replyJsonApi as json, requestUrl } from '../http/kit/route.js';
import { HttpError } from '../core/http-error.js';
import { untrustedPath } from '../core/untrusted-text.js';

/**
 * /api/agents: the agents this gateway expects or has tunnels from, and how they are (connected, version,
 * connections served, sessions, last heartbeat), for admins (roles.admins). Never their tokens, nor anything of the
 * credentials they hold. Also for a machine credential (api.token, the local API key): `portcullis agents list` runs
 * where the gateway's config and data directory are, and reads the store itself anyway.
 * With replicas, `connected` is about this replica's own tunnels; `elsewhere` names the other live replicas holding
 * one (sessions here reach the agent through them), so an agent is not reported lost by a replica that relays it.
 *   GET /api/agents → { agents }
 */
export class AgentsApi {
  /** Without a hub (no connection is served by an agent), the list is empty. */
  constructor(
    private readonly hub: AgentHub | undefined,
    private readonly admins: readonly string[],
    /** The other live replicas holding a tunnel of an agent (agent/locations.ts); absent on a single gateway. */
    private readonly elsewhere?: (agent: string) => Promise<string[]>,
  ) {}

  /** The routes under /api/agents, for a machine credential or a person the authentication has named. */
  routes(): Hono<ControlEnv> {
    const r = new Hono<ControlEnv>();
    r.all('*', async (c) => {
      const path = requestUrl(c).pathname;
      if (!c.get('machine') && !inGroups(c.get('identity'), this.admins))
        throw new HttpError(403, `only members of ${this.admins.join(', ') || 'roles.admins (none configured)'} see the agents`);
      if (path !== '/api/agents' && path !== '/api/agents/') throw new HttpError(404, `no API at ${untrustedPath(path)}`);
      if (c.req.method !== 'GET') throw new HttpError(405, 'use GET');
      const agents = this.hub?.status() ?? [];
      const elsewhere = this.elsewhere;
      if (elsewhere === undefined) return json(c, 200, { agents });
      return json(c, 200, { agents: await Promise.all(agents.map(async (a) => ({ ...a, elsewhere: await elsewhere(a.name) }))) });
    });
    return r;
  }
}
