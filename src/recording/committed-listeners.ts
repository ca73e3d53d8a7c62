import type { Logger } from 'pino';

/** The sequence numbers of one session's events that a batch wrote, first to last. */
export interface CommittedRange {
  first: number;
  last: number;
}

export type CommittedListener = (sessions: ReadonlyMap<string, CommittedRange>) => void;

/**
 * Who is told when a batch is durable, with the sessions whose events it wrote (the console's live view of
 * exchanges reads them back from the store). A listener that throws is logged, never allowed to fail the commit.
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

  tell(events: readonly { sessionId: string; seq: number }[]): void {
    const sessions = new Map<string, CommittedRange>();
    for (const e of events) {
      const range = sessions.get(e.sessionId);
      if (range === undefined) sessions.set(e.sessionId, { first: e.seq, last: e.seq });
      else {
        range.first = Math.min(range.first, e.seq);
        range.last = Math.max(range.last, e.seq);
      }
    }
    for (const fn of this.#listeners) {
      try {
        fn(sessions);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'a listener of committed events failed');
      }
    }
  }
}
