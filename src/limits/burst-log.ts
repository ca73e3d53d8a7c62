import type { Logger } from 'pino';
import type { Clock } from './token-bucket.js';

interface Burst {
  fields: Record<string, unknown>;
  message: string;
  count: number;
  firstMs: number;
  lastMs: number;
}

/**
 * Logs refusals once per burst rather than once per request, so that a flood does not become a flood of log
 * lines: the first refusal of a key is logged at once, the rest are counted, and when the key has been quiet for
 * `quietMs` (or is pushed out, or at shutdown) one line tells how many the burst refused. At most `capacity`
 * bursts are tracked.
 */
export class BurstLog {
  readonly #bursts = new Map<string, Burst>();

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly quietMs = 10_000,
    private readonly capacity = 10_000,
  ) {}

  /** Notes a refusal; true when it starts a burst (it was logged, and is the one worth recording). */
  refused(key: string, fields: Record<string, unknown>, message: string): boolean {
    const now = this.clock();
    const burst = this.#bursts.get(key);
    if (burst !== undefined && now - burst.lastMs < this.quietMs) {
      burst.count++;
      burst.lastMs = now;
      return false;
    }
    if (burst !== undefined) this.#end(key, burst);
    if (this.#bursts.size >= this.capacity) {
      const [oldest, b] = this.#bursts.entries().next().value!;
      this.#end(oldest, b);
    }
    this.#bursts.set(key, { fields, message, count: 1, firstMs: now, lastMs: now });
    this.log.warn(fields, message);
    return true;
  }

  /** Whether `key` is in a burst of refusals (refused within the last `quietMs`). */
  active(key: string): boolean {
    const burst = this.#bursts.get(key);
    return burst !== undefined && this.clock() - burst.lastMs < this.quietMs;
  }

  /** Ends the bursts quiet for `quietMs`, logging their totals; all of them with `all` (shutdown). */
  sweep(all = false): void {
    const now = this.clock();
    for (const [key, burst] of this.#bursts) if (all || now - burst.lastMs >= this.quietMs) this.#end(key, burst);
  }

  get size(): number {
    return this.#bursts.size;
  }

  #end(key: string, burst: Burst): void {
    this.#bursts.delete(key);
    if (burst.count > 1) {
      this.log.warn({ ...burst.fields, refused: burst.count, seconds: Math.round((burst.lastMs - burst.firstMs) / 100) / 10 }, `${burst.message}: burst over`);
    }
  }
}
