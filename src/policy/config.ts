import type { Condition } from './cel.js';

/*
 * The guardrail slice of the config, as the schema (src/config/schema.ts) hands it over: the policy owns its
 * settings' shape, so it needs nothing of the config loader.
 */

/** How a review waits: approver groups, distinct approvals needed, and a timeout (default: reviews.timeout). */
export interface ReviewPolicy {
  approvers?: string[];
  approvals: number;
  timeoutMs?: number;
}

/** A compiled guardrail rule. */
export interface RuleConfig extends ReviewPolicy {
  name: string;
  when: string;
  condition: Condition;
  action: 'allow' | 'deny' | 'review';
  message?: string;
  /** Webhooks told of this rule's reviews, instead of reviews.notify. */
  notify?: string[];
}

/** What a connection does with a call no rule decides. */
export interface GuardrailDefaults extends ReviewPolicy {
  default: 'allow' | 'deny' | 'review';
  message?: string;
}
