import { isTransactionConflict } from '../store/errors.js';
import { type Store, StoreUnavailableError } from '../store/store.js';
import { emptyBatch, type WriteBatch } from '../store/types.js';
import { isRecoverySeal, type Item, type Materialized, materialize, settleWraps } from './batch.js';
import { ledgerGenesis } from './chain.js';
import type { SigningKey } from './keys.js';
import { SealContendedError, SealedElsewhereError } from './sealed-elsewhere.js';
import type { SessionChain } from './session-chain.js';

/**
 * Writes the recorder's batches and keeps the heads they move on: each chain's, and the instance's ledger's.
 *
 * SQLite writes in this thread and succeeds or fails (rolled back) before it returns. A network store (PostgreSQL)
 * can stall: a write not confirmed within `timeoutMs` counts as failed at once, so write-ahead fails closed in
 * time. Its outcome is then unknown (it may land later, or have landed with its answer lost), so nothing else
 * writes its chains or the ledger until it settles, and a head a failed write leaves uncertain is read back from
 * the store before the next write that goes on from it.
 */
export class BatchWriter {
  #ledger: { seq: number; hash: string };
  #ledgerBusy = false;
  #ledgerUncertain = false;
  /** The store's synchronous write, where it has one (SQLite). */
  readonly #writeSync: ((batch: WriteBatch) => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly key: SigningKey,
    private readonly instanceId: string,
    ledger: { seq: number; hash: string },
    private readonly timeoutMs: number,
  ) {
    this.#ledger = ledger;
    this.#writeSync = store.writeSync;
  }

  /** SQLite: batches are written synchronously, one at a time. */
  get synchronous(): boolean {
    return this.#writeSync !== undefined;
  }

  /** A batch with ledger rows is being written: the ledger is one chain, so the next one waits. */
  get ledgerBusy(): boolean {
    return this.#ledgerBusy;
  }

  /**
   * Writes one batch of items whose chains are marked in flight. Calls `failed` at most once, as soon as the write
   * fails or goes unconfirmed past the bound; resolves once the write has settled, with what it wrote (also when it
   * landed after `failed`), or undefined when nothing did. The chains are released and their heads moved on by then.
   */
  async write(items: Item[], chains: Set<SessionChain>, ledgerRows: boolean, failed: (err: Error) => void): Promise<Materialized | undefined> {
    if (ledgerRows) this.#ledgerBusy = true;
    let written: Materialized | undefined;
    // A remote KEK (KMS) may still be wrapping a new session's data key: its row is written with the session's.
    const wraps = settleWraps(items);
    const wrapFailure = wraps === undefined ? undefined : await this.#wrapFailure(wraps);
    if (wrapFailure !== undefined) {
      failed(wrapFailure);
    } else if (this.#writeSync !== undefined) {
      const m = materialize(items, this.#ledger, this.key, this.instanceId);
      try {
        if (isRecoverySeal(items[0]!)) written = await this.#sealRecovered(m);
        else {
          this.#writeSync(m.batch);
          written = m;
        }
      } catch (err) {
        failed(err as Error);
      }
    } else {
      const landing = this.#writeNetwork(items, chains, ledgerRows);
      const outcome = await withinBound(landing, this.timeoutMs);
      if (outcome === 'timed out') {
        failed(new StoreUnavailableError(`the recording store did not confirm a write within ${this.timeoutMs} ms (recording.writeTimeout)`));
        written = await landing.catch(() => undefined);
      } else if (outcome instanceof Error) failed(outcome);
      else written = outcome;
      if (written === undefined) this.#uncertain(chains, ledgerRows);
    }
    for (const chain of chains) chain.inFlight = false;
    if (ledgerRows) this.#ledgerBusy = false;
    if (written !== undefined) this.#advance(written);
    return written;
  }

  /** Why the data keys could not be wrapped within the write's bound, or undefined once they are. */
  async #wrapFailure(wraps: Promise<void>): Promise<Error | undefined> {
    const outcome = await withinBound(wraps, this.timeoutMs);
    if (outcome === undefined) return undefined;
    const why = outcome === 'timed out' ? `it did not answer within ${this.timeoutMs} ms (recording.writeTimeout)` : outcome.message;
    return new Error(`a new session's data key could not be wrapped by the current KEK (recording.encryption.current): ${why}`);
  }

  async #writeNetwork(items: Item[], chains: Set<SessionChain>, ledgerRows: boolean): Promise<Materialized> {
    if (ledgerRows && this.#ledgerUncertain) {
      const head = await this.store.ledgerHead(this.instanceId);
      this.#ledger = head === undefined ? { seq: -1, hash: ledgerGenesis(this.instanceId) } : { seq: head.seq, hash: head.hash };
      this.#ledgerUncertain = false;
    }
    for (const chain of chains) if (chain.uncertain) await resyncChain(this.store, chain);
    const m = materialize(items, this.#ledger, this.key, this.instanceId);
    if (isRecoverySeal(items[0]!)) return this.#sealRecovered(m);
    await this.store.write(m.batch);
    return m;
  }

  /**
   * A recovery seal (written alone: selectBatch); one another gateway beat it to moves no head and writes nothing. One
   * rolled back as a deadlock or serialization failure (the session's own gateway, alive after all, writing it at the
   * same moment) wrote nothing either: not a store failure, the next sweep tries again.
   */
  async #sealRecovered(m: Materialized): Promise<Materialized> {
    const id = m.sealed[0]!;
    let notSealed: SealedElsewhereError | SealContendedError;
    try {
      if (await this.store.sealRecovered(m.batch)) return m;
      notSealed = new SealedElsewhereError(id);
    } catch (err) {
      if (!isTransactionConflict(err)) throw err;
      notSealed = new SealContendedError(id, { cause: err });
    }
    return { batch: emptyBatch(), heads: new Map(), ledger: this.#ledger, sealed: [], readable: [], notSealed };
  }

  #advance(m: Materialized): void {
    for (const [chain, head] of m.heads) {
      chain.nextSeq = head.nextSeq;
      chain.lastHash = head.lastHash;
      chain.lost = 0;
      chain.uncertain = false;
    }
    if (m.batch.ledger.length > 0) {
      this.#ledger = m.ledger;
      this.#ledgerUncertain = false;
    }
  }

  /** A network write that failed may have been committed all the same (its answer lost). */
  #uncertain(chains: Set<SessionChain>, ledgerRows: boolean): void {
    if (ledgerRows) this.#ledgerUncertain = true;
    for (const chain of chains) chain.uncertain = true;
  }
}

/** The promise's value or error, or 'timed out' when it has not settled within `ms`. */
export async function withinBound<T>(work: Promise<T>, ms: number): Promise<T | Error | 'timed out'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'timed out'>((resolve) => {
    timer = setTimeout(() => resolve('timed out'), ms);
  });
  try {
    return await Promise.race([work.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))), bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Moves a chain's head to the store's last event when a write thought failed had landed. */
async function resyncChain(store: Store, chain: SessionChain): Promise<void> {
  const last = await store.lastEvent(chain.sessionId);
  if (last !== undefined && last.seq >= chain.nextSeq) {
    // Those events were not lost after all (best-effort counts them for its gap event).
    chain.lost = Math.max(0, chain.lost - (last.seq + 1 - chain.nextSeq));
    chain.nextSeq = last.seq + 1;
    chain.lastHash = last.hash;
  }
  chain.uncertain = false;
}
