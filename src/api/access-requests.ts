import type { Hono } from 'hono';
import { type ControlEnv, replyJsonApi as json, requestUrl, strictParams, apiRouter } from '../http/kit/route.js';
import { parseDuration } from '../core/duration.js';
import type { AccessRequests } from '../identity/access-requests.js';
import type { AccessRequestStatus } from '../store/access-types.js';
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

  /** The routes under /api/access, for a caller the person authentication has named (`identity`). */
  routes(): Hono<ControlEnv> {
    const r = apiRouter();
    r.all('/', async (c) => {
      const identity = c.get('identity');
      if (c.req.method === 'GET') {
        const status = requestUrl(c).searchParams.get('status');
        if (status !== null && !statuses.includes(status as AccessRequestStatus)) throw new HttpError(400, `status expects one of ${statuses.join(', ')}`);
        return json(c, 200, { requests: await this.requests.list(identity, (status ?? undefined) as AccessRequestStatus | undefined) });
      }
      if (c.req.method === 'POST') {
        const body = await readJson(c.env.incoming);
        const connection = optionalString(body, 'connection');
        if (connection === undefined) throw new HttpError(400, 'connection is required');
        const duration = body.duration;
        const ms = typeof duration === 'string' || typeof duration === 'number' ? parseDuration(duration) : undefined;
        if (ms === undefined) throw new HttpError(400, 'duration is required: a duration such as 30m or 1h');
        const reason = optionalString(body, 'reason') ?? '';
        return json(c, 201, { request: await this.requests.request(identity, connection, ms, reason) });
      }
      throw new HttpError(405, 'use GET or POST');
    });
    r.all('/:id', async (c) => {
      if (c.req.method !== 'GET') throw new HttpError(405, 'use GET');
      return json(c, 200, { request: await this.requests.get(c.get('identity'), strictParams(c).id!) });
    });
    r.all('/:id/:action{approve|deny|revoke}', async (c) => {
      if (c.req.method !== 'POST') throw new HttpError(405, 'use POST');
      const { id, action } = strictParams(c) as { id: string; action: 'approve' | 'deny' | 'revoke' };
      const note = optionalString(await readJson(c.env.incoming), 'note');
      return json(c, 200, { request: await this.requests[action](c.get('identity'), id, note) });
    });
    r.all('*', (c) => {
      throw new HttpError(404, `no API at ${untrustedPath(requestUrl(c).pathname)}`);
    });
    return r;
  }
}
