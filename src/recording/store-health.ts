import type { Logger } from 'pino';
import { InstanceIdTakenError } from '../cluster/membership.js';
import type { Store } from '../store/store.js';

/**
 * Whether the recording store takes writes: healthy until a write fails, then probed (a cheap read and this
 * instance's heartbeat) every `probeMs` until it answers again. While healthy, the instance heart-beats, so other
 * instances can tell it is alive (a silent instance's open sessions count as cut off). A heartbeat, or a probe's,
 * that finds the instance's row held by another process (its id was taken over) is not a store that answers again:
 * this process is to write nothing more under the id, and stays unhealthy for good (`lost`).
 */
export class StoreHealth {
  #healthy = true;
  #lastError: Error | undefined;
  #probe: NodeJS.Timeout | undefined;
  #closed = false;
  #lost = false;

  constructor(
    private readonly store: Store,
    private readonly instanceId: string,
    /** The membership's nonce of this process: only the row it holds is beaten (undefined: the row as is). */
    private readonly boot: string | undefined,
    private readonly probeMs: number,
    private readonly log: Logger,
    /** Called once each time the store answers again after a failure. */
    private readonly onRecovered: () => void,
    /** Called when a heartbeat finds the instance id held by another process (the recorder then calls `lose`). */
    private readonly onIdTaken: (err: InstanceIdTakenError) => void,
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
    if (this.#lost) return was;
    this.#lastError = err;
    this.#healthy = false;
    this.#startProbe();
    return was;
  }

  /** This process lost its instance id: unhealthy for good, with `err` as the reason; no more beats or probes. */
  lose(err: Error): void {
    this.#lost = true;
    this.#healthy = false;
    this.#lastError = err;
    clearInterval(this.#probe);
    this.#probe = undefined;
  }

  /** Beats this instance's row; one another process took is left alone, and the id is given up (`onIdTaken`). */
  heartbeat(): void {
    if (!this.#healthy) return;
    this.#beat().then(
      (held) => held || this.#idTaken(),
      (err: Error) => this.log.warn({ err: err.message }, 'recording heartbeat failed'),
    );
  }

  #beat(): Promise<boolean> {
    return this.store.heartbeat(this.instanceId, this.boot === undefined ? {} : { boot: this.boot });
  }

  #idTaken(): void {
    if (!this.#lost && !this.#closed) this.onIdTaken(new InstanceIdTakenError(this.instanceId));
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
          // The store answers, but the row is another process's: its sessions must not be taken for this one's.
          (held) => (held ? this.#recovered() : this.#idTaken()),
          (err: Error) => {
            if (!this.#lost) this.#lastError = err;
          },
        )
        .finally(() => (probing = false));
    }, this.probeMs);
    this.#probe.unref();
  }

  #recovered(): void {
    if (this.#healthy || this.#lost) return;
    clearInterval(this.#probe);
    this.#probe = undefined;
    this.#healthy = true;
    this.#lastError = undefined;
    this.onRecovered();
  }
}
