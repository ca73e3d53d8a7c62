import type { RefusalPlace } from '../core/refusal-log.js';
import type { Refusal } from './admission.js';
import type { BurstLog } from './burst-log.js';
import { LimitExceededError } from './limit-error.js';
import { type Principal, principalKey } from './principal.js';
import type { Rate } from './token-bucket.js';

/**
 * How every limit refuses: the error the client gets, a tally for metrics, and one log line per burst of refusals
 * of a principal under one limit (so a flood does not become a flood of log lines or recorded refusals).
 */
export class Refusals {
  constructor(
    private readonly bursts: BurstLog,
    private readonly onRefused: (limit: string) => void,
  ) {}

  refuse(principal: Principal, at: RefusalPlace, limit: string, value: string, retryAfterSeconds: number, message: string): Refusal {
    const refused = new LimitExceededError(limit, value, retryAfterSeconds, message);
    this.onRefused(limit);
    const record = this.bursts.refused(
      this.#burstKey(principal, limit),
      { refusal: true, principal: principal.subject, connection: at.connection, method: at.method, reason: message, issuer: principal.issuer, limit, value },
      'limit reached: refusing',
    );
    return { refused, record };
  }

  /** A refusal for a rate: the client is told to wait until its bucket has a token again. */
  refuseRate(principal: Principal, at: RefusalPlace, limit: string, rate: Rate, waitMs: number, what: string): LimitExceededError {
    const wait = Math.max(1, Math.ceil(waitMs / 1000));
    return this.refuse(principal, at, limit, rateText(rate), wait, `Too many ${what}: at most ${rateText(rate)} (${limit}); try again in ${wait}s`).refused;
  }

  /** Whether the principal was refused under `limit` lately (its burst of refusals is not over). */
  inBurst(principal: Principal, limit: string): boolean {
    return this.bursts.active(this.#burstKey(principal, limit));
  }

  #burstKey(principal: Principal, limit: string): string {
    return `${principalKey(principal)}\n${limit}`;
  }
}

export function rateText(rate: Rate): string {
  return `${rate.perSecond}/s with bursts of ${rate.burst}`;
}
