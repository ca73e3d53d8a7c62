/** Milliseconds from a monotonic source; injected so that tests move time instead of sleeping. */
export type Clock = () => number;

export const monotonicClock: Clock = () => performance.now();

/** A sustained rate and the burst allowed above it. */
export interface Rate {
  perSecond: number;
  burst: number;
}

/**
 * A token bucket: holds up to `burst` tokens, refills at `perSecond`, and each admitted event takes one. It stores
 * two numbers and refills lazily when asked, so an idle bucket costs nothing.
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    readonly rate: Rate,
    private readonly clock: Clock,
  ) {
    this.#tokens = rate.burst;
    this.#at = clock();
  }

  #refill(): void {
    const now = this.clock();
    // A clock that steps back refills nothing rather than draining the bucket.
    if (now > this.#at) this.#tokens = Math.min(this.rate.burst, this.#tokens + ((now - this.#at) * this.rate.perSecond) / 1000);
    this.#at = Math.max(this.#at, now);
  }

  /** Takes a token: true when one was there. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Gives back a token taken for an event that did not happen after all. */
  refund(): void {
    this.#tokens = Math.min(this.rate.burst, this.#tokens + 1);
  }

  /** How long until a token is there (0: now). */
  waitMs(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1000) / this.rate.perSecond);
  }

  /** Whether the bucket is full: forgetting it then loses nothing, since a new one starts full. */
  get full(): boolean {
    this.#refill();
    return this.#tokens >= this.rate.burst;
  }
}
