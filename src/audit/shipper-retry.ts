import { Stopped } from './ship-context.js';

/** How a shipper retries what failed (a send the sink refused, a store read): a doubling delay, up to a ceiling. */
export interface Backoff {
  /** The first retry's delay. */
  firstMs: number;
  maxMs: number;
}

/**
 * The shipper's waits: each is cut short when it stops or is finishing (and, when wakeable, when told of a commit or
 * asked to rescan).
 */
export class Pauses {
  readonly #stopped: () => boolean;
  readonly #finishing: () => boolean;
  #wake: (() => void) | undefined;

  constructor(state: { stopped: () => boolean; finishing: () => boolean }) {
    this.#stopped = state.stopped;
    this.#finishing = state.finishing;
  }

  /** Ends the wait in progress, if it may end now. */
  wake(): void {
    this.#wake?.();
  }

  /** Waits `ms`, or less when stopped (or, when `wakeable`, when woken). */
  pause(ms: number, wakeable = false): Promise<void> {
    if (this.#stopped()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      // The gateway's port keeps the process alive; a shipper's wait alone never should.
      timer.unref();
      this.#wake = () => {
        if (wakeable || this.#stopped() || this.#finishing()) done();
      };
    });
  }
}

/**
 * Runs `attempt` until it succeeds, with backoff between tries; throws Stopped once the shipper stops. `failed` is told
 * of each failure (it may throw, to give up) before the wait.
 */
export async function retrying<T>(
  backoff: Backoff,
  pauses: Pauses,
  stopped: () => boolean,
  attempt: () => Promise<T>,
  failed: (err: Error, attempt: number) => void | Promise<void>,
): Promise<T> {
  let delay = backoff.firstMs;
  for (let n = 0; ; n++) {
    if (stopped()) throw new Stopped();
    try {
      return await attempt();
    } catch (err) {
      await failed(err as Error, n);
      await pauses.pause(delay);
      delay = Math.min(delay * 2, backoff.maxMs);
    }
  }
}
