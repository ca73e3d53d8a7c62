import type { Logger } from 'pino';
import type { Keyring } from '../encryption/keyring.js';
import type { EventBoundary, EventDirection, EventKind, NegotiatedFields, SessionRow } from '../store/types.js';
import type { Store } from '../store/store.js';
import { chainOf, type ErasedDetail, type ErasureFactsToRecord, type Item, standaloneCommit, takeCommits, type WrappedDataKey } from './batch.js';
import { BatchScheduler } from './batch-scheduler.js';
import { BatchWriter } from './batch-writer.js';
import { erasureBytes, ledgerGenesis } from './chain.js';
import { Commit } from './commit.js';
import { type CommittedListener, CommittedListeners } from './committed-listeners.js';
import type { SigningKey } from './keys.js';
import type { RecorderOptions, RecordingMode } from './recorder-options.js';
import { RecordingUnavailableError } from './recording-unavailable.js';
import { SessionChain } from './session-chain.js';
import { StoreHealth } from './store-health.js';
import { Sweeper } from './sweeper.js';
import { nowUs } from './time.js';

export { SessionChain } from './session-chain.js';

/**
 * The recorder: the store's only writer. Sessions queue events; the recorder writes them with group commit
 * (batch-scheduler.ts decides when) and settles each session's Commit, which is what write-ahead waits on before a
 * message is forwarded. It keeps which sessions are live and why those it ended unsealed were cut off.
 *
 * Sequence numbers and hashes are assigned when a batch is written, from the durable head of each chain
 * (batch.ts): a batch that fails leaves no hole and nothing to roll back, and what the store holds is always a
 * gapless, verifiable prefix of what happened.
 */

export class Recorder {
  readonly store: Store;
  readonly instanceId: string;
  readonly mode: RecordingMode;
  readonly key: SigningKey;
  /** The KEKs of recording.encryption; undefined when recordings are plain. */
  readonly keyring: Keyring | undefined;
  readonly #log: Logger;
  readonly #heartbeatMs: number;
  readonly #sweepMs: number;
  readonly #sweeper: Sweeper;
  readonly #batches: BatchScheduler;
  readonly #writer: BatchWriter;
  readonly #health: StoreHealth;
  /** Chains of sessions whose seal is not yet durable: never recovered from under them. */
  readonly #live = new Map<string, SessionChain>();
  /** Why sessions this instance ended without a seal were cut off, for the recovery that seals them. */
  readonly #cutOffReasons = new Map<string, string>();
  readonly #timers: NodeJS.Timeout[] = [];
  #closed = false;
  readonly #stats = { commits: 0, events: 0, failedCommits: 0, lostEvents: 0 };
  readonly #committed: CommittedListeners;
  readonly #keysDestroyed: Array<(owner: string) => void> = [];
  readonly #idTakenListeners: Array<(err: Error) => void> = [];
  /** Why nothing more is written under this instance id (another process took it over): closeForWrites. */
  #writesClosed: Error | undefined;

  private constructor(o: RecorderOptions, ledger: { seq: number; hash: string }) {
    this.store = o.store;
    this.instanceId = o.instanceId;
    this.mode = o.mode;
    this.key = o.key;
    this.keyring = o.keyring;
    this.#log = o.log.child({ component: 'recorder' });
    this.#writer = new BatchWriter(o.store, o.key, o.instanceId, ledger, o.writeTimeoutMs ?? 5000);
    this.#batches = new BatchScheduler(this.#writer, o.gatherMs ?? 1, (items) => this.#write(items));
    this.#committed = new CommittedListeners(this.#log);
    const recovered = () => {
      this.#log.warn('the recording store is writable again; sessions it cut off are sealed, new sessions are accepted');
      void this.sweep().catch(() => {});
    };
    const idTaken = (err: Error) => {
      this.#log.error({ instance: this.instanceId }, err.message);
      this.closeForWrites(err);
      for (const l of this.#idTakenListeners) l(err);
    };
    this.#health = new StoreHealth(o.store, o.instanceId, o.boot, o.probeMs ?? 1000, this.#log, recovered, idTaken);
    this.#heartbeatMs = o.heartbeatMs ?? 10_000;
    this.#sweeper = new Sweeper(this, {
      staleAfterMs: o.staleAfterMs ?? 60_000,
      ...(o.recoversOthers ? { recoversOthers: o.recoversOthers } : {}),
      ...(o.alive ? { alive: o.alive } : {}),
      retentionMs: o.retentionMs ?? 0,
      retentionAction: o.retentionAction ?? 'delete',
      ...(o.keepUnshippedFor ? { keepUnshippedFor: o.keepUnshippedFor } : {}),
      erasureSigners: [{ keyId: o.key.keyId, publicKeyPem: o.key.publicKeyPem }, ...(o.trustedKeys ?? [])],
      log: this.#log,
    });
    this.#sweepMs = o.sweepMs ?? 60_000;
  }

  /**
   * Registers the key and the instance, then seals what an earlier run of this instance left open (a crash)
   * and what silent instances left open, then applies retention.
   */
  static async start(o: RecorderOptions): Promise<Recorder> {
    const head = await o.store.ledgerHead(o.instanceId);
    const recorder = new Recorder(o, head === undefined ? { seq: -1, hash: ledgerGenesis(o.instanceId) } : { seq: head.seq, hash: head.hash });
    await o.store.registerKey({ keyId: o.key.keyId, publicKey: o.key.publicKeyPem, instanceId: o.instanceId, createdAtUs: nowUs() });
    // Before the sweep seals what "an earlier run" of this id left open: those must not be another live process's.
    if (!(await o.store.heartbeat(o.instanceId, o.boot === undefined ? {} : { boot: o.boot }))) {
      throw new Error(`another gateway took over instance id '${o.instanceId}' (recording.instanceId) while this one started: give each replica its own`);
    }
    await recorder.sweep();
    recorder.#every(recorder.#heartbeatMs, () => recorder.#health.heartbeat());
    recorder.#every(recorder.#sweepMs, () => void recorder.sweep().catch(() => {}));
    return recorder;
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.#timers.push(t);
  }

  /** Whether new sessions may open: in write-ahead mode, only while the store takes writes; never once closed for writes. */
  get accepting(): boolean {
    return this.#writesClosed === undefined && (this.#health.healthy || this.mode === 'best-effort');
  }

  get healthy(): boolean {
    return this.#health.healthy;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Group commits and events written, commits that failed and events they lost, since start. */
  get stats(): Readonly<{ commits: number; events: number; failedCommits: number; lostEvents: number }> {
    return { ...this.#stats };
  }

  get lastError(): Error | undefined {
    return this.#health.lastError;
  }

  unavailable(): RecordingUnavailableError {
    if (this.#writesClosed !== undefined) return new RecordingUnavailableError(`recording has stopped: ${this.#writesClosed.message}`);
    return new RecordingUnavailableError(
      `the recording store (${this.store.location}) is unavailable${this.#health.lastError ? `: ${this.#health.lastError.message}` : ''}`,
    );
  }

  /** Starts a session's chain and queues its row; throws RecordingUnavailableError when recording cannot take it. */
  openSession(row: SessionRow): SessionChain {
    if (this.#closed || this.#writesClosed !== undefined || (!this.#health.healthy && this.mode === 'write-ahead')) throw this.unavailable();
    const chain = new SessionChain(row.id);
    let dataKey: WrappedDataKey | undefined;
    if (this.keyring !== undefined) {
      const dk = this.keyring.newDataKey(row.id);
      chain.dataKey = dk.key;
      // A remote KEK's wrapping is awaited by the batch that opens the session; until then a failure is not unhandled.
      if (typeof dk.wrapped !== 'string') dk.wrapped.catch(() => {});
      dataKey = { kekId: dk.kekId, wrapped: dk.wrapped };
    }
    this.#live.set(row.id, chain);
    this.#batches.enqueue({ type: 'open', chain, row, ...(dataKey === undefined ? {} : { dataKey }) });
    return chain;
  }

  /** The data key of a live session of this instance (what its review params are sealed with); undefined when plain. */
  dataKeyOf(sessionId: string): Buffer | undefined {
    return this.#live.get(sessionId)?.dataKey;
  }

  append(
    chain: SessionChain,
    kind: EventKind,
    direction: EventDirection | null,
    boundary: EventBoundary | null,
    payload: string,
    forwarded: string | null = null,
  ): void {
    if (chain.broken || this.#writesClosed !== undefined) throw this.unavailable();
    if (!this.#health.healthy && this.mode === 'write-ahead') throw this.unavailable();
    this.#batches.enqueue({ type: 'event', chain, timeUs: nowUs(), monoUs: chain.monoUs(), kind, direction, boundary, payload, forwarded });
  }

  negotiated(chain: SessionChain, fields: NegotiatedFields): void {
    if (chain.broken || this.#writesClosed !== undefined) return;
    this.#batches.enqueue({ type: 'negotiated', chain, fields });
  }

  /** Queues the seal after the session's last event; resolves when it is durable. */
  seal(chain: SessionChain, status: 'closed' | 'cut-off', reason: string, counts: { denials: number; redactions: number }): Promise<void> {
    if (chain.broken || this.#writesClosed !== undefined) {
      this.abandon(chain, reason);
      return Promise.reject(this.unavailable());
    }
    this.#batches.enqueue({ type: 'seal', chain, status, closedAtUs: nowUs(), reason, ...counts });
    return chain.lastCommit!.promise;
  }

  /** A session ends without sealing (it could not record): it is sealed as cut off by a later sweep. */
  abandon(chain: SessionChain, reason: string): void {
    this.#live.delete(chain.sessionId);
    if (!this.#cutOffReasons.has(chain.sessionId)) this.#cutOffReasons.set(chain.sessionId, reason.startsWith('cut off') ? reason : `cut off: ${reason}`);
  }

  /** Queues the deletion of a sealed session, leaving a tombstone in the ledger; resolves when written. */
  tombstone(session: SessionRow, reason: string, deletedAtUs: number): Promise<void> {
    return this.#ledgerEntry((commit) => ({ type: 'tombstone', session, reason, deletedAtUs, commit }));
  }

  /**
   * Records a just-in-time access event (a request, a decision, an expiry) as a ledger entry: tamper evident like
   * every session, in the same chain. Resolves when durable; rejects when the store cannot write.
   */
  recordAccess(requestId: string, detail: unknown): Promise<void> {
    return this.#ledgerEntry((commit) => ({ type: 'access', requestId, detail, timeUs: nowUs(), commit }));
  }

  /**
   * Records that a session's (or an access request's) data key is to be destroyed: an `erased` ledger row, signed with
   * this gateway's key, in the same chain as every session. Resolves when durable; the key is destroyed after.
   */
  recordErasure(sessionId: string, facts: ErasureFactsToRecord): Promise<void> {
    const signature = this.key.sign(erasureBytes({ sessionId, by: facts.by, reason: facts.reason, erasedAtUs: facts.erasedAtUs }));
    const detail: ErasedDetail = { ...facts, keyId: this.key.keyId, signature };
    return this.#ledgerEntry((commit) => ({ type: 'erased', sessionId, detail, timeUs: facts.erasedAtUs, commit }));
  }

  /** Queues a ledger entry outside any session; resolves when durable. None once closed for writes. */
  #ledgerEntry(item: (commit: Commit) => Item): Promise<void> {
    if (this.#writesClosed !== undefined) return Promise.reject(this.unavailable());
    const commit = new Commit();
    this.#batches.enqueue(item(commit));
    return commit.promise;
  }

  /**
   * These owners' data keys were destroyed (an admin's erasure, retention): this process forgets them at once, and
   * whoever listens is told (the other replicas, over the change bus, so that none can still read from its cache).
   */
  keysDestroyed(owners: readonly string[]): void {
    for (const owner of owners) {
      this.keyring?.forget(owner);
      for (const fn of this.#keysDestroyed) fn(owner);
    }
  }

  onKeysDestroyed(fn: (owner: string) => void): void {
    this.#keysDestroyed.push(fn);
  }

  /**
   * A chain that continues a session from what the store holds (recovery); it counts as live until sealed. Its seal is
   * written alone and only while the session is still open: one another gateway sealed first rejects with
   * SealedElsewhereError, and costs nothing else; one rolled back as colliding with a concurrent write (a deadlock)
   * rejects with SealContendedError, and costs nothing else either.
   */
  resumeChain(row: SessionRow, last: { seq: number; hash: string } | undefined, dataKey?: Buffer): SessionChain {
    // Monotonic offsets go on from the session's opening, as near as the wall clock tells.
    const chain = new SessionChain(row.id, performance.now() - (nowUs() - row.openedAtUs) / 1000);
    chain.recovering = true;
    if (dataKey !== undefined) chain.dataKey = dataKey;
    if (last !== undefined) {
      chain.nextSeq = last.seq + 1;
      chain.lastHash = last.hash;
    }
    this.#live.set(row.id, chain);
    return chain;
  }

  isLive(sessionId: string): boolean {
    return this.#live.has(sessionId);
  }

  /** Why a session of this instance was cut off, if this instance knows; forgotten once it is sealed. */
  cutOffReason(sessionId: string): string | undefined {
    return this.#cutOffReasons.get(sessionId);
  }

  forgetCutOff(sessionId: string): void {
    this.#cutOffReasons.delete(sessionId);
  }

  /** Resolves once everything queued so far is written (or failed); what is queued meanwhile does not hold it back. */
  drain(): Promise<void> {
    return this.#batches.drain();
  }

  async #write(items: Item[]): Promise<void> {
    const { chains, commits, ledgerRows } = takeCommits(items);
    let failed = false;
    const written = await this.#writer.write(items, chains, ledgerRows, (err) => {
      failed = true;
      this.#failed(items, chains, commits, err);
    });
    if (written === undefined) return;
    for (const id of written.sealed) this.#live.delete(id);
    if (written.notSealed !== undefined && !failed) {
      // Another gateway's seal won, or the seal collided with a write and was rolled back: this one's recovery chain
      // ends here (a later sweep resumes it if still open), and nothing else was in its batch.
      this.#live.delete(written.notSealed.sessionId);
      for (const c of commits) c.fail(written.notSealed);
      return;
    }
    // Landed after it was given up on: its exchanges have ended already, and the heads went on with it.
    if (failed) return;
    this.#stats.commits++;
    this.#stats.events += written.batch.events.length;
    for (const c of commits) c.succeed();
    if (!this.#committed.empty && (written.batch.events.length > 0 || written.batch.sessionsOpened.length > 0)) {
      this.#committed.tell({ events: written.readable, opened: written.batch.sessionsOpened });
    }
  }

  /**
   * Calls `fn` after each batch is durable with the sessions whose events it wrote and the range of their sequence
   * numbers (the console's live view of exchanges reads them back from the store), and the batch's events before
   * encryption and the sessions it opened (the audit shipper ships them from memory).
   */
  onCommitted(fn: CommittedListener): void {
    this.#committed.add(fn);
  }

  /** A batch did not reach the store: fail closed (write-ahead) or carry on and mark the hole (best-effort). */
  #failed(items: Item[], chains: Set<SessionChain>, commits: Commit[], err: Error): void {
    this.#stats.failedCommits++;
    this.#stats.lostEvents += items.filter((i) => i.type === 'event').length;
    if (this.#health.failed(err)) {
      this.#log.error(
        { err: err.message, sessions: chains.size, mode: this.mode },
        this.mode === 'write-ahead'
          ? 'the recording store failed: sessions with unrecorded messages end, new sessions are refused until it recovers'
          : 'the recording store failed: best-effort recording is losing events; sessions go on UNRECORDED',
      );
    }
    if (this.mode === 'write-ahead') {
      for (const chain of chains) this.#break(chain, err);
      // What is queued cannot be written either: those sessions end too.
      this.#failQueued(err);
    } else {
      for (const item of items) {
        if (item.type === 'event') item.chain.lost++;
        // A session whose row never reached the store cannot be recorded later: its events would have no session.
        if (item.type === 'open') this.#break(item.chain, err);
        if (item.type === 'seal') this.#live.delete(item.chain.sessionId);
      }
    }
    for (const c of commits) c.fail(this.unavailable());
  }

  /** Fails what is queued: its sessions end (their chains break), and the ledger entries queued are not written. */
  #failQueued(err: Error): void {
    for (const item of this.#batches.takeQueued()) {
      const chain = chainOf(item);
      if (chain !== undefined) {
        chain.pending?.fail(this.unavailable());
        chain.pending = undefined;
        this.#break(chain, err);
      } else standaloneCommit(item)?.fail(this.unavailable());
    }
  }

  /**
   * Told when this recorder's own heartbeat finds its instance id held by another process (it has closed for writes
   * by then): the gateway fails closed, as when the membership finds it.
   */
  onIdTaken(listener: (err: Error) => void): void {
    this.#idTakenListeners.push(listener);
  }

  /**
   * Nothing more is written under this instance id: another process took it over (the membership found it, or this
   * recorder's heartbeat did). Its ledger and the sessions open under the id are that process's now: what is queued
   * fails and every live session ends, new sessions, events and ledger entries are refused, and no sweep runs again
   * (one would seal the new holder's live sessions as this instance's). For good: the process is to exit.
   */
  closeForWrites(err: Error): void {
    if (this.#writesClosed !== undefined) return;
    this.#writesClosed = err;
    this.#health.lose(err);
    for (const t of this.#timers) clearInterval(t);
    this.#failQueued(err);
    for (const chain of [...this.#live.values()]) this.#break(chain, err);
  }

  #break(chain: SessionChain, err: Error): void {
    if (chain.broken) return;
    chain.broken = true;
    this.#live.delete(chain.sessionId);
    this.#cutOffReasons.set(chain.sessionId, `cut off: the recording store was unavailable: ${err.message}`);
    chain.onBroken?.(this.unavailable());
  }

  /** Seals sessions left open (a crash, a store failure, a gateway gone silent) and applies retention. */
  sweep(): Promise<void> {
    return this.#sweeper.sweep();
  }

  /** Writes what is queued and stops; sessions must be closed first. */
  async close(): Promise<void> {
    await this.drain();
    this.#closed = true;
    this.#batches.close();
    for (const t of this.#timers) clearInterval(t);
    this.#health.close();
    await this.#sweeper.idle();
    // What a sweep under way queued meanwhile.
    await this.drain();
  }
}
