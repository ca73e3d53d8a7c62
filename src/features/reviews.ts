import type { Logger } from 'pino';
import { ReviewsApi } from '../api/reviews.js';
import type { Cluster } from '../cluster/cluster.js';
import { GoneReplicaReviews } from '../reviews/gone-replicas.js';
import { ReviewNotifier } from '../reviews/notifier.js';
import { Reviews } from '../reviews/reviews.js';
import type { Feature, FeatureModule } from './feature.js';
import { rereadAtReconcile } from './reconcile.js';

export interface ReviewsFeature extends Feature {
  /** Held calls and their decisions; absent without a store (a review rule then refuses). */
  readonly reviews: Reviews | undefined;
}

/** Reviews of held calls: the store of pending reviews, their webhooks, and /api/reviews. */
export const reviewsModule: FeatureModule<ReviewsFeature> = {
  name: 'reviews',
  api: { path: '/api/reviews', caller: 'person', readsBody: true, whenOff: 'reviews need the recording store (recording.mode is off)' },
  create(ctx) {
    const notifier = ReviewNotifier.fromConfig(ctx.config, () => ctx.config.http.publicUrl ?? ctx.url(), ctx.log.child({ part: 'notifications' }));
    const bus = ctx.cluster?.bus;
    const reviews =
      ctx.store && ctx.recorder
        ? new Reviews({
            store: ctx.store,
            instanceId: ctx.recorder.instanceId,
            log: ctx.log.child({ part: 'reviews' }),
            ...(ctx.recorder.keyring === undefined ? {} : { dataKeyOf: (id: string) => ctx.recorder!.dataKeyOf(id) }),
            onCreated: (review) => {
              notifier.notify('review.created', review);
              ctx.live.reviewsChanged();
              bus?.publish('review', review.id);
            },
            onDecided: (review) => {
              notifier.notify('review.decided', review);
              ctx.live.reviewsChanged();
              // The replica holding the call releases it now, not at its next reconciliation.
              bus?.publish('review', review.id);
            },
          })
        : undefined;
    // Held reviews are read again at each reconciliation: a decision whose notification was lost still takes effect.
    const stopRechecks = reviews && rereadAtReconcile(ctx.cluster, ctx.timings.reviewPollMs, () => void reviews.recheck());
    let stopInterrupts: (() => void) | undefined;
    if (reviews !== undefined && ctx.cluster !== undefined) {
      const log = ctx.log.child({ part: 'reviews' });
      stopInterrupts = interruptReviewsOfGone(reviews, ctx.cluster, ctx.timings.reviewPollMs, log);
      ctx.cluster.bus.on('review', (c) => {
        ctx.live.reviewsChanged();
        reviews.changed(c.id).catch((err: Error) => log.warn({ err: err.message, review: c.id }, 'a review changed elsewhere could not be read'));
      });
      ctx.cluster.bus.onResync(() => void reviews.recheck());
    }
    return {
      reviews,
      ...(reviews ? { routes: new ReviewsApi(reviews).routes() } : {}),
      start: async () => reviews?.start(),
      // Held calls fail now rather than at the end of the drain: their reviews say the gateway shut down.
      stop: async () => {
        stopRechecks?.();
        stopInterrupts?.();
        await reviews?.stop();
        await notifier.stop();
      },
    };
  },
};

/**
 * The held reviews of replicas the membership finds gone are interrupted, and those that could not be (the store
 * failed) are tried again at each of the cluster's reconciliations (or every `everyMs`, a test's pace) until they are.
 * Returns what stops the retries.
 */
export function interruptReviewsOfGone(reviews: Reviews, cluster: Cluster, everyMs: number | undefined, log: Logger): () => void {
  const gone = new GoneReplicaReviews({ interrupt: (ids) => reviews.interruptOf(ids), isAlive: (id) => cluster.membership.isAlive(id), log });
  cluster.membership.onGone((ids) => void gone.gone(ids));
  return rereadAtReconcile(cluster, everyMs, () => void gone.retry());
}
