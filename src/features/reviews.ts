import { ReviewsApi } from '../api/reviews.js';
import { ReviewNotifier } from '../reviews/notifier.js';
import { Reviews } from '../reviews/reviews.js';
import type { Feature, FeatureModule } from './feature.js';

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
    const reviews =
      ctx.store && ctx.recorder
        ? new Reviews({
            store: ctx.store,
            instanceId: ctx.recorder.instanceId,
            log: ctx.log.child({ part: 'reviews' }),
            ...(ctx.timings.reviewPollMs ? { pollMs: ctx.timings.reviewPollMs } : {}),
            onCreated: (review) => {
              notifier.notify('review.created', review);
              ctx.live.reviewsChanged();
            },
            onDecided: (review) => {
              notifier.notify('review.decided', review);
              ctx.live.reviewsChanged();
            },
          })
        : undefined;
    return {
      reviews,
      ...(reviews ? { routes: new ReviewsApi(reviews).routes() } : {}),
      start: async () => reviews?.start(),
      // Held calls fail now rather than at the end of the drain: their reviews say the gateway shut down.
      stop: async () => {
        await reviews?.stop();
        await notifier.stop();
      },
    };
  },
};
