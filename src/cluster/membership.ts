import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ClusterStore, MemberRow, MemberState } from '../store/cluster.js';
import type { PeerDirectory } from './peer-directory.js';

/**
 * This replica's place among the replicas sharing the store: it registers its instance id and internal address,
 * heart-beats, says when it drains and leaves, and keeps in memory where the others are (the peer directory the
 * internal hop asks on every forwarded request). A replica silent for `goneAfterMs` is gone: those who notice tell
 * their listeners (its recordings are sealed, its held reviews interrupted). The table is re-read at each heartbeat
 * and whenever a change notification says a replica joined or left.
 */

export class DuplicateInstanceError extends Error {
  constructor(id: string, address: string | null) {
    super(
      `another gateway is running with instance id '${id}'${address ? ` (at ${address})` : ''} on this store: two live gateways must not share ` +
        "one, or each would seal the other's sessions. Give each replica its own recording.instanceId (or its own data directory, where the id is kept), " +
        'or stop the other one first',
    );
    this.name = 'DuplicateInstanceError';
  }
}

/** This replica's instance id was taken by another process (another boot holds its row): it must stop serving. */
export class InstanceIdTakenError extends Error {
  constructor(id: string) {
    super(
      `another gateway took over instance id '${id}' (recording.instanceId) on this store while this one was silent past cluster.goneAfter: ` +
        "two gateways share it, and each would seal the other's sessions. This one stops. Give each replica its own recording.instanceId " +
        '(or its own data directory, where the id is kept)',
    );
    this.name = 'InstanceIdTakenError';
  }
}

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
  /** This process's clock (ms): only for tests of a replica whose clock is off. Heartbeats are the store's clock. */
  clock?: () => number;
}

export class Membership implements PeerDirectory {
  readonly instanceId: string;
  /**
   * This process's nonce: what tells it from an earlier run, or from a duplicate, with the same id. It names the
   * host and process, so that a restart on the same host can tell at once that the earlier process is dead.
   */
  readonly boot = `${hostname()}/${process.pid}/${randomBytes(9).toString('base64url')}`;
  #state: MemberState = 'serving';
  /** Every replica as last read. */
  #members = new Map<string, MemberRow>();
  /**
   * When (this process's clock, ms) each replica's heartbeat was last seen to move. Liveness is judged by it, not by
   * comparing the heartbeat's own time (the other replica's clock) with this clock: a replica whose clock is off by
   * more than goneAfter is then still seen alive while it beats, and never has its live sessions sealed.
   */
  readonly #progress = new Map<string, { heartbeatAtUs: number; seenAtMs: number }>();
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
  /** When (this clock, ms) a recheck last read the table: at most one per recheckMs. */
  #recheckedAtMs = Number.NEGATIVE_INFINITY;
  readonly #now: () => number;

  private constructor(private readonly o: MembershipOptions) {
    this.instanceId = o.instanceId;
    this.#address = o.address ?? null;
    this.#now = o.clock ?? Date.now;
  }

  /** The gateway listens: its internal address is now known (a port chosen at listen), and said at once. */
  async listening(address: string): Promise<void> {
    this.#address = address;
    await this.#beat();
    this.#changed();
  }

  get address(): string | null {
    return this.#address;
  }

  /**
   * Registers this replica. A row of the same id whose heartbeat is fresh belongs to a live process, or to one that
   * just died (a crash, then a quick restart): it is watched for goneAfter and a heartbeat more, and if it beats again
   * this start fails with DuplicateInstanceError; if not, it is gone by the membership's own measure and the id is
   * taken over (the earlier process, should it wake, finds its row taken and stops: onTaken).
   */
  static async join(o: MembershipOptions): Promise<Membership> {
    const m = new Membership(o);
    await m.#claim();
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
    if (m === undefined || m.address === null || !this.#alive(m, this.#now())) return undefined;
    return m.address;
  }

  serving(): string[] {
    const now = this.#now();
    return [...this.#members.values()]
      .filter((m) => m.id !== this.instanceId && m.state === 'serving' && m.address !== null && this.#alive(m, now))
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
    const now = this.#now();
    if (now - this.#recheckedAtMs < (this.o.recheckMs ?? 500)) return Promise.resolve();
    this.#recheckedAtMs = now;
    return this.refresh();
  }

  /**
   * Whether this replica is the one that recovers what gone replicas left (seals their sessions): the serving replica
   * of the lowest id, as last read, so that two survivors never seal one session at once. Alone, it is this one.
   */
  recovers(): boolean {
    const now = this.#now();
    const serving = [...this.#members.values()].filter((m) => m.state === 'serving' && this.#alive(m, now)).map((m) => m.id);
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

  #changed(): void {
    for (const l of this.#changeListeners) l();
  }

  /** Whether replica `id` is alive as last read (heart-beating within goneAfter, not gone); false when unknown. */
  isAlive(id: string): boolean {
    const m = this.#members.get(id);
    return m !== undefined && this.#alive(m, this.#now());
  }

  #alive(m: MemberRow, nowMs: number): boolean {
    if (m.state === 'gone') return false;
    const seen = this.#progress.get(m.id);
    // Not watched (a row read apart from the table, at claim): its heartbeat's age by the store's clock.
    if (seen === undefined || seen.heartbeatAtUs !== m.heartbeatAtUs) return m.ageUs < this.o.goneAfterMs * 1000;
    return nowMs - seen.seenAtMs < this.o.goneAfterMs;
  }

  /**
   * Notes the replicas whose heartbeat moved since the last read. A row seen for the first time is as old as the
   * store's clock says (heartbeats are written by it): neither this clock nor the replica's is compared with anything.
   */
  #watch(rows: MemberRow[], nowMs: number): void {
    const ids = new Set<string>();
    for (const m of rows) {
      ids.add(m.id);
      const seen = this.#progress.get(m.id);
      if (seen?.heartbeatAtUs === m.heartbeatAtUs) continue;
      const seenAtMs = seen === undefined ? nowMs - Math.max(0, m.ageUs / 1000) : nowMs;
      this.#progress.set(m.id, { heartbeatAtUs: m.heartbeatAtUs, seenAtMs });
    }
    for (const id of this.#progress.keys()) if (!ids.has(id)) this.#progress.delete(id);
  }

  /**
   * Reads the table again when the next live replica would be gone if it stays silent, when that comes before the
   * next heartbeat's read: a replica killed is found gone goneAfter after its last beat was seen, not up to a
   * heartbeat later (and its sessions sealed that much sooner).
   */
  #readAtExpiry(rows: MemberRow[], nowMs: number): void {
    clearTimeout(this.#expiry);
    if (this.#left) return;
    let soonest = Number.POSITIVE_INFINITY;
    for (const m of rows) {
      if (m.id === this.o.instanceId || !this.#alive(m, nowMs)) continue;
      const seen = this.#progress.get(m.id);
      const lastSeenMs = seen !== undefined && seen.heartbeatAtUs === m.heartbeatAtUs ? seen.seenAtMs : nowMs - m.ageUs / 1000;
      soonest = Math.min(soonest, lastSeenMs + this.o.goneAfterMs);
    }
    const inMs = soonest - nowMs;
    if (!Number.isFinite(inMs) || inMs >= this.o.heartbeatMs) return;
    this.#expiry = setTimeout(() => void this.refresh().catch(() => {}), Math.max(0, inMs) + 10);
    this.#expiry.unref();
  }

  async #claim(): Promise<void> {
    const { store, instanceId: id, heartbeatMs } = this.o;
    // The heartbeat's time is the store's; the start time is only said (this clock).
    const row = () => ({ id, address: this.#address, startedAtUs: this.#now() * 1000, boot: this.boot });
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await store.member(id);
      if (existing !== undefined && this.#alive(existing, this.#now()) && !deadOnThisHost(existing.boot)) {
        // Beating still? Watch it until it would be gone by the membership's measure, and a heartbeat more: a process
        // whose beats stall for less than that (a pause, a slow store) keeps its id.
        const deadline = Date.now() + this.o.goneAfterMs + heartbeatMs;
        this.o.log.warn({ instance: id, boot: existing.boot }, 'instance id has a fresh heartbeat: checking whether another gateway holds it');
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, Math.min(250, heartbeatMs / 4)));
          const now = await store.member(id);
          if (now !== undefined && now.heartbeatAtUs !== existing.heartbeatAtUs && now.state !== 'gone') throw new DuplicateInstanceError(id, now.address);
        }
        this.o.log.warn({ instance: id }, 'the earlier process with this instance id is silent (it crashed or was killed): taking the id over');
      }
      if (await store.claimMember(row(), existing === undefined ? undefined : existing.boot)) return;
      // Another process claimed it in between: look again.
    }
    throw new DuplicateInstanceError(id, null);
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
    try {
      rows = await this.o.store.members();
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'the membership could not be read; the last one read stands');
      return;
    }
    const now = this.#now();
    this.#watch(rows, now);
    this.#members = new Map(rows.map((r) => [r.id, r]));
    for (const l of this.#readListeners) l();
    this.#readAtExpiry(rows, now);
    const gone: string[] = [];
    for (const m of rows) {
      if (m.id === this.o.instanceId) continue;
      if (this.#alive(m, now)) this.#reportedGone.delete(m.id);
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

/** Whether a boot nonce names a process of this host that no longer runs (so its id is free without waiting). */
function deadOnThisHost(boot: string | null): boolean {
  const [host, pid] = (boot ?? '').split('/');
  const n = Number(pid);
  if (host !== hostname() || !Number.isInteger(n) || n <= 0 || n === process.pid) return false;
  try {
    process.kill(n, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
