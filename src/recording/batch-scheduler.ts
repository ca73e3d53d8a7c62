import { chainOf, type Item, selectBatch } from './batch.js';
import type { BatchWriter } from './batch-writer.js';
import { Commit } from './commit.js';

/**
 * Group commit's timing: which queued items go into the next batch and when it starts. SQLite: everything queued
 * while the event loop handled one round of I/O goes in one transaction, written synchronously (microseconds, no
 * thread hand-off). PostgreSQL: up to two batches are in flight at once on their own connections, each holding
 * different sessions, so a session waits for one round trip, not for everyone else's; what arrives meanwhile is the
 * next batch. That one gathers for a short window (`gatherMs`) before it starts beside the first: each commit has a
 * fixed cost on both sides (a round trip, wake-ups, a WAL flush), and a gateway serving few clients, one of several
 * replicas, would otherwise commit two or three events at a time. The window is bounded, so a slow first batch never
 * holds the next for longer.
 */
const settled = Promise.resolve();

export class BatchScheduler {
  #queue: Item[] = [];
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #maxInFlight: number;
  /** Armed while a batch is in flight and the next one gathers: the next starts when it fires or the first lands. */
  #gatherTimer: NodeJS.Timeout | undefined;
  #gatherDue = false;
  /** The write that took each item (settled already for those failed unwritten: takeQueued): what drain waits on. */
  readonly #writeOf = new WeakMap<Item, Promise<void>>();

  constructor(
    private readonly writer: Pick<BatchWriter, 'synchronous' | 'ledgerBusy'>,
    private readonly gatherMs: number,
    /** Writes one batch; settles once it is written or failed. */
    private readonly write: (items: Item[]) => Promise<void>,
  ) {
    this.#maxInFlight = writer.synchronous ? 1 : 2;
  }

  /** Queues an item; a session's items share one pending commit until a batch takes them. */
  enqueue(item: Item): void {
    const chain = chainOf(item);
    if (chain !== undefined) {
      chain.pending ??= new Commit();
      chain.lastCommit = chain.pending;
    }
    this.#queue.push(item);
    this.#schedule();
  }

  /** Empties the queue and returns what it held (what cannot be written once the store has failed). */
  takeQueued(): Item[] {
    const queued = this.#queue;
    this.#queue = [];
    for (const item of queued) this.#writeOf.set(item, settled);
    return queued;
  }

  /**
   * Resolves once what was queued or being written when it was called is written (or failed). What is queued later
   * does not hold it back: under load that never pauses, the queue and the writes in flight are never empty at once.
   */
  async drain(): Promise<void> {
    const queued = [...this.#queue];
    const writing = [...this.#inFlight];
    // What is queued goes now, not at the end of a gathering window.
    this.#flush();
    await Promise.all(writing);
    for (const item of queued) {
      // Still queued: its chain, or the ledger, waits on a write in flight, whose landing starts the next batch.
      while (!this.#writeOf.has(item)) {
        this.#flush();
        if (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
        else await new Promise<void>((r) => setImmediate(r));
      }
      await this.#writeOf.get(item);
    }
  }

  close(): void {
    clearTimeout(this.#gatherTimer);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  /** Starts as many batches as may be in flight. */
  #flush(): void {
    while (this.#queue.length > 0 && this.#inFlight.size < this.#maxInFlight) {
      if (this.#inFlight.size > 0 && this.gatherMs > 0 && !this.#gatherDue) {
        this.#gatherTimer ??= setTimeout(() => {
          this.#gatherTimer = undefined;
          this.#gatherDue = true;
          this.#flush();
          this.#gatherDue = false;
        }, this.gatherMs);
        return;
      }
      this.#gatherDue = false;
      clearTimeout(this.#gatherTimer);
      this.#gatherTimer = undefined;
      const { taken, rest } = selectBatch(this.#queue, this.writer.ledgerBusy);
      if (taken.length === 0) return;
      this.#queue = rest;
      const write = this.write(taken).finally(() => {
        this.#inFlight.delete(write);
        if (this.#queue.length > 0) {
          // SQLite: let a round of I/O add to the next batch. PostgreSQL: what came in meanwhile goes now.
          if (this.writer.synchronous) this.#schedule();
          else this.#flush();
        }
      });
      this.#inFlight.add(write);
      for (const item of taken) this.#writeOf.set(item, write);
    }
  }
}
