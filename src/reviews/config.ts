import { z } from 'zod';
import { duration, httpUrl, referenceOnly } from '../core/config-fields.js';
import type { SecretSources } from '../core/secrets.js';
import type { MaskingConfig } from '../masking/config.js';
import { maxReviewMs, type RuleConfig, webhookNames } from '../policy/config.js';

/** The reviews slice of the config (`reviews`, and the webhooks told of them, `notifications`). */

export function reviewsSchema() {
  return z
    .strictObject({
      /** How long a held call waits for approvers before it is rejected, unless its rule says otherwise. */
      timeout: duration('15m').refine((ms) => ms >= 1000 && ms <= maxReviewMs, 'expected a duration from 1s to 7d'),
      /** How often a held call whose client asked for progress is told it is still waiting. */
      progressInterval: duration('10s').refine((ms) => ms >= 1000 && ms <= 600_000, 'expected a duration from 1s to 10m'),
      /** The webhooks told of reviews whose rule has no `notify` of its own. */
      notify: webhookNames.default([]),
    })
    .prefault({})
    .transform(({ timeout, progressInterval, notify }) => ({ timeoutMs: timeout, progressIntervalMs: progressInterval, notify }));
}

export const reviewEvents = ['review.created', 'review.decided'] as const;
export type ReviewEvent = (typeof reviewEvents)[number];

/** Webhooks told of reviews: generic JSON or Slack's payload, signed when they have a secret. */
function webhookSchema(sources: SecretSources) {
  return z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a webhook name is 1-64 letters, digits, ".", "_" or "-"'),
    /** May hold references (a Slack webhook URL is itself a credential): reveal only to send. */
    url: httpUrl(sources),
    format: z.enum(['json', 'slack']).default('json'),
    /** The HMAC-SHA256 key that signs each delivery (x-portcullis-signature). */
    secret: referenceOnly(sources, 'a webhook secret').optional(),
    events: z
      .array(z.enum(reviewEvents))
      .min(1)
      .default([...reviewEvents]),
  });
}

/** A webhook told of reviews (docs/guardrails.md, Notifications). */
export type WebhookConfig = z.output<ReturnType<typeof webhookSchema>>;

export function notificationsSchema(sources: SecretSources) {
  return z
    .strictObject({
      webhooks: z
        .array(webhookSchema(sources))
        .default([])
        .superRefine((webhooks, ctx) => {
          const seen = new Set<string>();
          webhooks.forEach((w, i) => {
            if (seen.has(w.name))
              ctx.addIssue({
                code: 'custom',
                path: [i, 'name'],
                message: `two webhooks are named ${JSON.stringify(w.name)}; rules name them and they must be unique`,
              });
            seen.add(w.name);
          });
        }),
    })
    .prefault({});
}

type Named = { name?: unknown } | undefined;

/** Every webhook `reviews.notify` or a rule's `notify` names must be in notifications.webhooks (on a config that may be partly parsed). */
export function checkWebhookNames(c: { notifications?: { webhooks?: unknown }; reviews?: { notify?: unknown }; rules?: unknown }, ctx: z.RefinementCtx): void {
  const webhooks = c.notifications?.webhooks;
  const known = new Set(Array.isArray(webhooks) ? webhooks.map((w: Named) => w?.name).filter((n): n is string => typeof n === 'string') : []);
  const expected = known.size === 0 ? 'notifications.webhooks configures none' : `notifications.webhooks has ${[...known].join(', ')}`;
  const check = (names: unknown, at: Array<string | number>) => {
    if (!Array.isArray(names)) return;
    names.forEach((name, i) => {
      if (typeof name === 'string' && !known.has(name))
        ctx.addIssue({ code: 'custom', path: [...at, i], message: `there is no webhook named ${JSON.stringify(name)}; ${expected}` });
    });
  };
  check(c.reviews?.notify, ['reviews', 'notify']);
  if (Array.isArray(c.rules)) c.rules.forEach((r: { notify?: unknown } | undefined, i) => check(r?.notify, ['rules', i, 'notify']));
}

/** What the review notifier reads of the gateway's config (GatewayConfig satisfies it). */
export interface NotifierConfig {
  notifications: { webhooks: WebhookConfig[] };
  rules: RuleConfig[];
  reviews: { notify: string[] };
  masking: MaskingConfig;
  connections: ReadonlyMap<string, { masking: MaskingConfig }>;
}
