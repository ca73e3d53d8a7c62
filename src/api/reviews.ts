import type { IncomingMessage, ServerResponse } from 'node:http';
import { replyApiJson as json } from '../edge/http-reply.js';
import type { Identity } from '../core/identity.js';
import type { Reviews } from '../reviews/reviews.js';
import type { ReviewStatus } from '../store/types.js';
import { reviewView } from '../reviews/view.js';
import { optionalString, readJson } from './json-body.js';
import { HttpError } from '../core/http-error.js';
import { untrustedPath } from '../core/untrusted-text.js';

/**
 * /api/reviews: calls held by guardrail rules, for the CLI and the console. The caller is the identity of their
 * bearer token; they see the reviews they may decide and those of their own calls.
 *   GET  /api/reviews                ?status → { reviews }
 *   GET  /api/reviews/:id            → { review }
 *   POST /api/reviews/:id/approve    { note? } → { review }
 *   POST /api/reviews/:id/reject     { reason } → { review }
 */

const statuses: ReviewStatus[] = ['pending', 'approved', 'released', 'rejected', 'expired', 'interrupted', 'cancelled'];

export class ReviewsApi {
  constructor(private readonly reviews: Reviews) {}

  /** Answers one request; an HttpError from the service becomes the reply's status and message (see the HTTP server). */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, identity: Identity): Promise<void> {
    const parts = url.pathname.split('/').slice(3).map(decodeURIComponent);
    if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) {
      if (req.method !== 'GET') throw new HttpError(405, 'use GET');
      const status = url.searchParams.get('status');
      if (status !== null && !statuses.includes(status as ReviewStatus)) throw new HttpError(400, `status expects one of ${statuses.join(', ')}`);
      const rows = await this.reviews.list(identity, (status ?? undefined) as ReviewStatus | undefined);
      return json(res, 200, { reviews: rows.map(reviewView) });
    }
    const [id, action] = parts as [string, string | undefined];
    if (parts.length === 1) {
      if (req.method !== 'GET') throw new HttpError(405, 'use GET');
      return json(res, 200, { review: reviewView(await this.reviews.get(id, identity)) });
    }
    if (parts.length === 2 && (action === 'approve' || action === 'reject')) {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      const body = await readJson(req);
      const review =
        action === 'approve' ? await this.reviews.approve(id, identity, optionalString(body, 'note')) : await this.reviews.reject(id, identity, optionalString(body, 'reason') ?? '');
      return json(res, 200, { review: reviewView(review) });
    }
    throw new HttpError(404, `no API at ${untrustedPath(url.pathname)}`);
  }
}
