/**
 * One group commit as its waiters see it: a promise that settles when the batch is written (or failed),
 * and a flag read on the hot path so that a message whose events are already durable waits for nothing.
 */
export class Commit {
  done = false;
  readonly promise: Promise<void>;
  #resolve!: () => void;
  #reject!: (err: Error) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A commit nobody waits on may still fail: that is reported elsewhere, never as an unhandled rejection.
    this.promise.catch(() => {});
  }

  succeed(): void {
    this.done = true;
    this.#resolve();
  }

  fail(err: Error): void {
    this.done = true;
    this.#reject(err);
  }
}
