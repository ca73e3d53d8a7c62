import type { Logger } from 'pino';
import type { Store } from '../store/store.js';

/**
 * Whether the recording store takes writes: healthy until a write fails, then probed (a cheap read and this
 * instance's heartbeat) every `probeMs` until it answers again. While healthy, the instance heart-beats, so other
 * instances can tell it is alive (a silent instance's open sessions count as cut off).
 */
export class StoreHealth {
  #healthy = true;
  #lastError: Error | undefined;
  #probe: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly store: Store,
    private readonly instanceId: string,
    /** The membership's nonce of this process: only the row it holds is beaten (undefined: the row as is). */
    private readonly boot: string | undefined,
    private readonly probeMs: number,
    private readonly log: Logger,
    /** Called once each time the store answers again after a failure. */
    private readonly onRecovered: () => void,
  ) {}

  get healthy(): boolean {
    return this.#healthy;
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** A write failed: unhealthy until a probe succeeds. Returns whether the store was healthy until now. */
  failed(err: Error): boolean {
    const was = this.#healthy;
    this.#lastError = err;
    this.#healthy = false;
    this.#startProbe();
    return was;
  }

  /** Beats this instance's row; one another process took is left alone (the membership stops this replica). */
  heartbeat(): void {
    if (!this.#healthy) return;
    this.#beat().catch((err: Error) => this.log.warn({ err: err.message }, 'recording heartbeat failed'));
  }

  #beat(): Promise<boolean> {
    return this.store.heartbeat(this.instanceId, this.boot === undefined ? {} : { boot: this.boot });
  }

  close(): void {
    this.#closed = true;
    if (this.#probe) clearInterval(this.#probe);
  }

  #startProbe(): void {
    if (this.#probe !== undefined || this.#closed) return;
    let probing = false;
    this.#probe = setInterval(() => {
      if (probing) return;
      probing = true;
      this.store
        .probe()
        .then(() => this.#beat())
        .then(
          () => this.#recovered(),
          (err: Error) => (this.#lastError = err),
        )
        .finally(() => (probing = false));
    }, this.probeMs);
    this.#probe.unref();
  }

  #recovered(): void {
    if (this.#healthy) return;
    clearInterval(this.#probe);
    this.#probe = undefined;
    this.#healthy = true;
    this.#lastError = undefined;
    this.onRecovered();
  }
}
