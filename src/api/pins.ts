import type { IncomingMessage, ServerResponse } from 'node:http';
import { replyApiJson as json } from '../edge/http-reply.js';
import type { Identity } from '../pipeline/stage.js';
import type { ToolPins } from '../pins/tool-pins.js';
import type { ToolPinRow } from '../store/types.js';
import { optionalString, readJson } from './json-body.js';
import { ApiError } from './sessions.js';
import { untrustedPath } from '../untrusted-text.js';

/**
 * /api/pins: the pinned tool definitions of the connections the caller may open; admins approve changed ones.
 *   GET  /api/pins                          ?connection → { pins }
 *   GET  /api/pins/:connection/:tool        → { pin }   (with both definitions)
 *   POST /api/pins/:connection/:tool/approve { digest? } → { pin }
 */

function parse(definition: string | null): unknown {
  return definition === null ? null : (JSON.parse(definition) as unknown);
}

export function pinView(p: ToolPinRow, withDefinitions: boolean): Record<string, unknown> {
  const iso = (us: number | null) => (us === null ? null : new Date(us / 1000).toISOString());
  return {
    connection: p.connection,
    tool: p.tool,
    status: p.pendingDigest !== null ? 'quarantined' : p.removedAtUs !== null ? 'removed' : 'pinned',
    digest: p.digest,
    pendingDigest: p.pendingDigest,
    pendingSince: iso(p.pendingSinceUs),
    removedAt: iso(p.removedAtUs),
    pinnedAt: iso(p.pinnedAtUs),
    approvedAt: iso(p.approvedAtUs),
    approvedBy: p.approvedBy,
    ...(withDefinitions ? { definition: parse(p.definition), pendingDefinition: parse(p.pendingDefinition) } : {}),
  };
}

export class PinsApi {
  constructor(
    private readonly pins: ToolPins,
    private readonly mayOpen: (identity: Identity, connection: string) => boolean,
  ) {}

  /** Admins see every connection's pins; others those of the connections they may open. */
  #visible(identity: Identity, connection: string): boolean {
    return this.pins.mayApprove(identity) || this.mayOpen(identity, connection);
  }

  /** Answers one request; a Refusal from the service becomes the reply's status and message (see the HTTP server). */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, identity: Identity): Promise<void> {
    const parts = url.pathname.split('/').slice(3).map(decodeURIComponent);
    if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) {
      if (req.method !== 'GET') throw new ApiError(405, 'use GET');
      const connection = url.searchParams.get('connection') ?? undefined;
      const rows = (await this.pins.list(connection)).filter((p) => this.#visible(identity, p.connection));
      return json(res, 200, { pins: rows.map((p) => pinView(p, false)) });
    }
    const [connection, tool, action] = parts as [string, string | undefined, string | undefined];
    if (tool === undefined || !this.#visible(identity, connection)) throw new ApiError(404, `no API at ${untrustedPath(url.pathname)}`);
    if (parts.length === 2) {
      if (req.method !== 'GET') throw new ApiError(405, 'use GET');
      return json(res, 200, { pin: pinView(await this.pins.get(connection, tool), true) });
    }
    if (parts.length === 3 && action === 'approve') {
      if (req.method !== 'POST') throw new ApiError(405, 'use POST');
      const digest = optionalString(await readJson(req), 'digest');
      return json(res, 200, { pin: pinView(await this.pins.approve(connection, tool, identity, digest), true) });
    }
    throw new ApiError(404, `no API at ${untrustedPath(url.pathname)}`);
  }
}
