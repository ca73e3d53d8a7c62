import type { Logger } from 'pino';
import type { ClusterStore, MemberRow, MemberState } from '../store/cluster.js';
import { loopbackConflict, sharedAddressMessage, sharingAddress } from './address-conflicts.js';
import { bootNonce } from './boot.js';
import { claimInstanceId, InstanceIdTakenError } from './claim.js';
import { Liveness } from './liveness.js';
import type { PeerDirectory } from './peer-directory.js';

/**
 * This replica's place among the replicas sharing the store: it registers its instance id and internal address,
 * heart-beats, says when it drains and leaves, and keeps in memory where the others are (the peer directory the
 * internal hop asks on every forwarded request). A replica silent for `goneAfterMs` is gone (liveness.ts: silence
 * on a monotonic clock, and none counted while the store cannot be read): those who notice tell their listeners (its
 * recordings are sealed, its held reviews interrupted). The table is re-read at each heartbeat and whenever a change
 * notification says a replica joined or left.
 */

export { DuplicateInstanceError, InstanceIdTakenError } from './claim.js';

export interface MembershipOptions {
  store: ClusterStore;
  instanceId: string;
  /** The internal base URL other replicas reach this one at; undefined until the gateway listens (`listening`). */
  address?: string;
  goneAfterMs: number;
  heartbeatMs: number;
  log: Logger;
  /**
   * The least time between two reads of the membership asked for by a replica not found alive (`aliveNow`,
   * `addressNow`); concurrent askers share one read. Default 500 ms.
   */
  recheckMs?: number;
  /**
   * This process's wall clock (ms), which only says when it started: for tests of a replica whose clock is off or
   * steps. Heartbeats are the store's clock, and silence is measured on `monotonic`.
   */
  clock?: () => number;
  /** A monotonic clock (ms), what silence is measured on; default performance.now. For tests: time passing at will. */
  monotonic?: () => number;
  /** Rows of replicas silent for longer than this, whose sessions are sealed and reviews ended, are deleted. Default a day. */
  pruneAfterMs?: number;
  /** The least time between two prunings by this replica. Default 10 minutes. */
  pruneEveryMs?: number;
}

const dayMs = 86_400_000;

export class Membership implements PeerDirectory {
  readonly instanceId: string;
  /**
   * This process's nonce: what tells it from an earlier run, or from a duplicate, with the same id. It names the
   * host, PID namespace and process (boot.ts), so that a restart in the same place can tell at once that the earlier
   * process is dead.
   */
  readonly boot = bootNonce();
  #state: MemberState = 'serving';
  /** Every replica as last read. */
  #members = new Map<string, MemberRow>();
  /** When each replica's heartbeat was last seen to move, and so which are alive. */
  readonly #liveness: Liveness;
  /** The replicas said (as an error) to share this one's internal address, with the address. */
  readonly #saidSharing = new Set<string>();
  /** Replicas already reported gone (so each is reported once per departure). */
  readonly #reportedGone = new Set<string>();
  readonly #goneListeners: Array<(ids: string[]) => void> = [];
  readonly #changeListeners: Array<() => void> = [];
  readonly #readListeners: Array<() => void> = [];
  readonly #takenListeners: Array<(err: InstanceIdTakenError) => void> = [];
  /** Another process took this id: nothing more is written under it. */
  #taken: InstanceIdTakenError | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** A read at the moment the next live replica would be gone if it stays silent. */
  #expiry: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #again = false;
  #left = false;
  #address: string | null;
  /** When (the monotonic clock, ms) this replica last pruned the table, and whether it is pruning now. */
  #prunedAtMs = Number.NEGATIVE_INFINITY;
  #pruning = false;
  /** When (the monotonic clock, ms) a recheck last read the table: at most one per recheckMs. */
  #recheckedAtMs = Number.NEGATIVE_INFINITY;
  readonly #monotonic: () => number;

  private constructor(private readonly o: MembershipOptions) {
    this.instanceId = o.instanceId;
    this.#address = o.address ?? null;
    this.#monotonic = o.monotonic ?? (() => performance.now());
    this.#liveness = new Liveness(o.goneAfterMs, this.#monotonic);
  }

  /**
   * The gateway listens: its internal address is now known (a port chosen at listen), and said at once. Refused
   * (InternalAddressConflictError) when it is a loopback address a live replica on another machine registered too.
   */
  async listening(address: string): Promise<void> {
    await this.refresh();
    const conflict = loopbackConflict(address, this.instanceId, this.#members.values(), (m) => this.#liveness.alive(m));
    if (conflict !== undefined) throw conflict;
    this.#address = address;
    await this.#beat();
    this.#changed();
  }

  get address(): string | null {
    return this.#address;
  }

  /**
   * Registers this replica (claim.ts: a live process with its id refuses it, DuplicateInstanceError; one that stopped
   * beating has its id taken over, and finds that out should it wake: onTaken), reads the table and starts beating.
   */
  static async join(o: MembershipOptions): Promise<Membership> {
    const m = new Membership(o);
    // The heartbeat's time is the store's; the start time is only said (the wall clock).
    await claimInstanceId({
      ...o,
      address: m.#address,
      boot: m.boot,
      startedAtUs: (o.clock ?? Date.now)() * 1000,
      alive: (row) => m.#liveness.alive(row),
      monotonic: m.#monotonic,
    });
    await m.refresh();
    m.#timer = setInterval(() => void m.#beat(), o.heartbeatMs);
    m.#timer.unref();
    return m;
  }

  get state(): MemberState {
    return this.#state;
  }

  addressOf(instanceId: string): string | undefined {
    const m = this.#members.get(instanceId);
    if (m === undefined || m.address === null || !this.#liveness.alive(m)) return undefined;
    return m.address;
  }

  serving(): string[] {
    return [...this.#members.values()]
      .filter((m) => m.id !== this.instanceId && m.state === 'serving' && m.address !== null && this.#liveness.alive(m))
      .map((m) => m.id);
  }

  /**
   * The address of a live replica, reading the membership again before saying there is none: a replica that joined
   * since the last read (its first sessions reach the others before its notification does), or that only looked
   * silent then, is not taken for gone. The read is rate-limited (recheckMs) and shared by concurrent callers.
   */
  async addressNow(instanceId: string): Promise<string | undefined> {
    const known = this.addressOf(instanceId);
    if (known !== undefined) return known;
    await this.#recheck();
    return this.addressOf(instanceId);
  }

  /** Whether replica `id` is alive, reading the membership again (as addressNow) before saying no. */
  async aliveNow(id: string): Promise<boolean> {
    if (this.isAlive(id)) return true;
    await this.#recheck();
    return this.isAlive(id);
  }

  #recheck(): Promise<void> {
    if (this.#refreshing !== undefined) return this.#refreshing;
    const now = this.#monotonic();
    if (now - this.#recheckedAtMs < (this.o.recheckMs ?? 500)) return Promise.resolve();
    this.#recheckedAtMs = now;
    return this.refresh();
  }

  /**
   * Whether this replica is the one that recovers what gone replicas left (seals their sessions): the serving replica
   * of the lowest id, as last read, so that two survivors never seal one session at once. Alone, it is this one.
   */
  recovers(): boolean {
    const serving = [...this.#members.values()].filter((m) => m.state === 'serving' && this.#liveness.alive(m)).map((m) => m.id);
    if (this.#state === 'serving' && !serving.includes(this.instanceId)) serving.push(this.instanceId);
    return serving.sort()[0] === this.instanceId;
  }

  /** The replicas as last read, this one among them. */
  members(): MemberRow[] {
    return [...this.#members.values()];
  }

  /** Told the ids of replicas found gone (silent past goneAfter, or left). */
  onGone(listener: (ids: string[]) => void): void {
    this.#goneListeners.push(listener);
    // Those found gone before it listened (at join) are its business too.
    const already = [...this.#reportedGone];
    if (already.length > 0) queueMicrotask(() => listener(already));
  }

  /**
   * Told once when another process took this replica's id (its heartbeat found the row holding another boot): the
   * gateway must stop serving, fail closed. Nothing is written under the id by this process after that.
   */
  onTaken(listener: (err: InstanceIdTakenError) => void): void {
    this.#takenListeners.push(listener);
    if (this.#taken !== undefined) {
      const taken = this.#taken;
      queueMicrotask(() => listener(taken));
    }
  }

  /** Why this replica lost its id, or undefined while it holds it. */
  get taken(): InstanceIdTakenError | undefined {
    return this.#taken;
  }

  /** Told after each read of the table (members() is then what was read). */
  onRead(listener: () => void): void {
    this.#readListeners.push(listener);
  }

  /** Told when this replica's own row changed (joined, draining, left), so other replicas can be notified. */
  onChange(listener: () => void): void {
    this.#changeListeners.push(listener);
  }

  /** Reads the table again (coalesced: a call during a read runs one more after it). */
  refresh(): Promise<void> {
    if (this.#refreshing !== undefined) {
      this.#again = true;
      return this.#refreshing;
    }
    this.#refreshing = this.#refresh().finally(() => {
      this.#refreshing = undefined;
      if (this.#again) {
        this.#again = false;
        void this.refresh();
      }
    });
    return this.#refreshing;
  }

  /** Shutdown has begun: other replicas see this one draining (it still finishes what it has in flight). */
  async drain(): Promise<void> {
    if (this.#left) return;
    this.#state = 'draining';
    await this.#beat();
    this.#changed();
  }

  /** Leaves the membership: the row says gone, so no replica routes here and the id is free at once. */
  async leave(): Promise<void> {
    if (this.#left) return;
    if (this.#timer) clearInterval(this.#timer);
    clearTimeout(this.#expiry);
    this.#state = 'gone';
    await this.#beat();
    this.#left = true;
    clearTimeout(this.#expiry);
    this.#changed();
  }

  /** Another live replica registered at this one's internal address: said once, as an error naming the fix. */
  #sayWhoSharesTheAddress(): void {
    const address = this.#address;
    for (const m of sharingAddress(address, this.instanceId, this.#members.values(), (r) => this.#liveness.alive(r))) {
      const said = `${m.id} ${address}`;
      if (address === null || this.#saidSharing.has(said)) continue;
      this.#saidSharing.add(said);
      this.o.log.error({ replica: m.id, address }, sharedAddressMessage(m.id, address));
    }
  }

  #changed(): void {
    for (const l of this.#changeListeners) l();
  }

  /** Whether replica `id` is alive as last read (heart-beating within goneAfter, not gone); false when unknown. */
  isAlive(id: string): boolean {
    const m = this.#members.get(id);
    return m !== undefined && this.#liveness.alive(m);
  }

  /**
   * Reads the table again when the next live replica would be gone if it stays silent, when that comes before the
   * next heartbeat's read: a replica killed is found gone goneAfter after its last beat was seen, not up to a
   * heartbeat later (and its sessions sealed that much sooner).
   */
  #readAtExpiry(rows: MemberRow[]): void {
    clearTimeout(this.#expiry);
    if (this.#left) return;
    const inMs = this.#liveness.nextExpiryInMs(rows.filter((m) => m.id !== this.o.instanceId));
    if (!Number.isFinite(inMs) || inMs >= this.o.heartbeatMs) return;
    this.#expiry = setTimeout(() => void this.refresh().catch(() => {}), Math.max(0, inMs) + 10);
    this.#expiry.unref();
  }

  /**
   * Deletes the rows of replicas gone for longer than pruneAfter whose work is done (their sessions sealed, their
   * reviews ended): without it every replica ever run stays (a Deployment's pod names add one a rollout), and every
   * start reports them all gone again. Done by the replica that recovers, so by one at a time, and only when the last
   * read shows such a row.
   */
  #pruneWhenDue(rows: MemberRow[]): void {
    const afterMs = this.o.pruneAfterMs ?? dayMs;
    const now = this.#monotonic();
    if (this.#left || this.#pruning || now - this.#prunedAtMs < (this.o.pruneEveryMs ?? 600_000)) return;
    // Judged gone here (on this process's clock) as well as old by the store's: a step of the store's clock alone
    // must not take the rows of live replicas, which would then find their ids taken and stop.
    const candidates = rows.filter((m) => m.id !== this.o.instanceId && m.ageUs > afterMs * 1000 && !this.#liveness.alive(m)).map((m) => m.id);
    if (candidates.length === 0 || !this.recovers()) return;
    this.#prunedAtMs = now;
    this.#pruning = true;
    this.o.store
      .pruneMembers(afterMs * 1000, candidates)
      .then(
        (ids) => {
          if (ids.length > 0) this.o.log.info({ instances: ids }, 'replicas gone for long, their work done, removed from the membership');
        },
        (err: Error) => this.o.log.warn({ err: err.message }, 'the membership could not be pruned; tried again later'),
      )
      .finally(() => (this.#pruning = false));
  }

  async #beat(): Promise<void> {
    if (this.#left || this.#taken !== undefined) return;
    try {
      const held = await this.o.store.beatMember(this.o.instanceId, this.boot, this.#state, this.#address);
      if (!held) return this.#lost();
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'membership heartbeat failed');
    }
    await this.refresh().catch(() => {});
  }

  /** The row holds another boot: this process stops writing under the id and tells the gateway (fail closed). */
  #lost(): void {
    if (this.#taken !== undefined) return;
    this.#taken = new InstanceIdTakenError(this.o.instanceId);
    if (this.#timer) clearInterval(this.#timer);
    clearTimeout(this.#expiry);
    this.#left = true;
    this.o.log.error({ instance: this.o.instanceId, boot: this.boot }, this.#taken.message);
    for (const l of this.#takenListeners) l(this.#taken);
  }

  async #refresh(): Promise<void> {
    let rows: MemberRow[];
    const startedAt = this.#monotonic();
    try {
      rows = await this.o.store.members();
    } catch (err) {
      // Silence is not counted until the table is read again (liveness.ts).
      this.#liveness.blind();
      this.o.log.warn({ err: (err as Error).message }, 'the membership could not be read; the last one read stands');
      return;
    }
    // A read that took longer than a heartbeat met a store that others' beats may have waited on as long.
    if (this.#monotonic() - startedAt > this.o.heartbeatMs) this.#liveness.blind(startedAt);
    this.#liveness.saw(rows);
    this.#members = new Map(rows.map((r) => [r.id, r]));
    for (const l of this.#readListeners) l();
    this.#sayWhoSharesTheAddress();
    this.#readAtExpiry(rows);
    this.#pruneWhenDue(rows);
    for (const id of this.#reportedGone) if (!this.#members.has(id)) this.#reportedGone.delete(id);
    const gone: string[] = [];
    for (const m of rows) {
      if (m.id === this.o.instanceId) continue;
      if (this.#liveness.alive(m)) this.#reportedGone.delete(m.id);
      else if (!this.#reportedGone.has(m.id)) {
        this.#reportedGone.add(m.id);
        gone.push(m.id);
      }
    }
    if (gone.length === 0) return;
    this.o.log.info({ instances: gone }, 'replicas gone from the membership');
    for (const l of this.#goneListeners) {
      try {
        l(gone);
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'a listener of gone replicas failed');
      }
    }
  }
}
