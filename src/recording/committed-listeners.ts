import type { Logger } from 'pino';
import type { EventRow, SessionRow } from '../store/types.js';

/** The sequence numbers of one session's events that a batch wrote, first to last. */
export interface CommittedRange {
  first: number;
  last: number;
}

/** What a durable batch wrote, as in-process consumers may read it without going back to the store. */
export interface CommittedBatch {
  /** Its events in the order written, as they were before encryption (`Materialized.readable`). */
  events: readonly EventRow[];
  /** The sessions it opened. */
  opened: readonly SessionRow[];
}

export type CommittedListener = (sessions: ReadonlyMap<string, CommittedRange>, batch: CommittedBatch) => void;

/**
 * Who is told when a batch is durable, with the sessions whose events it wrote (the console's live view of
 * exchanges reads them back from the store) and the batch itself (the audit shipper formats from it). A listener
 * must not keep the batch's arrays beyond the call without copying what it needs (it may keep the rows: they are
 * not changed once written). A listener that throws is logged, never allowed to fail the commit.
 */
export class CommittedListeners {
  readonly #listeners: CommittedListener[] = [];

  constructor(private readonly log: Logger) {}

  add(fn: CommittedListener): void {
    this.#listeners.push(fn);
  }

  get empty(): boolean {
    return this.#listeners.length === 0;
  }

  tell(batch: CommittedBatch): void {
    const sessions = new Map<string, CommittedRange>();
    for (const e of batch.events) {
      const range = sessions.get(e.sessionId);
      if (range === undefined) sessions.set(e.sessionId, { first: e.seq, last: e.seq });
      else {
        range.first = Math.min(range.first, e.seq);
        range.last = Math.max(range.last, e.seq);
      }
    }
    for (const fn of this.#listeners) {
      try {
        fn(sessions, batch);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'a listener of committed events failed');
      }
    }
  }
}
