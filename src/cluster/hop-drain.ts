/**
 * The hops this replica has in progress as their sender, for its drain. A request forwarded to the replica owning its
 * session (a call, a DELETE, a new session opened elsewhere) is in flight here as much as on the owner: the drain
 * waits for its answer, as it does for this replica's own sessions. A GET's stream through the hop lasts as long as
 * its client listens: the drain does not wait for it, and it ends when the local streams do (their sessions closed),
 * so that its client opens it again through a replica that stays.
 */
export class HopsInFlight {
  readonly #hops = new Set<{ holdsDrain: boolean; end: () => void }>();
  /** Called each time a hop ends (what `settled` waits on). */
  readonly #ended = new Set<() => void>();

  /**
   * Counts a hop (or a request on its way to one) until `done` settles. `holdsDrain`: the drain waits for it; `end`: what ends it when it outlasts the
   * drain (a stream ended as the local ones are, a request past the drain's timeout cut off).
   */
  track(done: Promise<unknown>, holdsDrain: boolean, end: () => void): void {
    const hop = { holdsDrain, end };
    this.#hops.add(hop);
    const ended = () => {
      this.#hops.delete(hop);
      for (const wake of this.#ended) wake();
    };
    // Its failure is its caller's to handle: here it only ends the hop.
    done.then(ended, ended);
  }

  /** How many hops hold the drain now. */
  get holdingDrain(): number {
    let n = 0;
    for (const hop of this.#hops) if (hop.holdsDrain) n++;
    return n;
  }

  /** Resolves once no hop holds the drain, or at `deadline` (epoch ms) at the latest. */
  async settled(deadline: number): Promise<void> {
    while (this.holdingDrain > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#ended.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, deadline - Date.now());
        this.#ended.add(wake);
      });
    }
  }

  /** Ends every hop still in progress (shutdown, past the drain). */
  endAll(): void {
    for (const hop of [...this.#hops]) hop.end();
  }
}
