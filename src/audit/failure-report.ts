import type { Logger } from 'pino';

/**
 * Logs a failure that is retried until it succeeds, with backoff: the first failure at once, then again only as the
 * interval since the last line doubles (1 min, 2, 4, ... 1 h at most), then the recovery. A sink down for a day
 * writes a couple of dozen lines, not one per retry.
 */
export class FailureReport {
  #failures = 0;
  #since: number | undefined;
  #loggedAt = 0;
  #interval: number;
  #lastError: string | undefined;

  constructor(
    private readonly log: Logger,
    private readonly what: string,
    private readonly fields: Record<string, unknown>,
    private readonly firstIntervalMs = 60_000,
    private readonly maxIntervalMs = 3_600_000,
    private readonly now: () => number = Date.now,
  ) {
    this.#interval = firstIntervalMs;
  }

  /** Failed attempts since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** When (ms) the current run of failures began; undefined while it works. */
  get failingSince(): number | undefined {
    return this.#since;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  failed(err: Error): void {
    const now = this.now();
    this.#failures++;
    this.#lastError = err.message;
    if (this.#since === undefined) {
      this.#since = now;
      this.#loggedAt = now;
      this.#interval = this.firstIntervalMs;
      this.log.warn({ ...this.fields, err: err.message }, `${this.what} failed; retrying with backoff (nothing is lost: the events wait in the store)`);
      return;
    }
    if (now - this.#loggedAt < this.#interval) return;
    this.#loggedAt = now;
    this.#interval = Math.min(this.#interval * 2, this.maxIntervalMs);
    this.log.warn(
      { ...this.fields, err: err.message, attempts: this.#failures, failingForS: Math.round((now - this.#since) / 1000) },
      `${this.what} still failing; retrying with backoff`,
    );
  }

  succeeded(): void {
    if (this.#since === undefined) return;
    this.log.info({ ...this.fields, attempts: this.#failures, failedForS: Math.round((this.now() - this.#since) / 1000) }, `${this.what} works again`);
    this.#since = undefined;
    this.#failures = 0;
    this.#lastError = undefined;
  }
}
