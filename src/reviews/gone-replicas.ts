import type { Logger } from 'pino';

export interface GoneReplicaReviewsOptions {
  /** Ends the held reviews of these replicas (Reviews.interruptOf). */
  interrupt: (instanceIds: readonly string[]) => Promise<void>;
  /** Whether a replica is alive now, per the membership. */
  isAlive: (instanceId: string) => boolean;
  log: Logger;
}

/**
 * Ends the held reviews of replicas found gone (interrupted: their calls will never be forwarded), and keeps at it:
 * a replica whose reviews could not be ended (the store failed) is tried again at each `retry` (the cluster's
 * reconciliation) until they are. One replica at a time. A replica alive again by then (its id taken over by a
 * restart, which ends its earlier reviews itself) is left alone: its reviews now may be live calls.
 */
export class GoneReplicaReviews {
  /** The replicas whose reviews are still to be ended. */
  readonly #pending = new Set<string>();
  #running: Promise<void> | undefined;

  constructor(private readonly o: GoneReplicaReviewsOptions) {}

  /** Replicas found gone: their reviews are ended now. */
  gone(instanceIds: readonly string[]): Promise<void> {
    for (const id of instanceIds) this.#pending.add(id);
    return this.retry();
  }

  /** Tries again for the replicas whose reviews could not be ended yet; resolves when this attempt is over. */
  retry(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    this.#running ??= this.#run().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #run(): Promise<void> {
    // A replica added while this runs is visited too (a Set's iteration reaches what is added during it).
    for (const id of this.#pending) {
      if (this.o.isAlive(id)) {
        this.#pending.delete(id);
        continue;
      }
      try {
        await this.o.interrupt([id]);
        this.#pending.delete(id);
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message, instance: id }, 'reviews of a gone replica could not be ended; tried again at the next reconciliation');
      }
    }
  }
}
