import type { IncomingMessage, ServerResponse } from 'node:http';
import { replyApiJson as json } from '../edge/http-reply.js';
import { parseDuration } from '../core/duration.js';
import type { AccessRequests } from '../identity/access-requests.js';
import type { Identity } from '../core/identity.js';
import type { AccessRequestStatus } from '../store/types.js';
import { optionalString, readJson } from './json-body.js';
import { HttpError } from '../core/http-error.js';
import { untrustedPath } from '../core/untrusted-text.js';

/**
 * /api/access: just-in-time access requests, for the CLI and the console. The caller is the identity of their
 * bearer token; what they see is their own requests and those they may approve.
 *   GET  /api/access                 ?status → { requests }
 *   POST /api/access                 { connection, duration: "1h", reason } → 201 { request }
 *   GET  /api/access/:id             → { request }
 *   POST /api/access/:id/approve     { note? } → { request }   (also /deny, and /revoke for a grant)
 */

const statuses: AccessRequestStatus[] = ['pending', 'approved', 'denied', 'expired', 'revoked'];


export class AccessRequestsApi {
  constructor(private readonly requests: AccessRequests) {}

  /** Answers one request; an HttpError from the service becomes the reply's status and message (see the HTTP server). */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, identity: Identity): Promise<void> {
    const parts = url.pathname.split('/').slice(3).map(decodeURIComponent);
    if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) {
      if (req.method === 'GET') {
        const status = url.searchParams.get('status');
        if (status !== null && !statuses.includes(status as AccessRequestStatus)) throw new HttpError(400, `status expects one of ${statuses.join(', ')}`);
        return json(res, 200, { requests: await this.requests.list(identity, (status ?? undefined) as AccessRequestStatus | undefined) });
      }
      if (req.method === 'POST') {
        const body = await readJson(req);
        const connection = optionalString(body, 'connection');
        if (connection === undefined) throw new HttpError(400, 'connection is required');
        const duration = body.duration;
        const ms = typeof duration === 'string' || typeof duration === 'number' ? parseDuration(duration) : undefined;
        if (ms === undefined) throw new HttpError(400, 'duration is required: a duration such as 30m or 1h');
        const reason = optionalString(body, 'reason') ?? '';
        return json(res, 201, { request: await this.requests.request(identity, connection, ms, reason) });
      }
      throw new HttpError(405, 'use GET or POST');
    }
    const [id, action] = parts as [string, string | undefined];
    if (action === undefined && parts.length === 1) {
      if (req.method !== 'GET') throw new HttpError(405, 'use GET');
      return json(res, 200, { request: await this.requests.get(identity, id) });
    }
    if (parts.length === 2 && (action === 'approve' || action === 'deny' || action === 'revoke')) {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      const note = optionalString(await readJson(req), 'note');
      const request = await this.requests[action](identity, id, note);
      return json(res, 200, { request });
    }
    throw new HttpError(404, `no API at ${untrustedPath(url.pathname)}`);
  }
}
