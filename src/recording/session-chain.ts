import { sessionGenesis } from './chain.js';
import type { Commit } from './commit.js';

/**
 * One session's hash chain as the recorder tracks it: its durable head (the next sequence number and the
 * hash of the last event written), the commit its queued events will land in, and whether it can still take
 * events. A chain is in at most one batch at a time, so its events are written in order whatever else runs.
 */
export class SessionChain {
  nextSeq = 0;
  lastHash: string;
  /** The commit of the events queued and not yet taken into a batch. */
  pending: Commit | undefined;
  /** The commit of the chain's latest event (pending or in flight): what write-ahead waits on. */
  lastCommit: Commit | undefined;
  /** A batch holding this chain's events is being written. */
  inFlight = false;
  /** Write-ahead: a batch with this chain's events failed; nothing more is appended. */
  broken = false;
  /** Best-effort: events lost since the last durable one, recorded as a gap before the next. */
  lost = 0;
  /** A write with this chain's events failed unanswered and may have landed: the head is read back before the next. */
  uncertain = false;
  /** Told once when the chain breaks, so the session can end (fail closed). */
  onBroken?: (err: Error) => void;
  /**
   * A session left open that this recorder seals (sweeper.ts): its one item, the seal, is written alone and only while
   * the session is still open (another gateway may be sealing it too).
   */
  recovering = false;
  /** The session's data key when recordings are encrypted (recording.encryption): every payload is sealed under it. */
  dataKey?: Buffer;

  constructor(
    readonly sessionId: string,
    /** performance.now() when the session opened: monotonic offsets count from it. */
    readonly t0 = performance.now(),
  ) {
    this.lastHash = sessionGenesis(sessionId);
  }

  monoUs(): number {
    return Math.round((performance.now() - this.t0) * 1000);
  }
}
