import type { Logger } from 'pino';
import { SqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/store.js';
import {
  emptyBatch,
  type EventBoundary,
  type EventDirection,
  type EventKind,
  type LedgerKind,
  type NegotiatedFields,
  type SessionRow,
  type WriteBatch,
} from '../store/types.js';
import { eventHash, ledgerGenesis, ledgerHash, sealBytes, sessionGenesis } from './chain.js';
import { Commit } from './commit.js';
import type { SigningKey } from './keys.js';
import { nowUs } from './time.js';

/**
 * The recorder: the store's only writer. Sessions append events; the recorder writes them with group commit
 * (everything appended while the event loop handled one round of I/O goes in one transaction, and for
 * PostgreSQL everything appended while the previous commit was in flight), and settles each batch's Commit,
 * which is what write-ahead waits on before a message is forwarded.
 *
 * Sequence numbers and hashes are assigned when a batch is written, from the last durable state of each
 * chain: a batch that fails leaves no hole and nothing to roll back, and what the store holds is always a
 * gapless, verifiable prefix of what happened.
 */

export type RecordingMode = 'write-ahead' | 'best-effort';

/** Recording cannot take the event: in write-ahead mode the message must not be forwarded. */
export class RecordingUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordingUnavailableError';
  }
}

/** One session's chain: its durable head, and whether it can still be appended to. */
export class SessionChain {
  /** Durable head: the next sequence number and the hash of the last written event. */
  nextSeq = 0;
  lastHash: string;
  /** The commit of the batch holding this chain's latest item. */
  lastCommit: Commit | undefined;
  /** Write-ahead: a batch with this chain's events failed; nothing more is appended. */
  broken = false;
  /** Best-effort: events lost since the last durable one, recorded as a gap before the next. */
  lost = 0;
  /** Whether the session's row was written (its `open` item committed). */
  opened = false;
  /** Told once when the chain breaks, so the session can end (fail closed). */
  onBroken?: (err: Error) => void;
  constructor(
    readonly sessionId: string,
    /** performance.now() when the session opened: monotonic offsets count from it. */
    readonly t0 = performance.now(),
  ) {
    this.lastHash = sessionGenesis(sessionId);
  }
}

type Item =
  | { type: 'open'; chain: SessionChain; row: SessionRow }
  | {
      type: 'event';
      chain: SessionChain;
      timeUs: number;
      monoUs: number;
      kind: EventKind;
      direction: EventDirection | null;
      boundary: EventBoundary | null;
      payload: string;
      forwarded: string | null;
    }
  | { type: 'negotiated'; chain: SessionChain; fields: NegotiatedFields }
  | { type: 'seal'; chain: SessionChain; status: 'closed' | 'cut-off'; closedAtUs: number; reason: string; denials: number; redactions: number }
  | { type: 'tombstone'; session: SessionRow; reason: string; deletedAtUs: number };

export interface RecorderOptions {
  store: Store;
  instanceId: string;
  key: SigningKey;
  mode: RecordingMode;
  log: Logger;
  /** How often this instance says it is alive, and after how long without that its open sessions count as cut off. */
  heartbeatMs?: number;
  staleAfterMs?: number;
  /** While the store is unavailable, how often it is probed. */
  probeMs?: number;
  /** Closed sessions older than this are deleted (with a tombstone); 0 keeps them forever. */
  retentionMs?: number;
  sweepMs?: number;
}

interface LedgerHead {
  seq: number;
  hash: string;
}

export class Recorder {
  readonly store: Store;
  readonly instanceId: string;
  readonly mode: RecordingMode;
  readonly key: SigningKey;
  readonly #log: Logger;
  readonly #options: Required<Omit<RecorderOptions, 'store' | 'instanceId' | 'key' | 'mode' | 'log'>>;
  #queue: Item[] = [];
  #commit = new Commit();
  #scheduled = false;
  #flushing: Promise<void> | undefined;
  #ledger: LedgerHead;
  #healthy = true;
  #lastError: Error | undefined;
  /** Chains of sessions whose seal is not yet durable: never recovered from under them. */
  readonly #live = new Map<string, SessionChain>();
  /** Why sessions this instance ended without a seal were cut off, for the recovery that seals them. */
  readonly #cutOffReasons = new Map<string, string>();
  readonly #timers: NodeJS.Timeout[] = [];
  #probe: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #stats = { commits: 0, events: 0, failedCommits: 0, lostEvents: 0 };
  #sweeping: Promise<void> | undefined;
  readonly #sqliteSync: SqliteStore | undefined;

  private constructor(o: RecorderOptions, ledger: LedgerHead) {
    this.store = o.store;
    this.instanceId = o.instanceId;
    this.mode = o.mode;
    this.key = o.key;
    this.#log = o.log.child({ component: 'recorder' });
    this.#ledger = ledger;
    this.#sqliteSync = o.store instanceof SqliteStore ? o.store : undefined;
    this.#options = {
      heartbeatMs: o.heartbeatMs ?? 10_000,
      staleAfterMs: o.staleAfterMs ?? 60_000,
      probeMs: o.probeMs ?? 1000,
      retentionMs: o.retentionMs ?? 0,
      sweepMs: o.sweepMs ?? 60_000,
    };
  }

  /**
   * Registers the key and the instance, then seals what an earlier run of this instance left open (a crash)
   * and what silent instances left open, then applies retention.
   */
  static async start(o: RecorderOptions): Promise<Recorder> {
    const head = await o.store.ledgerHead(o.instanceId);
    const recorder = new Recorder(o, head === undefined ? { seq: -1, hash: ledgerGenesis(o.instanceId) } : { seq: head.seq, hash: head.hash });
    await o.store.registerKey({ keyId: o.key.keyId, publicKey: o.key.publicKeyPem, instanceId: o.instanceId, createdAtUs: nowUs() });
    await o.store.heartbeat(o.instanceId, nowUs());
    await recorder.sweep();
    recorder.#every(recorder.#options.heartbeatMs, () => recorder.#heartbeat());
    recorder.#every(recorder.#options.sweepMs, () => void recorder.sweep().catch(() => {}));
    return recorder;
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.#timers.push(t);
  }

  /** Whether new sessions may open: in write-ahead mode, only while the store takes writes. */
  get accepting(): boolean {
    return this.#healthy || this.mode === 'best-effort';
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  /** Group commits and events written, commits that failed and events they lost, since start. */
  get stats(): Readonly<{ commits: number; events: number; failedCommits: number; lostEvents: number }> {
    return { ...this.#stats };
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  #unavailable(): RecordingUnavailableError {
    return new RecordingUnavailableError(
      `the recording store (${this.store.location}) is unavailable${this.#lastError ? `: ${this.#lastError.message}` : ''}`,
    );
  }

  /** Starts a session's chain and queues its row; throws RecordingUnavailableError when recording cannot take it. */
  openSession(row: SessionRow): SessionChain {
    if (this.#closed || (!this.#healthy && this.mode === 'write-ahead')) throw this.#unavailable();
    const chain = new SessionChain(row.id);
    this.#live.set(row.id, chain);
    this.#enqueue({ type: 'open', chain, row });
    return chain;
  }

  append(
    chain: SessionChain,
    kind: EventKind,
    direction: EventDirection | null,
    boundary: EventBoundary | null,
    payload: string,
    forwarded: string | null = null,
  ): void {
    if (chain.broken) throw this.#unavailable();
    if (!this.#healthy && this.mode === 'write-ahead') throw this.#unavailable();
    this.#enqueue({
      type: 'event',
      chain,
      timeUs: nowUs(),
      monoUs: Math.round((performance.now() - chain.t0) * 1000),
      kind,
      direction,
      boundary,
      payload,
      forwarded,
    });
  }

  negotiated(chain: SessionChain, fields: NegotiatedFields): void {
    if (chain.broken) return;
    this.#enqueue({ type: 'negotiated', chain, fields });
  }

  /** Queues the seal after the session's last event; resolves when it is durable. */
  seal(chain: SessionChain, status: 'closed' | 'cut-off', reason: string, counts: { denials: number; redactions: number }): Promise<void> {
    if (chain.broken) {
      this.#live.delete(chain.sessionId);
      this.#cutOffReasons.set(chain.sessionId, reason);
      return Promise.reject(this.#unavailable());
    }
    this.#enqueue({ type: 'seal', chain, status, closedAtUs: nowUs(), reason, ...counts });
    return chain.lastCommit!.promise;
  }

  /** A session ends without sealing (it could not record): it is sealed as cut off by a later sweep. */
  abandon(chain: SessionChain, reason: string): void {
    this.#live.delete(chain.sessionId);
    this.#cutOffReasons.set(chain.sessionId, `cut off: ${reason}`);
  }

  /** Resolves once everything queued so far is written (or failed). */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#flushing !== undefined) {
      if (this.#flushing === undefined) await this.#flush();
      else await this.#flushing;
    }
  }

  #enqueue(item: Item): void {
    this.#queue.push(item);
    if ('chain' in item) item.chain.lastCommit = this.#commit;
    if (!this.#scheduled && this.#flushing === undefined) {
      this.#scheduled = true;
      setImmediate(() => void this.#flush());
    }
  }

  #flush(): Promise<void> {
    this.#scheduled = false;
    if (this.#flushing !== undefined || this.#queue.length === 0) return this.#flushing ?? Promise.resolve();
    const items = this.#queue;
    const commit = this.#commit;
    this.#queue = [];
    this.#commit = new Commit();
    this.#flushing = this.#write(items, commit).finally(() => {
      this.#flushing = undefined;
      // SQLite: let a round of I/O add to the next batch. PostgreSQL: what came in during the round trip is the next batch.
      if (this.#queue.length > 0 && !this.#scheduled) {
        this.#scheduled = true;
        if (this.#sqliteSync) setImmediate(() => void this.#flush());
        else queueMicrotask(() => void this.#flush());
      }
    });
    return this.#flushing;
  }

  async #write(items: Item[], commit: Commit): Promise<void> {
    const { batch, heads, ledger, sealed } = this.#materialize(items);
    try {
      if (this.#sqliteSync) this.#sqliteSync.writeSync(batch);
      else await this.store.write(batch);
    } catch (err) {
      this.#failed(items, commit, err as Error);
      return;
    }
    for (const [chain, head] of heads) {
      chain.nextSeq = head.nextSeq;
      chain.lastHash = head.lastHash;
      chain.lost = 0;
    }
    for (const item of items) if (item.type === 'open') item.chain.opened = true;
    for (const id of sealed) this.#live.delete(id);
    this.#ledger = ledger;
    this.#stats.commits++;
    this.#stats.events += batch.events.length;
    commit.succeed();
  }

  /** Assigns sequence numbers and hashes from the durable heads, signs seals, and builds the batch. */
  #materialize(items: Item[]): { batch: WriteBatch; heads: Map<SessionChain, { nextSeq: number; lastHash: string }>; ledger: LedgerHead; sealed: string[] } {
    const batch = emptyBatch();
    const heads = new Map<SessionChain, { nextSeq: number; lastHash: string }>();
    const sealed: string[] = [];
    let ledger = { ...this.#ledger };
    const toLedger = (kind: LedgerKind, sessionId: string, detail: unknown, timeUs: number) => {
      const row = { instanceId: this.instanceId, seq: ledger.seq + 1, timeUs, kind, sessionId, detail: JSON.stringify(detail) };
      const hash = ledgerHash(ledger.hash, row);
      batch.ledger.push({ ...row, hash });
      ledger = { seq: row.seq, hash };
    };
    const headOf = (chain: SessionChain) => {
      let head = heads.get(chain);
      if (head === undefined) {
        head = { nextSeq: chain.nextSeq, lastHash: chain.lastHash };
        heads.set(chain, head);
        if (chain.lost > 0) {
          // Best-effort recording lost events here: the chain says so instead of hiding the hole.
          pushEvent(chain, head, nowUs(), 'gap', null, null, JSON.stringify({ lost: chain.lost, reason: 'the recording store was unavailable (best-effort recording)' }));
        }
      }
      return head;
    };
    const pushEvent = (
      chain: SessionChain,
      head: { nextSeq: number; lastHash: string },
      timeUs: number,
      kind: EventKind,
      direction: EventDirection | null,
      boundary: EventBoundary | null,
      payload: string,
      monoUs = Math.round((performance.now() - chain.t0) * 1000),
      forwarded: string | null = null,
    ) => {
      const e = { sessionId: chain.sessionId, seq: head.nextSeq, timeUs, monoUs, kind, direction, boundary, payload, forwarded, hash: '' };
      e.hash = eventHash(head.lastHash, e);
      batch.events.push(e);
      head.nextSeq++;
      head.lastHash = e.hash;
    };
    for (const item of items) {
      switch (item.type) {
        case 'open':
          batch.sessionsOpened.push(item.row);
          toLedger('opened', item.row.id, { connection: item.row.connection, subject: item.row.subject, openedAtUs: item.row.openedAtUs }, item.row.openedAtUs);
          break;
        case 'event':
          pushEvent(item.chain, headOf(item.chain), item.timeUs, item.kind, item.direction, item.boundary, item.payload, item.monoUs, item.forwarded);
          break;
        case 'negotiated':
          batch.negotiated.push({ id: item.chain.sessionId, ...item.fields });
          break;
        case 'seal': {
          const head = headOf(item.chain);
          pushEvent(item.chain, head, item.closedAtUs, 'close', null, null, JSON.stringify({ status: item.status, reason: item.reason }));
          const statement = { sessionId: item.chain.sessionId, eventCount: head.nextSeq, lastHash: head.lastHash, status: item.status, closedAtUs: item.closedAtUs };
          const seal = this.key.sign(sealBytes(statement));
          batch.sealed.push({
            id: item.chain.sessionId,
            status: item.status,
            closedAtUs: item.closedAtUs,
            closeReason: item.reason,
            eventCount: head.nextSeq,
            lastHash: head.lastHash,
            seal,
            sealKeyId: this.key.keyId,
            denials: item.denials,
            redactions: item.redactions,
          });
          toLedger('sealed', item.chain.sessionId, { status: item.status, eventCount: head.nextSeq, lastHash: head.lastHash, seal, sealKeyId: this.key.keyId }, item.closedAtUs);
          sealed.push(item.chain.sessionId);
          break;
        }
        case 'tombstone': {
          const s = item.session;
          batch.deletions.push(s.id);
          toLedger(
            'tombstone',
            s.id,
            {
              reason: item.reason,
              deletedAtUs: item.deletedAtUs,
              instanceId: s.instanceId,
              connection: s.connection,
              subject: s.subject,
              openedAtUs: s.openedAtUs,
              closedAtUs: s.closedAtUs,
              status: s.status,
              eventCount: s.eventCount,
              lastHash: s.lastHash,
              seal: s.seal,
              sealKeyId: s.sealKeyId,
            },
            item.deletedAtUs,
          );
          break;
        }
      }
    }
    return { batch, heads, ledger, sealed };
  }

  /** A batch did not reach the store: fail closed (write-ahead) or carry on and mark the hole (best-effort). */
  #failed(items: Item[], commit: Commit, err: Error): void {
    this.#lastError = err;
    this.#stats.failedCommits++;
    this.#stats.lostEvents += items.filter((i) => i.type === 'event').length;
    const chains = new Set<SessionChain>();
    for (const item of items) if ('chain' in item) chains.add(item.chain);
    if (this.#healthy) {
      this.#log.error(
        { err: err.message, sessions: chains.size, mode: this.mode },
        this.mode === 'write-ahead'
          ? 'the recording store failed: sessions with unrecorded messages end, new sessions are refused until it recovers'
          : 'the recording store failed: best-effort recording is losing events; sessions go on UNRECORDED',
      );
    }
    this.#healthy = false;
    this.#startProbe();
    if (this.mode === 'write-ahead') {
      for (const chain of chains) this.#break(chain, err);
      // What was queued behind the failed batch cannot be written either.
      const behind = this.#queue;
      const behindCommit = this.#commit;
      this.#queue = [];
      this.#commit = new Commit();
      for (const item of behind) if ('chain' in item) this.#break(item.chain, err);
      behindCommit.fail(this.#unavailable());
    } else {
      for (const item of items) {
        if (item.type === 'event') item.chain.lost++;
        // A session whose row never reached the store cannot be recorded later: its events would have no session.
        if (item.type === 'open') this.#break(item.chain, err);
        if (item.type === 'seal') this.#live.delete(item.chain.sessionId);
      }
    }
    commit.fail(this.#unavailable());
  }

  #break(chain: SessionChain, err: Error): void {
    if (chain.broken) return;
    chain.broken = true;
    this.#live.delete(chain.sessionId);
    this.#cutOffReasons.set(chain.sessionId, `the recording store was unavailable: ${err.message}`);
    chain.onBroken?.(this.#unavailable());
  }

  #startProbe(): void {
    if (this.#probe !== undefined || this.#closed) return;
    let probing = false;
    this.#probe = setInterval(() => {
      if (probing) return;
      probing = true;
      this.store
        .probe()
        .then(() => this.store.heartbeat(this.instanceId, nowUs()))
        .then(
          () => this.#recovered(),
          (err: Error) => (this.#lastError = err),
        )
        .finally(() => (probing = false));
    }, this.#options.probeMs);
    this.#probe.unref();
  }

  #recovered(): void {
    if (this.#healthy) return;
    clearInterval(this.#probe);
    this.#probe = undefined;
    this.#healthy = true;
    this.#lastError = undefined;
    this.#log.warn('the recording store is writable again; sessions it cut off are sealed, new sessions are accepted');
    void this.sweep().catch(() => {});
  }

  #heartbeat(): void {
    if (!this.#healthy) return;
    this.store.heartbeat(this.instanceId, nowUs()).catch((err: Error) => this.#log.warn({ err: err.message }, 'recording heartbeat failed'));
  }

  /**
   * Seals sessions left open: this instance's that are no longer live (a crash before this start, or a store
   * failure), and those of instances that stopped heart-beating (a gateway that died for good). Then applies
   * retention. One sweep at a time.
   */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined));
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    if (!this.#healthy || this.#closed) return;
    try {
      const stale = (await this.store.staleInstances(nowUs() - this.#options.staleAfterMs * 1000)).filter((id) => id !== this.instanceId);
      const open = await this.store.openSessions([this.instanceId, ...stale]);
      for (const row of open) {
        if (this.#live.has(row.id)) continue;
        await this.#recover(row);
      }
      if (this.#options.retentionMs > 0) await this.#applyRetention();
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'recording sweep failed; it runs again later');
    }
  }

  /** Continues a session's chain from what the store holds and seals it as cut off. */
  async #recover(row: SessionRow): Promise<void> {
    // Whatever this instance still has queued for the session lands first, so the chain goes on from its true end.
    await this.drain();
    const last = await this.store.lastEvent(row.id);
    // Monotonic offsets go on from the session's opening, as near as the wall clock tells.
    const chain = new SessionChain(row.id, performance.now() - (nowUs() - row.openedAtUs) / 1000);
    chain.opened = true;
    if (last !== undefined) {
      chain.nextSeq = last.seq + 1;
      chain.lastHash = last.hash;
    }
    const reason =
      this.#cutOffReasons.get(row.id) ??
      (row.instanceId === this.instanceId
        ? 'cut off: the gateway stopped without closing the session (a crash or a kill); recovered at its next start'
        : `cut off: gateway instance ${row.instanceId} stopped without closing the session; recovered by ${this.instanceId}`);
    this.#live.set(row.id, chain);
    await this.seal(chain, 'cut-off', reason, { denials: row.denials, redactions: row.redactions }).then(
      () => {
        this.#cutOffReasons.delete(row.id);
        this.#log.warn({ session: row.id, lastSeq: chain.nextSeq - 2, reason }, 'session recovered and sealed as cut off');
      },
      (err: Error) => this.#log.warn({ session: row.id, err: err.message }, 'a cut-off session could not be sealed; it is tried again later'),
    );
  }

  async #applyRetention(): Promise<void> {
    const before = nowUs() - this.#options.retentionMs * 1000;
    const expired = await this.store.expiredSessions(before, 200);
    if (expired.length === 0) return;
    const deletedAtUs = nowUs();
    const days = Math.round(this.#options.retentionMs / 86_400_000);
    for (const session of expired) {
      this.#enqueueTombstone(session, `retention: closed more than ${days >= 1 ? `${days} days` : `${this.#options.retentionMs} ms`} ago`, deletedAtUs);
    }
    await this.drain();
    this.#log.info({ deleted: expired.length }, 'retention deleted old sessions, leaving tombstones in the ledger');
  }

  #enqueueTombstone(session: SessionRow, reason: string, deletedAtUs: number): void {
    this.#queue.push({ type: 'tombstone', session, reason, deletedAtUs });
    if (!this.#scheduled && this.#flushing === undefined) {
      this.#scheduled = true;
      setImmediate(() => void this.#flush());
    }
  }

  /** Writes what is queued and stops; sessions must be closed first. */
  async close(): Promise<void> {
    await this.drain();
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    if (this.#probe) clearInterval(this.#probe);
    await this.#sweeping?.catch(() => {});
  }
}
