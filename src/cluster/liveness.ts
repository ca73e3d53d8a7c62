import type { MemberRow } from '../store/cluster.js';

/**
 * Which replicas are alive, by when each one's heartbeat was last seen to move: one silent for goneAfter is gone.
 *
 * Silence is measured on this process's monotonic clock (performance.now), between the reads that saw the heartbeat
 * move. Neither the heartbeat's own time (the store's clock) nor this process's wall clock is compared with anything,
 * so a replica whose clock is off, or a step of this one (NTP, a VM resumed), never makes a live replica gone.
 *
 * While the store cannot be read, nothing is seen, and a replica's silence says nothing: its beats fail too, and it
 * beats again only some time after the store is back. So while reads fail, liveness is judged as of the last read
 * that succeeded (the store may have gone down just after it); and at the first read that succeeds after, every
 * replica still alive at that read is taken as seen then. A replica must stay silent for a full goneAfter after the store is back before it is gone (a failover of the
 * database longer than goneAfter takes no live replica for gone).
 *
 * That reset is granted once per silence (until the replica's heartbeat moves again). Later blind spells in the same
 * silence only stop its clock for their length, and for goneAfter at most in all: a dead replica must be found gone
 * even when every third read fails or every read is slow, or it would keep its sessions unsealed and be picked for
 * ever.
 */
/** What is known of a replica's silence: its heartbeat as last read, and since when (monotonic ms) it is silent. */
interface Progress {
  heartbeatAtUs: number;
  seenAtMs: number;
  /** A blind spell has reset this silence already (granted once). */
  reset: boolean;
  /** How much of later blind spells this silence was excused (at most goneAfter). */
  excusedMs: number;
}

export class Liveness {
  readonly #progress = new Map<string, Progress>();
  /** When (this monotonic clock, ms) the table was last read. */
  #readAtMs: number | undefined;
  /** While reads fail: since when nothing is seen (the last read that succeeded); undefined while they succeed. */
  #blindSinceMs: number | undefined;

  constructor(
    private readonly goneAfterMs: number,
    private readonly now: () => number,
  ) {}

  /**
   * A read of the table failed, or took so long that beats may have stalled as long: silence since the last read that
   * succeeded is not counted.
   */
  blind(sinceMs?: number): void {
    this.#blindSinceMs ??= sinceMs ?? this.#readAtMs ?? this.now();
  }

  /**
   * A read of the table: notes whose heartbeat moved. A row seen for the first time is as old as the store's clock
   * says (heartbeats are written by it); after a blind spell, as the class says.
   */
  saw(rows: readonly MemberRow[]): void {
    const now = this.now();
    const blindSince = this.#blindSinceMs;
    this.#blindSinceMs = undefined;
    this.#readAtMs = now;
    const ids = new Set<string>();
    for (const m of rows) {
      ids.add(m.id);
      const seen = this.#progress.get(m.id);
      if (seen?.heartbeatAtUs === m.heartbeatAtUs) {
        if (blindSince !== undefined && blindSince - seen.seenAtMs < this.goneAfterMs) this.#excuse(seen, now, blindSince);
        continue;
      }
      const seenAtMs = seen === undefined ? this.#firstSeenAtMs(m, now, blindSince) : now;
      // A row first seen after a blind spell and taken as seen now has had its reset.
      this.#progress.set(m.id, { heartbeatAtUs: m.heartbeatAtUs, seenAtMs, reset: seenAtMs === now && blindSince !== undefined, excusedMs: 0 });
    }
    for (const id of this.#progress.keys()) if (!ids.has(id)) this.#progress.delete(id);
  }

  /** Whether this replica is alive (heart-beating within goneAfter, and not gone from the membership). */
  alive(m: MemberRow): boolean {
    if (m.state === 'gone') return false;
    const lastSeen = this.#lastSeenMs(m);
    // Not watched (a row read apart from the table, at claim): its heartbeat's age by the store's clock.
    if (lastSeen === undefined) return m.ageUs < this.goneAfterMs * 1000;
    return (this.#blindSinceMs ?? this.now()) - lastSeen < this.goneAfterMs;
  }

  /** In how long (ms) the first of these replicas still alive would be gone if it stays silent; Infinity for none. */
  nextExpiryInMs(rows: readonly MemberRow[]): number {
    const now = this.now();
    let soonest = Number.POSITIVE_INFINITY;
    for (const m of rows) {
      if (!this.alive(m)) continue;
      const lastSeen = this.#lastSeenMs(m) ?? now - m.ageUs / 1000;
      soonest = Math.min(soonest, lastSeen + this.goneAfterMs - now);
    }
    return soonest;
  }

  /**
   * A row not seen before is as old as the store's clock says. After a blind spell it is taken as seen now, unless it
   * was silent for goneAfter already when the spell began.
   */
  #firstSeenAtMs(m: MemberRow, now: number, blindSince: number | undefined): number {
    const ageMs = Math.max(0, m.ageUs / 1000);
    if (blindSince !== undefined && ageMs - (now - blindSince) < this.goneAfterMs) return now;
    return now - ageMs;
  }

  /** A blind spell from `blindSince` to `now` in a silence: the first resets it, later ones stop its clock (bounded). */
  #excuse(seen: Progress, now: number, blindSince: number): void {
    if (!seen.reset) {
      seen.reset = true;
      seen.seenAtMs = now;
      return;
    }
    const credit = Math.max(0, Math.min(now - blindSince, this.goneAfterMs - seen.excusedMs));
    seen.excusedMs += credit;
    seen.seenAtMs = Math.min(now, seen.seenAtMs + credit);
  }

  #lastSeenMs(m: MemberRow): number | undefined {
    const seen = this.#progress.get(m.id);
    return seen !== undefined && seen.heartbeatAtUs === m.heartbeatAtUs ? seen.seenAtMs : undefined;
  }
}
