import type { Logger } from 'pino';
import type { ReviewRow, ReviewStatus } from '../store/review-types.js';
import type { Store } from '../store/store.js';

/** How a hold ended: released to the server, or refused with a message for the client. */
export type ReviewOutcome = { released: true; review: ReviewRow } | { released: false; review: ReviewRow | undefined; message: string };

interface Waiter {
  row: ReviewRow;
  settle: (outcome: ReviewOutcome) => void;
  timer: NodeJS.Timeout;
  onAbort: () => void;
  signal: AbortSignal;
}

export interface HeldCallsOptions {
  store: Store;
  log: Logger;
  /** Moves a pending or approved review to a terminal status; undefined when it was no longer there (reviews.ts). */
  end: (row: ReviewRow, status: ReviewStatus, note: string) => Promise<ReviewRow | undefined>;
}

const who = (row: Pick<ReviewRow, 'deciderEmail' | 'deciderSubject'>) => row.deciderEmail ?? row.deciderSubject ?? 'an approver';

/**
 * The calls held here, each waiting on its stored review: it follows the review's state (a decision taken here, a
 * change notification, a read of them all at the cluster's reconciliation), and releases the call once approved, or
 * refuses it.
 */
export class HeldCalls {
  readonly #waiting = new Map<string, Waiter>();
  #rechecking = false;

  constructor(private readonly o: HeldCallsOptions) {}

  /** A call whose review is stored waits here until it is decided, times out (`timeoutMs`) or `signal` aborts. */
  wait(row: ReviewRow, signal: AbortSignal, timeoutMs: number, settle: (outcome: ReviewOutcome) => void): void {
    const waiter: Waiter = {
      row,
      settle,
      signal,
      timer: setTimeout(() => void this.#timedOut(waiter), timeoutMs),
      onAbort: () => void this.#giveUp(waiter, 'cancelled', (signal.reason as Error | undefined)?.message ?? 'the client went away'),
    };
    waiter.timer.unref();
    signal.addEventListener('abort', waiter.onAbort, { once: true });
    this.#waiting.set(row.id, waiter);
  }

  /** Another replica changed a review: if its call is held here, it follows the stored state now. */
  async changed(id: string): Promise<void> {
    const waiter = this.#waiting.get(id);
    if (waiter === undefined) return;
    const row = await this.o.store.getReview(id).catch(() => undefined);
    if (row !== undefined && row.status !== 'pending') await this.#follow(waiter, row);
  }

  /** A decision taken here: a call held here for it follows at once. */
  decided(row: ReviewRow): void {
    const waiter = this.#waiting.get(row.id);
    if (waiter !== undefined) void this.#follow(waiter, row);
  }

  /** Gives up every held call (the gateway is shutting down). */
  async stop(note: string): Promise<void> {
    await Promise.all([...this.#waiting.values()].map((w) => this.#giveUp(w, 'interrupted', note)));
  }

  /** Moves a waiting review to where its stored state says: released and forwarded once approved, or refused. */
  async #follow(waiter: Waiter, row: ReviewRow): Promise<void> {
    if (!this.#waiting.has(row.id)) return;
    if (row.status === 'pending') return;
    if (row.status === 'approved') {
      // The approval is for the call held here, bound by digest; releasing it spends it.
      if (row.digest !== waiter.row.digest)
        return this.#finish(waiter, { released: false, review: row, message: `Review ${row.id} was approved for another call than this one` });
      let released = false;
      try {
        released = await this.o.store.updateReview(row.id, { status: 'approved', approvalCount: row.approvals.length }, { status: 'released' });
      } catch (err) {
        return this.#finish(waiter, {
          released: false,
          review: row,
          message: `Review ${row.id} was approved, but the release could not be stored (${(err as Error).message}); call again`,
        });
      }
      if (!released) return;
      return this.#finish(waiter, { released: true, review: { ...row, status: 'released' } });
    }
    const message =
      row.status === 'rejected'
        ? `Rejected by ${who(row)}: ${row.decisionNote ?? 'no reason given'} (review ${row.id})`
        : row.status === 'expired'
          ? `No approver decided within the review's timeout, so the call was rejected (review ${row.id})`
          : `The review ended without approval: ${row.decisionNote ?? row.status} (review ${row.id})`;
    this.#finish(waiter, { released: false, review: row, message });
  }

  #finish(waiter: Waiter, outcome: ReviewOutcome): void {
    if (!this.#waiting.delete(waiter.row.id)) return;
    clearTimeout(waiter.timer);
    waiter.signal.removeEventListener('abort', waiter.onAbort);
    waiter.settle(outcome);
  }

  async #timedOut(waiter: Waiter): Promise<void> {
    await this.#giveUp(waiter, 'expired', 'no approver decided in time');
  }

  /**
   * Ends a waiting review without approval. A timeout loses to an approval that came first (the call goes on); a
   * cancellation or a shutdown never does: the client is gone, so an approved review is ended rather than
   * released. Retried while approvals race it, so the stored review always says how it ended.
   */
  async #giveUp(waiter: Waiter, status: ReviewStatus, note: string): Promise<void> {
    const refused = (review: ReviewRow) => this.#finish(waiter, { released: false, review, message: `The review ended: ${note} (review ${review.id})` });
    for (let attempt = 0; attempt < 10; attempt++) {
      const row = await this.o.store.getReview(waiter.row.id).catch(() => undefined);
      if (row === undefined) return refused(waiter.row);
      const endable = row.status === 'pending' || (row.status === 'approved' && status !== 'expired');
      if (!endable) return this.#follow(waiter, row);
      const ended = await this.o.end(row, status, note);
      if (ended !== undefined) return this.#follow(waiter, ended);
    }
    // The store would not take it: the call is refused all the same, and never forwarded.
    refused(waiter.row);
  }

  /** Reads every held review again (decisions taken through another gateway, a missed notification). */
  async recheck(): Promise<void> {
    if (this.#rechecking) return;
    this.#rechecking = true;
    try {
      for (const waiter of [...this.#waiting.values()]) {
        const row = await this.o.store.getReview(waiter.row.id);
        if (row !== undefined && row.status !== 'pending') await this.#follow(waiter, row);
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'held reviews could not be read again');
    } finally {
      this.#rechecking = false;
    }
  }
}
