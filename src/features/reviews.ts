import { ReviewsApi } from '../api/reviews.js';
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
    if (reviews !== undefined && ctx.cluster !== undefined) {
      const log = ctx.log.child({ part: 'reviews' });
      ctx.cluster.bus.on('review', (c) => {
        ctx.live.reviewsChanged();
        reviews.changed(c.id).catch((err: Error) => log.warn({ err: err.message, review: c.id }, 'a review changed elsewhere could not be read'));
      });
      ctx.cluster.bus.onResync(() => void reviews.recheck());
      ctx.cluster.membership.onGone((ids) => {
        reviews.interruptOf(ids).catch((err: Error) => log.warn({ err: err.message, instances: ids }, 'reviews of gone replicas could not be ended'));
      });
    }
    return {
      reviews,
      ...(reviews ? { routes: new ReviewsApi(reviews).routes() } : {}),
      start: async () => reviews?.start(),
      // Held calls fail now rather than at the end of the drain: their reviews say the gateway shut down.
      stop: async () => {
        stopRechecks?.();
        await reviews?.stop();
        await notifier.stop();
      },
    };
  },
};
