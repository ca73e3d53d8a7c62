import type { Hono } from 'hono';
import { type ControlEnv, replyJsonApi as json, requestUrl, strictParams, apiRouter } from '../http/kit/route.js';
import type { Reviews } from '../reviews/reviews.js';
import type { ReviewStatus } from '../store/review-types.js';
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

  /** The routes under /api/reviews, for a caller the person authentication has named (`identity`). */
  routes(): Hono<ControlEnv> {
    const r = apiRouter();
    r.all('/', async (c) => {
      if (c.req.method !== 'GET') throw new HttpError(405, 'use GET');
      const status = requestUrl(c).searchParams.get('status');
      if (status !== null && !statuses.includes(status as ReviewStatus)) throw new HttpError(400, `status expects one of ${statuses.join(', ')}`);
      const rows = await this.reviews.list(c.get('identity'), (status ?? undefined) as ReviewStatus | undefined);
      return json(c, 200, { reviews: rows.map(reviewView) });
    });
    r.all('/:id', async (c) => {
      if (c.req.method !== 'GET') throw new HttpError(405, 'use GET');
      return json(c, 200, { review: reviewView(await this.reviews.get(strictParams(c).id!, c.get('identity'))) });
    });
    r.all('/:id/:action{approve|reject}', async (c) => {
      if (c.req.method !== 'POST') throw new HttpError(405, 'use POST');
      const { id, action } = strictParams(c) as { id: string; action: 'approve' | 'reject' };
      const identity = c.get('identity');
      const body = await readJson(c.env.incoming);
      const review =
        action === 'approve'
          ? await this.reviews.approve(id, identity, optionalString(body, 'note'))
          : await this.reviews.reject(id, identity, optionalString(body, 'reason') ?? '');
      return json(c, 200, { review: reviewView(review) });
    });
    r.all('*', (c) => {
      throw new HttpError(404, `no API at ${untrustedPath(requestUrl(c).pathname)}`);
    });
    return r;
  }
}
