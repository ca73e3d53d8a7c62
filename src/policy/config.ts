import { z } from 'zod';
import { parseDuration } from '../core/duration.js';
import { compileCondition, type Condition, ConditionError } from './cel.js';

/*
 * The guardrail slice of the config (`rules`, and a connection's `guardrails`): the policy owns its settings' shape,
 * so it needs nothing of the config loader.
 */

const groupNames = z.array(z.string().min(1)).min(1, 'expected at least one group');

/** How a review waits: who approves, how many must, and for how long before it is rejected. */
const reviewFields = {
  /** Groups whose members may approve or reject (never the caller themselves). */
  approvers: groupNames.optional(),
  /** Distinct approvals needed. */
  approvals: z.number().int().min(1).max(10).default(1),
  /** Unanswered for this long, the call is rejected; default: reviews.timeout. */
  timeout: z.union([z.string(), z.number()]).optional(),
};

/** A review needs approvers; a message belongs to deny. */
function checkAction(r: { action: string; approvers?: unknown; message?: unknown; notify?: unknown }, ctx: z.RefinementCtx): void {
  if (r.action === 'review' && r.approvers === undefined)
    ctx.addIssue({ code: 'custom', path: ['approvers'], message: 'a review needs approvers: the groups whose members may approve the call' });
  if (r.action !== 'review' && r.approvers !== undefined)
    ctx.addIssue({ code: 'custom', path: ['approvers'], message: `approvers belong to action: review, not ${r.action}` });
  if (r.action !== 'review' && r.notify !== undefined)
    ctx.addIssue({ code: 'custom', path: ['notify'], message: `notify belongs to action: review, not ${r.action}` });
}

/** The longest a call may be held (a timer beyond 24.8 days would overflow). */
export const maxReviewMs = 7 * 24 * 3_600_000;

/** A review timeout as given (`timeout`), in ms as `timeoutMs`; none when not given (reviews.timeout applies). */
function reviewTimeout(timeout: string | number | undefined, ctx: z.RefinementCtx): { timeoutMs?: number } {
  if (timeout === undefined) return {};
  const ms = parseDuration(timeout);
  if (ms === undefined || ms < 1000 || ms > maxReviewMs) {
    ctx.addIssue({ code: 'custom', path: ['timeout'], message: `expected a duration from 1s to 7d such as 15m or 1h, found ${JSON.stringify(timeout)}` });
    return z.NEVER;
  }
  return { timeoutMs: ms };
}

/** Webhook names, checked against notifications.webhooks once the whole config is read (checkWebhookNames). */
export const webhookNames = z.array(z.string().min(1));

/** One guardrail rule: a CEL condition over the request, compiled now so a typo stops the gateway at start. */
export function ruleSchema() {
  return z
    .strictObject({
      name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a rule name is 1-64 letters, digits, ".", "_" or "-"'),
      /** CEL over identity, connection, method, tool, arguments, resource, prompt, params (docs/guardrails.md). */
      when: z.string().min(1, 'expected a CEL condition, e.g. tool.name.startsWith("delete_")'),
      action: z.enum(['allow', 'deny', 'review']),
      /** deny: what the client is told. */
      message: z.string().min(1).max(1000).optional(),
      ...reviewFields,
      /** review: the webhooks told of its reviews, instead of reviews.notify. */
      notify: webhookNames.optional(),
    })
    .superRefine(checkAction)
    .transform((r, ctx) => {
      let condition: Condition;
      try {
        condition = compileCondition(r.when);
      } catch (err) {
        if (!(err instanceof ConditionError)) throw err;
        ctx.addIssue({ code: 'custom', path: ['when'], message: `rule ${JSON.stringify(r.name)} does not compile: ${err.message}` });
        return z.NEVER;
      }
      const { timeout, ...rest } = r;
      return { ...rest, condition, ...reviewTimeout(timeout, ctx) };
    });
}

/** The guardrails, evaluated in order on every request to a server; the first whose condition holds decides. */
export function rulesSchema() {
  return z
    .array(ruleSchema())
    .default([])
    .superRefine((rules, ctx) => {
      const seen = new Set<string>();
      rules.forEach((r, i) => {
        if (seen.has(r.name))
          ctx.addIssue({
            code: 'custom',
            path: [i, 'name'],
            message: `two rules are named ${JSON.stringify(r.name)}; names appear in recordings and must be unique`,
          });
        seen.add(r.name);
      });
    });
}

/** A connection's guardrail defaults: what happens to a call no rule decides. */
export function guardrailsSchema() {
  return z
    .strictObject({
      /** For tools/call, prompts/get, resources/read and subscribe, completion/complete that no rule matched. */
      default: z.enum(['allow', 'deny', 'review']).default('allow'),
      message: z.string().min(1).max(1000).optional(),
      ...reviewFields,
    })
    .superRefine((g, ctx) => checkAction({ ...g, action: g.default }, ctx))
    .transform(({ timeout, ...rest }, ctx) => ({ ...rest, ...reviewTimeout(timeout, ctx) }))
    .prefault({});
}

/** A compiled guardrail rule. */
export type RuleConfig = z.output<ReturnType<typeof ruleSchema>>;

/** What a connection does with a call no rule decides. */
export type GuardrailDefaults = z.output<ReturnType<typeof guardrailsSchema>>;

/** How a review waits: approver groups, distinct approvals needed, and a timeout (default: reviews.timeout). */
export type ReviewPolicy = Pick<GuardrailDefaults, 'approvers' | 'approvals' | 'timeoutMs'>;
