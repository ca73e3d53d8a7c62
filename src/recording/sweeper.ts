import { ErasedError, KekUnavailableError, WrappedKeyError } from '../encryption/kek.js';
import type { Logger } from 'pino';
import { accessRequestOwner, eventAad, isSealed, openText } from '../encryption/envelope.js';
import type { Store } from '../store/store.js';
import type { LedgerPosition } from '../store/data-keys.js';
import type { SessionRow } from '../store/types.js';
import type { Keyring } from '../encryption/keyring.js';
import type { ErasedDetail, ErasureFactsToRecord } from './batch.js';
import { erasureGraceUs, parseJson, signedErasure } from './seal-and-ledger-checks.js';
import { trustedKeys } from './verify.js';
import { SealContendedError, SealedElsewhereError } from './sealed-elsewhere.js';
import type { SessionChain } from './session-chain.js';
import { nowUs } from './time.js';

/**
 * What the recorder does in the background: seal sessions left open, and apply retention.
 *
 * A session is left open when its gateway crashed or was killed (sealed at that gateway's next start), when
 * the store failed under it (sealed once the store is back), or when its gateway went away for good (sealed by
 * any gateway on the same store once the silent one's heartbeat is older than `staleAfterMs`). Each is sealed
 * as cut off, its chain continued from the last event the store holds, with the reason.
 */
/** What the sweeper needs of the recorder (the Recorder is it; declared here so the two files do not import each other). */
export interface SweptRecorder {
  readonly store: Store;
  readonly instanceId: string;
  readonly healthy: boolean;
  readonly closed: boolean;
  isLive(sessionId: string): boolean;
  drain(): Promise<void>;
  resumeChain(row: SessionRow, last: { seq: number; hash: string } | undefined, dataKey?: Buffer): SessionChain;
  cutOffReason(sessionId: string): string | undefined;
  forgetCutOff(sessionId: string): void;
  seal(chain: SessionChain, status: 'closed' | 'cut-off', reason: string, counts: { denials: number; redactions: number }): Promise<void>;
  tombstone(session: SessionRow, reason: string, deletedAtUs: number): Promise<void>;
  readonly keyring: Keyring | undefined;
  recordErasure(sessionId: string, facts: ErasureFactsToRecord): Promise<void>;
  keysDestroyed(owners: readonly string[]): void;
}

/** How far back the first sweep after a start looks for unfinished erasures; later sweeps overlap the last by 10 min. */
const erasureLookbackUs = 30 * 86_400_000_000;
const erasureOverlapUs = 600_000_000;

export class Sweeper {
  #running: Promise<void> | undefined;
  /** When (performance.now()) unfinished erasures were last looked for: the next look goes back that far and more. */
  #erasuresCheckedAtMs: number | undefined;

  constructor(
    private readonly recorder: SweptRecorder,
    private readonly o: {
      staleAfterMs: number;
      retentionMs: number;
      /**
       * delete: expired sessions' rows go, leaving a tombstone. erase: their data keys are destroyed (crypto-shredding)
       * and the rows stay, so they still verify; a session recorded plain has no key to destroy and is deleted.
       */
      retentionAction?: 'delete' | 'erase';
      /**
       * The keys whose signed erasures this sweeper finishes: this gateway's and the configured trusted ones (never
       * merely the store's, which whoever can write the store can add to).
       */
      erasureSigners?: ReadonlyArray<{ keyId: string; publicKeyPem: string }>;
      /** Audit sinks whose sessions retention keeps until shipped whole (audit.sinks' names). */
      keepUnshippedFor?: readonly string[];
      log: Logger;
      /**
       * Whether this instance recovers silent instances' sessions now: with several replicas only one does (the
       * membership's choice), so that two never seal one session at once. Default: always.
       */
      recoversOthers?: () => boolean;
      /**
       * Whether another instance is seen alive by the membership (its heartbeat moving; one it has not read yet is
       * read first), which a heartbeat's time alone cannot tell: such an instance's sessions are never sealed.
       */
      alive?: (instanceId: string) => boolean | Promise<boolean>;
    },
  ) {}

  /** One sweep at a time; a call during one waits for it. */
  sweep(): Promise<void> {
    this.#running ??= this.#sweep().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async idle(): Promise<void> {
    await this.#running?.catch(() => {});
  }

  async #sweep(): Promise<void> {
    const r = this.recorder;
    // Unhealthy includes an instance id taken over by another process, for good: the sessions open under the id are
    // that process's, and sealing them as this one's crashed run's would cut off its live sessions.
    if (!r.healthy || r.closed) return;
    try {
      const others = this.o.recoversOthers?.() ?? true;
      // Silent by the store's clock, and not alive by the membership's judgement (which reads it again first).
      const stale: string[] = [];
      for (const id of others ? await r.store.staleInstances(this.o.staleAfterMs * 1000) : []) {
        if (id !== r.instanceId && !(await this.o.alive?.(id))) stale.push(id);
      }
      const open = await r.store.openSessions([r.instanceId, ...stale]);
      for (const row of open) {
        // The store failed, or the id was taken, meanwhile: the rest waits for the next sweep (if there is one).
        if (!r.healthy) return;
        if (r.isLive(row.id)) continue;
        try {
          await this.#recover(row);
        } catch (err) {
          // One session whose data key cannot be opened here (its KEK missing, a KMS outage, an altered key row) is left
          // open and said so; it must not stop the recovery of the others, nor retention.
          if (!(err instanceof KekUnavailableError || err instanceof WrappedKeyError)) throw err;
          this.o.log.warn({ session: row.id, err: err.message }, 'a session left open could not be sealed: its data key does not open here');
        }
      }
      if (others && r.keyring !== undefined) await this.#finishErasures();
      // Erasing retention runs on one replica (the one that recovers): each erasure writes signed ledger entries first,
      // which two replicas racing on the same expired sessions would both write.
      if (this.o.retentionMs > 0 && (others || this.o.retentionAction !== 'erase')) await this.#applyRetention();
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'recording sweep failed; it runs again later');
    }
  }

  /** Continues a session's chain from what the store holds and seals it as cut off. */
  async #recover(row: SessionRow): Promise<void> {
    const r = this.recorder;
    // One of this instance's own (cut off by a store failure): whatever it still has queued or in flight for the session
    // lands first, so the chain goes on from its true end. Another instance's session has nothing of this one's queued:
    // all this instance ever writes to it is a recovery seal, each awaited before the next, and one an earlier sweep
    // left unconfirmed (past the write timeout) races this one as any two seals do: one is written, the other writes
    // nothing (recovery-seal.ts). Waiting there would only make the sweep wait on this instance's live traffic.
    if (row.instanceId === r.instanceId) await r.drain();
    const last = await r.store.lastEvent(row.id);
    // An encrypted session's close event is sealed under its own data key, like the rest of it.
    const dataKey = await this.#storedDataKey(row.id);
    const chain = r.resumeChain(row, last, dataKey);
    const reason =
      r.cutOffReason(row.id) ??
      (row.instanceId === r.instanceId
        ? 'cut off: the gateway stopped without closing the session (a crash or a kill); recovered at its next start'
        : `cut off: gateway instance ${row.instanceId} stopped without closing the session; recovered by ${r.instanceId}`);
    // The counts the close event states come from the recorded verdicts, not from the row (an index anyone who can
    // write the store can change, and which learns the counts only at a seal this session never had).
    await r.seal(chain, 'cut-off', reason, await recordedCounts(r.store, row.id, dataKey)).then(
      () => {
        r.forgetCutOff(row.id);
        this.o.log.warn({ session: row.id, events: chain.nextSeq, reason }, 'session recovered and sealed as cut off');
      },
      (err: Error) => {
        if (err instanceof SealContendedError) {
          // Its own gateway, alive after all, wrote it at the same moment: nothing was written, and the store is fine.
          this.o.log.info({ session: row.id, err: err.message }, 'sealing a session left open collided with a write to it; tried again at the next sweep');
          return;
        }
        if (!(err instanceof SealedElsewhereError)) {
          this.o.log.warn({ session: row.id, err: err.message }, 'a cut-off session could not be sealed; it is tried again later');
          return;
        }
        // Another gateway sealed it first, or its own gateway wrote on (alive after all): nothing of this one's was lost.
        r.forgetCutOff(row.id);
        this.o.log.info({ session: row.id }, 'a session left open was sealed, or written to, by another gateway meanwhile: left to it');
      },
    );
  }

  /**
   * The data key a session opened with, from the store (a session recovered goes on under it); undefined when
   * recordings are plain here or the session was recorded plain. An erased key is gone: what follows is plain.
   */
  async #storedDataKey(sessionId: string): Promise<Buffer | undefined> {
    const { keyring, store } = this.recorder;
    if (keyring === undefined) return undefined;
    const [row] = await store.dataKeys([sessionId]);
    if (row === undefined) return undefined;
    try {
      return await keyring.dataKey(row);
    } catch (err) {
      if (err instanceof ErasedError) return undefined;
      throw err;
    }
  }

  /**
   * Destroys the data keys of erasures whose gateway stopped between writing their signed ledger entries and destroying
   * the keys (erasure.ts writes the entries first). Only an entry signed by a trusted key is acted on: the sweeper never
   * turns a key row, or an unsigned entry, into an erasure.
   */
  async #finishErasures(): Promise<void> {
    const r = this.recorder;
    const trusted = await trustedKeys([...(this.o.erasureSigners ?? [])]);
    // Measured by the store's clock (the entries' times are the erasing gateways'; this one's clock may differ), back
    // as far as the last look went, with an overlap; the first look after a start goes back 30 days.
    const startedMs = performance.now();
    const lookbackUs =
      this.#erasuresCheckedAtMs === undefined
        ? erasureLookbackUs
        : Math.round((startedMs - this.#erasuresCheckedAtMs) * 1000) + erasureGraceUs + erasureOverlapUs;
    for (let after: LedgerPosition | undefined; ; ) {
      const entries = await r.store.unfinishedErasures(lookbackUs, erasureGraceUs, after, 200);
      for (const entry of entries) {
        const d = parseJson(entry.detail) as Partial<ErasedDetail> | undefined;
        if (d === undefined || !signedErasure(entry.sessionId, d, trusted)) {
          this.o.log.warn(
            { session: entry.sessionId, instance: entry.instanceId, seq: entry.seq },
            'an erasure entry in the ledger is not signed by a trusted key: its key is left alone',
          );
          continue;
        }
        const owners = [entry.sessionId, accessRequestOwner(entry.sessionId)];
        const erased = await r.store.eraseDataKeys(owners, d.by!, d.reason!, d.erasedAtUs!);
        r.keysDestroyed(erased);
        this.o.log.warn({ owners: erased, by: d.by }, 'an erasure interrupted before its data key was destroyed (its gateway stopped): finished now');
      }
      if (entries.length < 200) break;
      const last = entries.at(-1)!;
      after = { timeUs: last.timeUs, instanceId: last.instanceId, seq: last.seq };
    }
    this.#erasuresCheckedAtMs = startedMs;
  }

  async #applyRetention(): Promise<void> {
    const r = this.recorder;
    const erase = this.o.retentionAction === 'erase';
    const before = nowUs() - this.o.retentionMs * 1000;
    const expired = await r.store.expiredSessions(before, 200, this.o.keepUnshippedFor, erase);
    if (expired.length === 0) return;
    const deletedAtUs = nowUs();
    const days = Math.round(this.o.retentionMs / 86_400_000);
    const reason = `retention: closed more than ${days >= 1 ? `${days} days` : `${this.o.retentionMs} ms`} ago`;
    const keyed = erase ? new Set((await r.store.dataKeys(expired.map((s) => s.id))).filter((k) => k.wrapped !== null).map((k) => k.owner)) : new Set();
    const shred = expired.filter((s) => keyed.has(s.id));
    // A plain session (recorded before encryption) has no key to destroy: retention deletes it as in delete mode.
    const remove = expired.filter((s) => !keyed.has(s.id));
    if (shred.length > 0) await this.#erase(shred, reason, deletedAtUs);
    if (remove.length > 0) {
      await Promise.all(remove.map((session) => r.tombstone(session, reason, deletedAtUs)));
      this.o.log.info(
        { deleted: remove.length },
        erase
          ? 'retention deleted old sessions recorded plain (no key to erase), leaving tombstones in the ledger'
          : 'retention deleted old sessions, leaving tombstones in the ledger',
      );
    }
  }

  /** Retention in erase mode: a signed `erased` ledger entry each, then the sessions' data keys destroyed; the rows stay. */
  async #erase(sessions: SessionRow[], reason: string, erasedAtUs: number): Promise<void> {
    const r = this.recorder;
    await Promise.all(sessions.map((s) => r.recordErasure(s.id, { by: 'retention', reason, erasedAtUs, subject: s.subject, connection: s.connection })));
    const erased = await r.store.eraseDataKeys(
      sessions.map((s) => s.id),
      'retention',
      reason,
      erasedAtUs,
    );
    r.keysDestroyed(erased);
    this.o.log.info({ erased: erased.length }, 'retention erased the data keys of old sessions (crypto-shredding); their rows stay and still verify');
  }
}

/** Refusals and redactions as a session's recorded verdicts tell them. */
async function recordedCounts(store: Store, sessionId: string, dataKey: Buffer | undefined): Promise<{ denials: number; redactions: number }> {
  const counts = { denials: 0, redactions: 0 };
  for (let after = -1; ; ) {
    const events = await store.events(sessionId, after, 5000);
    for (const e of events) {
      if (e.kind !== 'verdict') continue;
      let v: { action?: unknown; sensitive?: unknown } = {};
      try {
        const text =
          dataKey !== undefined && isSealed(e.payload) ? openText(dataKey, eventAad(sessionId, e.seq, 'payload'), e.payload, 'a verdict') : e.payload;
        v = JSON.parse(text) as typeof v;
      } catch {
        // An unreadable verdict counts as neither; verify tells whether it was altered.
      }
      if (v.action === 'answer') counts.denials++;
      if (v.sensitive === true) counts.redactions++;
    }
    if (events.length < 5000) break;
    after = events.at(-1)!.seq;
  }
  return counts;
}
