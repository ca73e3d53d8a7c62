import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentHub } from '../agent/hub.js';
import { replyApiJson as json } from '../edge/http-reply.js';
import { ApiError } from './sessions.js';

/**
 * /api/agents: the agents this gateway expects or has tunnels from, and how they are (connected, version,
 * connections served, sessions, last heartbeat). Never their tokens, nor anything of the credentials they hold.
 *   GET /api/agents → { agents }
 */
export class AgentsApi {
  /** Without a hub (no connection is served by an agent), the list is empty. */
  constructor(private readonly hub: AgentHub | undefined) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (url.pathname !== '/api/agents' && url.pathname !== '/api/agents/') throw new ApiError(404, `no API at ${url.pathname.slice(0, 200)}`);
    if (req.method !== 'GET') throw new ApiError(405, 'use GET');
    return json(res, 200, { agents: this.hub?.status() ?? [] });
  }
}
