/**
 * Keeps one direction's messages in the order they came: a step runs at once when nothing is waiting, else after
 * the steps before it; a step that returns a promise (a stage went asynchronous) holds the later ones back until
 * it settles. The common, synchronous case allocates no promise.
 */
export class InOrder {
  #tail: Promise<void> | undefined;

  /** Whether a step is still waiting on an asynchronous one. */
  get waiting(): boolean {
    return this.#tail !== undefined;
  }

  run(step: () => void | Promise<void>): void {
    if (this.#tail === undefined) {
      const result = step();
      if (result instanceof Promise) this.#tail = this.#track(result);
    } else {
      this.#tail = this.#track(this.#tail.then(step));
    }
  }

  #track(p: Promise<void>): Promise<void> {
    const tail = p.finally(() => {
      if (this.#tail === tail) this.#tail = undefined;
    });
    return tail;
  }
}
