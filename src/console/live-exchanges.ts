import type { ChangeBus } from '../cluster/change-bus.js';
import { type AttestedSession, attestSession } from '../recording/attest.js';
import { eventLine } from '../recording/export.js';
import type { CommittedRange } from '../recording/committed-listeners.js';
import type { Recorder } from '../recording/recorder.js';
import type { Store } from '../store/store.js';
import type { LiveEventLine, LiveEvents } from './live-events.js';

/**
 * The console's live view of exchanges, on every replica: when a batch of a session's events is durable here, the
 * session's id and the range of sequence numbers are announced on the change bus (a few bytes each, batched into one
 * notification) and handed to this replica's listeners; a replica that hears of them, or commits them itself, reads
 * the events from the store and sends them to those who may see the session (its owner by its attested opening, the
 * auditors). What is sent is what the recording holds, masked as recorded: the same lines /api/sessions/:id/events
 * gives, never a token (tokens are not recorded).
 *
 * Announcements are gathered for `everyMs` (100 ms) so that a busy session costs one notification per interval, not one
 * per message; nothing is read from the store unless someone here may see the session.
 */

export interface LiveExchangesOptions {
  recorder: Recorder;
  store: Store;
  live: LiveEvents;
  /** Other replicas' announcements; absent or not live: this replica's own sessions only. */
  bus?: ChangeBus | undefined;
  everyMs?: number;
}

/** Events in one live message at most: the console reads a longer run from the API. */
const eventsPerMessage = 100;
/** A payload longer than this is left out of the live line (the console reads it from the API). */
export const liveLineMaxChars = 16_384;
/** Sessions whose attested owner is remembered (a session's owner never changes). */
const ownersKept = 10_000;

export class LiveExchanges {
  readonly #o: LiveExchangesOptions;
  readonly #everyMs: number;
  /** This replica's committed ranges not yet announced. */
  #pending = new Map<string, CommittedRange>();
  #timer: NodeJS.Timeout | undefined;
  readonly #owners = new Map<string, AttestedSession>();
  /** Each session's deliveries run one after another, so its events reach a listener in order. */
  readonly #deliveries = new Map<string, Promise<void>>();
  #closed = false;

  constructor(o: LiveExchangesOptions) {
    this.#o = o;
    this.#everyMs = o.everyMs ?? 100;
    o.recorder.onCommitted((sessions) => this.#committed(sessions));
    if (o.bus?.live) {
      o.bus.on('exchange', (c) => {
        const range = c.data;
        if (!Array.isArray(range) || !Number.isSafeInteger(range[0]) || !Number.isSafeInteger(range[1])) return;
        this.#deliver(c.id, { first: range[0] as number, last: range[1] as number });
      });
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #committed(sessions: ReadonlyMap<string, CommittedRange>): void {
    if (this.#closed || sessions.size === 0) return;
    for (const [id, range] of sessions) {
      const held = this.#pending.get(id);
      if (held === undefined) this.#pending.set(id, { ...range });
      else {
        held.first = Math.min(held.first, range.first);
        held.last = Math.max(held.last, range.last);
      }
    }
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#announce(), this.#everyMs);
      this.#timer.unref();
    }
  }

  #announce(): void {
    this.#timer = undefined;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [id, range] of pending) {
      if (this.#o.bus?.live) this.#o.bus.publish('exchange', id, [range.first, range.last]);
      this.#deliver(id, range);
    }
  }

  #deliver(id: string, range: CommittedRange): void {
    if (this.#closed || this.#o.live.listeners === 0) return;
    const before = this.#deliveries.get(id) ?? Promise.resolve();
    const next = before
      .then(() => this.#send(id, range))
      .catch(() => {
        // The store is away for a moment: the console reads the events from the API when it comes back.
      })
      .finally(() => {
        if (this.#deliveries.get(id) === next) this.#deliveries.delete(id);
      });
    this.#deliveries.set(id, next);
  }

  async #send(id: string, range: CommittedRange): Promise<void> {
    const session = await this.#ownerOf(id);
    if (session === undefined) return;
    // A session whose opening does not name its owner (a tampered row) is shown to auditors only, as the API does.
    const owner = session.owned && session.issuer !== null ? { subject: session.subject, issuer: session.issuer } : null;
    if (!this.#o.live.anyMaySee(owner)) return;
    const count = Math.min(range.last - range.first + 1, eventsPerMessage);
    const rows = await this.#o.store.events(id, range.first - 1, count);
    if (rows.length === 0) return;
    const events = rows.map((e) => liveLine(eventLine(session, e)));
    this.#o.live.sessionEvents({ type: 'session-events', id, subject: session.subject, events, more: rows.at(-1)!.seq < range.last }, owner);
  }

  async #ownerOf(id: string): Promise<AttestedSession | undefined> {
    const known = this.#owners.get(id);
    if (known !== undefined) return known;
    const session = await attestSession(this.#o.store, await this.#o.store.getSession(id));
    // Remembered once its owner is attested and its version negotiated (a legacy request's lines name it).
    if (session?.owned && session.protocolVersion !== null) {
      if (this.#owners.size >= ownersKept) this.#owners.delete(this.#owners.keys().next().value!);
      this.#owners.set(id, session);
    }
    return session;
  }
}

/** An event line for the live stream: a long payload is left out (the console reads it from the API). */
function liveLine(line: ReturnType<typeof eventLine>): LiveEventLine {
  const { payload, forwarded, ...rest } = line;
  if (payload.length + (forwarded?.length ?? 0) > liveLineMaxChars) return { ...rest, cut: true };
  return { ...rest, payload, ...(forwarded === undefined ? {} : { forwarded }) };
}
