import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentHub } from '../agent/hub.js';
import type { Identity } from '../core/identity.js';
import { inGroups } from '../identity/roles.js';
import { replyApiJson as json } from '../edge/http-reply.js';
import { HttpError } from '../core/http-error.js';
import { untrustedPath } from '../core/untrusted-text.js';

/**
 * /api/agents: the agents this gateway expects or has tunnels from, and how they are (connected, version,
 * connections served, sessions, last heartbeat), for admins (roles.admins). Never their tokens, nor anything of the
 * credentials they hold. Also for a machine credential (api.token, the local API key): `portcullis agents list` runs
 * where the gateway's config and data directory are, and reads the store itself anyway.
 *   GET /api/agents → { agents }
 */
export class AgentsApi {
  /** Without a hub (no connection is served by an agent), the list is empty. */
  constructor(
    private readonly hub: AgentHub | undefined,
    private readonly admins: readonly string[],
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, caller: Identity | 'machine'): Promise<void> {
    if (caller !== 'machine' && !inGroups(caller, this.admins)) throw new HttpError(403, `only members of ${this.admins.join(', ') || 'roles.admins (none configured)'} see the agents`);
    if (url.pathname !== '/api/agents' && url.pathname !== '/api/agents/') throw new HttpError(404, `no API at ${untrustedPath(url.pathname)}`);
    if (req.method !== 'GET') throw new HttpError(405, 'use GET');
    return json(res, 200, { agents: this.hub?.status() ?? [] });
  }
}
