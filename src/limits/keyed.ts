import { type Clock, type Rate, TokenBucket } from './token-bucket.js';

/**
 * Token buckets by key (a principal, an address), at most `capacity` of them. When full, buckets that have
 * refilled are forgotten first (losslessly: a new one starts full); if too few have, the least recently used go
 * (a sixteenth of the capacity at once), which lets those keys start over with a full burst: the price of a
 * bounded memory.
 */
export class KeyedBuckets {
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly capacity: number,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.#buckets.size;
  }

  /** The key's bucket, if it has one. */
  peek(key: string): TokenBucket | undefined {
    return this.#buckets.get(key);
  }

  /** The key's bucket, created at `rate` when it has none. */
  get(key: string, rate: Rate): TokenBucket {
    let bucket = this.#buckets.get(key);
    if (bucket !== undefined) {
      // Most recently used last, so that eviction takes the stalest first.
      this.#buckets.delete(key);
      this.#buckets.set(key, bucket);
      return bucket;
    }
    if (this.#buckets.size >= this.capacity) this.#evict();
    bucket = new TokenBucket(rate, this.clock);
    this.#buckets.set(key, bucket);
    return bucket;
  }

  #evict(): void {
    for (const [key, bucket] of this.#buckets) if (bucket.full) this.#buckets.delete(key);
    // Too few could go for free: the stalest go, until a sixteenth of the capacity is free. So a sweep (a look at
    // every bucket) comes once per that many new keys, not for each one of a flood whose buckets never refill.
    const room = this.capacity - Math.max(1, Math.floor(this.capacity / 16));
    while (this.#buckets.size > room) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}

/** Counts of things held (sessions, requests in flight) by key; a key whose count falls to zero is forgotten. */
export class Counters {
  readonly #counts = new Map<string, number>();

  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  add(key: string): void {
    this.#counts.set(key, this.count(key) + 1);
  }

  remove(key: string): void {
    const n = this.count(key) - 1;
    if (n > 0) this.#counts.set(key, n);
    else this.#counts.delete(key);
  }

  get keys(): number {
    return this.#counts.size;
  }
}
