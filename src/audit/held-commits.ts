import type { CommittedBatch } from '../recording/committed-listeners.js';
import type { AuditCursorMove, AuditPendingSession } from '../store/audit.js';
import type { EventRow } from '../store/types.js';
import { type RecordSession, toAuditRecord } from './record.js';
import { maxMoves, type ShipContext } from './ship-context.js';
import type { AuditRecord } from './sink.js';

/** Sessions whose cursor the shipper keeps in mind at most: past it, the others' events are read from the store. */
const maxTracked = 20_000;
/** Committed events' payloads held for the next round at most (besides ShipperOptions.maxHeldEvents). */
const maxFreshChars = 32 * 1024 * 1024;

/** A session whose events can be shipped from the commits told of: its facts, and the cursor the store has for it. */
interface Tracked {
  facts: RecordSession;
  /** The last event the sink took or passed over (written to the store at the end of the round that shipped it). */
  cursor: number;
}

/**
 * A shipper's live path: the events of durable batches it was told of, held for its next round, and the cursors of
 * the sessions it ships from them without reading the store back.
 */
export class HeldCommits {
  #tracked = new Map<string, Tracked>();
  /** Events of durable batches not looked at yet, in commit order. */
  #fresh: EventRow[] = [];
  #freshChars = 0;

  /** Whether no events wait for the next round. */
  get empty(): boolean {
    return this.#fresh.length === 0;
  }

  /**
   * Keeps a durable batch's events for the next round, and the cursors (none yet) of the sessions it opened; false,
   * keeping nothing, when that would hold more than `maxEvents` events (or too many characters).
   */
  hold(batch: CommittedBatch, watermarkUs: number, maxEvents: number): boolean {
    let chars = 0;
    for (const event of batch.events) chars += event.payload.length;
    if (this.#fresh.length + batch.events.length > maxEvents || this.#freshChars + chars > maxFreshChars) return false;
    for (const row of batch.opened) {
      // A session opened before the watermark is not this sink's (it was first started later).
      if (row.openedAtUs < watermarkUs || this.#tracked.size >= maxTracked) continue;
      const { id: sessionId, instanceId, connection, subject, email, edge } = row;
      this.#tracked.set(sessionId, { facts: { sessionId, instanceId, connection, subject, email, edge }, cursor: -1 });
    }
    for (const event of batch.events) this.#fresh.push(event);
    this.#freshChars += chars;
    return true;
  }

  /** Drops what it holds: the store is read for everything from the durable cursors on. */
  forget(): void {
    this.#tracked.clear();
    this.#fresh = [];
    this.#freshChars = 0;
  }

  /** After the store path has shipped a session up to `cursor`: its next events go out from memory. */
  track(session: AuditPendingSession, cursor: number): void {
    if (session.sealed) {
      this.#tracked.delete(session.sessionId);
      return;
    }
    const t = this.#tracked.get(session.sessionId);
    if (t !== undefined) t.cursor = Math.max(t.cursor, cursor);
    else if (this.#tracked.size < maxTracked) this.#tracked.set(session.sessionId, { facts: session, cursor });
  }

  /**
   * Ships the events held, for the sessions whose cursor it knows; the others (not tracked, or with a gap: a batch it
   * was not told of) are returned, to be read from the store. The cursors are written once, at the end (or before
   * retrying a send the sink refused, so that a restart meanwhile sends little again). Undefined when none was held.
   */
  async ship(ctx: ShipContext): Promise<Set<string> | undefined> {
    if (this.#fresh.length === 0) return undefined;
    const fresh = this.#fresh;
    this.#fresh = [];
    this.#freshChars = 0;
    const untracked = new Set<string>();
    /** The moves of what the sink has taken, and of the batch being filled. */
    const taken = new Map<string, AuditCursorMove>();
    let filling = new Map<string, AuditCursorMove>();
    let records: AuditRecord[] = [];
    const writeTaken = async () => {
      const moves = [...taken.values()];
      for (let i = 0; i < moves.length; i += maxMoves) await ctx.store.advanceAuditCursors(ctx.name, moves.slice(i, i + maxMoves));
      taken.clear();
    };
    const send = async () => {
      if (records.length > 0) await ctx.deliver(records, () => writeTaken().catch(() => {}));
      for (const [id, move] of filling) taken.set(id, move);
      filling = new Map();
      records = [];
    };
    for (const event of fresh) {
      ctx.throwIfStopped();
      const t = this.#tracked.get(event.sessionId);
      if (t === undefined) {
        untracked.add(event.sessionId);
        continue;
      }
      // Shipped already from the store (a scan read it after it was committed).
      if (event.seq <= t.cursor) continue;
      if (event.seq !== t.cursor + 1) {
        this.#tracked.delete(event.sessionId);
        untracked.add(event.sessionId);
        continue;
      }
      const record = toAuditRecord(t.facts, event, ctx.wanted);
      if (record !== undefined) records.push(record);
      t.cursor = event.seq;
      ctx.passed(1);
      // A session's close is its last event (written with its seal).
      const done = event.kind === 'close';
      filling.set(event.sessionId, { sessionId: event.sessionId, seq: event.seq, done });
      if (done) this.#tracked.delete(event.sessionId);
      if (records.length >= ctx.maxBatch) await send();
    }
    await send();
    await writeTaken();
    return untracked;
  }
}
