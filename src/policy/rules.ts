import type { GuardrailDefaults, ReviewPolicy, RuleConfig } from './config.js';
import { describe, type RequestFacts } from './cel.js';

/**
 * The guardrail rules in order: the first whose condition holds decides a request. A condition that fails on a
 * request (a key the arguments lack, a value of another type) counts as holding for a deny or review rule and
 * as not holding for an allow rule: a client cannot slip past a rule by sending arguments it did not expect.
 * A request no rule decides gets the connection's default, unless it is protocol housekeeping (initialize, the
 * lists, ping), which is allowed.
 */

export type Action = 'allow' | 'deny' | 'review';

export interface Decision {
  action: Action;
  /** The rule that decided, or undefined for the connection's default (or housekeeping). */
  rule?: string;
  /** deny: what the client is told. */
  message?: string;
  /** review: who approves, how many, how long. */
  review?: Required<Pick<ReviewPolicy, 'approvers'>> & ReviewPolicy;
  /** A condition that failed on this request and so counted as holding. */
  error?: string;
}

/** One rule's outcome when explaining a decision (`portcullis rules test`). */
export interface RuleTrace {
  rule: string;
  when: string;
  result: boolean | 'error';
  error?: string;
}

/**
 * Protocol housekeeping: requests that use no tool, prompt or resource (or follow up on a call already allowed, as
 * the task methods do). Every other request, including methods this gateway does not know, gets the connection's
 * default when no rule decides it.
 */
const housekeeping = new Set([
  'initialize',
  'ping',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
]);

export class RuleSet {
  constructor(readonly rules: readonly RuleConfig[]) {}

  get size(): number {
    return this.rules.length;
  }

  /** The decision on a request; with `trace`, each rule evaluated is appended to it. */
  decide(facts: RequestFacts, defaults: GuardrailDefaults, trace?: RuleTrace[]): Decision {
    for (const rule of this.rules) {
      let holds: boolean;
      let error: string | undefined;
      try {
        holds = rule.condition(facts);
      } catch (err) {
        error = describe(err);
        holds = rule.action !== 'allow';
      }
      trace?.push({ rule: rule.name, when: rule.when, result: error === undefined ? holds : 'error', ...(error === undefined ? {} : { error }) });
      if (holds) return decision(rule.action, rule, rule.name, error);
    }
    if (housekeeping.has(facts.method) || defaults.default === 'allow') return { action: 'allow' };
    return decision(defaults.default, defaults, undefined, undefined);
  }
}

function decision(action: Action, source: ReviewPolicy & { message?: string | undefined }, rule: string | undefined, error: string | undefined): Decision {
  const d: Decision = { action };
  if (rule !== undefined) d.rule = rule;
  if (error !== undefined) d.error = error;
  if (action === 'deny' && source.message !== undefined) d.message = source.message;
  if (action === 'review')
    d.review = { approvers: source.approvers ?? [], approvals: source.approvals, ...(source.timeoutMs === undefined ? {} : { timeoutMs: source.timeoutMs }) };
  return d;
}
