import { paramsForReview } from '../masking/recording-redactor.js';
import { GuardStage } from '../pipeline/guard.js';
import { RuleSet } from '../policy/rules.js';
import type { FeatureModule } from './feature.js';
import { pinsModule } from './pins.js';
import { reviewsModule } from './reviews.js';

/**
 * Guardrails: the rules (allow, deny, review) of each call. They come after access and pins, so a call the caller may
 * not make, or to a quarantined tool, never waits for a review.
 */
export const guardrailsModule: FeatureModule = {
  name: 'guardrails',
  create(ctx) {
    const rules = new RuleSet(ctx.config.rules);
    const reviews = ctx.feature(reviewsModule)?.reviews;
    const pins = ctx.feature(pinsModule)?.pins;
    if (
      !reviews &&
      (ctx.config.rules.some((r) => r.action === 'review') || [...ctx.config.connections.values()].some((c) => c.guardrails.default === 'review'))
    ) {
      ctx.log.warn('guardrail reviews need the recording store, and recording is off: calls a review rule matches will be refused');
    }
    return {
      stages: (connection) => ({
        guard: GuardStage.when({
          connection: connection.name,
          rules,
          defaults: connection.guardrails,
          reviews,
          reviewTimeoutMs: ctx.config.reviews.timeoutMs,
          paramsForReview: paramsForReview(connection.masking),
          ...(pins && connection.tools.pin
            ? { pinned: { annotations: (tool: string) => pins.annotations(connection.name, tool), load: () => pins.load(connection.name) } }
            : {}),
        }),
      }),
    };
  },
};
