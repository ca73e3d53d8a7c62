/** Retries of a member that is down: 1s doubling to 30s. */
const firstRetryMs = 1000;
const lastRetryMs = 30_000;

/** When a member that is down is tried again: each retry waits twice as long as the last, until one succeeds. */
export class RetryBackoff {
  #delayMs = firstRetryMs;
  #timer: NodeJS.Timeout | undefined;

  /** Runs `retry` after the next delay; nothing when one is scheduled already. */
  schedule(retry: () => void): void {
    if (this.#timer !== undefined) return;
    const delay = this.#delayMs;
    this.#delayMs = Math.min(this.#delayMs * 2, lastRetryMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      retry();
    }, delay);
    this.#timer.unref();
  }

  /** It is up: the next failure is retried after the first delay again. */
  reset(): void {
    this.#delayMs = firstRetryMs;
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
