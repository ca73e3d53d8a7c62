import {
  type DataKeyRow,
  emptyBatch,
  type EventRow,
  type EventBoundary,
  type EventDirection,
  type EventKind,
  type LedgerKind,
  type NegotiatedFields,
  type SessionRow,
  type WriteBatch,
} from '../store/types.js';
import { eventAad, sealText } from '../encryption/envelope.js';
import { eventHash, ledgerHash, sealBytes } from './chain.js';
import type { Commit } from './commit.js';
import type { SigningKey } from './keys.js';
import type { SealContendedError, SealedElsewhereError } from './sealed-elsewhere.js';
import type { SessionChain } from './session-chain.js';
import { nowUs } from './time.js';

/** What sessions queue for the recorder, before it has a sequence number or a hash. */
export type Item =
  /** `dataKey`: the session's data key as wrapped by the current KEK (encrypted recording); written with the row. */
  | { type: 'open'; chain: SessionChain; row: SessionRow; dataKey?: WrappedDataKey }
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
  | { type: 'tombstone'; session: SessionRow; reason: string; deletedAtUs: number; commit: Commit }
  /** A just-in-time access request, decision or expiry: a ledger entry of its own, outside any session. */
  | { type: 'access'; requestId: string; detail: unknown; timeUs: number; commit: Commit }
  /** A session's (or an access request's) data key destroyed (crypto-shredding): who, when and why, in the ledger. */
  | { type: 'erased'; sessionId: string; detail: ErasedDetail; timeUs: number; commit: Commit };

/** What an erasure states: who erased the recording (an admin, or `retention`), why, when, and whose it was. */
export interface ErasureFactsToRecord {
  by: string;
  reason: string;
  erasedAtUs: number;
  subject: string | null;
  connection: string | null;
}

/** What an `erased` ledger row says: the facts, signed (chain.ts erasureBytes) by the gateway that erased. */
export interface ErasedDetail extends ErasureFactsToRecord {
  keyId: string;
  signature: string;
}

/** Items outside any session's chain: they carry their own commit. */
const standalone = (item: Item): item is Extract<Item, { commit: Commit }> => item.type === 'tombstone' || item.type === 'access' || item.type === 'erased';

/** A new session's data key under its KEK; a remote KEK's wrapping is a promise until it settles (settleWraps). */
export interface WrappedDataKey {
  kekId: string;
  wrapped: string | Promise<string>;
}

/**
 * Waits for the wrappings of the data keys the items open that a remote KEK has not finished (a KMS round trip),
 * replacing each promise with its value; undefined when there are none (a local KEK wraps at once: no promise).
 */
export function settleWraps(items: readonly Item[]): Promise<void> | undefined {
  let pending: Promise<void>[] | undefined;
  for (const item of items) {
    const dk = item.type === 'open' ? item.dataKey : undefined;
    if (dk === undefined || typeof dk.wrapped === 'string') continue;
    pending ??= [];
    pending.push(
      dk.wrapped.then((wrapped) => {
        dk.wrapped = wrapped;
      }),
    );
  }
  return pending === undefined ? undefined : Promise.all(pending).then(() => {});
}

/**
 * The seal of a session left open (sweeper.ts), which another gateway may be sealing at the same moment: it is written
 * in a batch of its own and only if the session is still open (store/recovery-seal.ts), so that losing that race costs
 * nothing but itself, never the live sessions of a batch it would have shared.
 */
export function isRecoverySeal(item: Item): boolean {
  return item.type === 'seal' && item.chain.recovering;
}

export function chainOf(item: Item): SessionChain | undefined {
  return standalone(item) ? undefined : item.chain;
}

/** Items outside any session, each with its own commit to settle. */
export function standaloneCommit(item: Item): Commit | undefined {
  return standalone(item) ? item.commit : undefined;
}

/** Marks the items' chains in flight and takes their commits: what the batch settles when it is written or failed. */
export function takeCommits(items: readonly Item[]): { chains: Set<SessionChain>; commits: Commit[]; ledgerRows: boolean } {
  const chains = new Set<SessionChain>();
  const commits: Commit[] = [];
  let ledgerRows = false;
  for (const item of items) {
    const chain = chainOf(item);
    if (chain !== undefined && !chains.has(chain)) {
      chains.add(chain);
      chain.inFlight = true;
      commits.push(chain.pending!);
      chain.pending = undefined;
    }
    const own = standaloneCommit(item);
    if (own !== undefined) commits.push(own);
    if (needsLedger(item)) ledgerRows = true;
  }
  return { chains, commits, ledgerRows };
}

/** Items that add a row to the instance's ledger, whose chain orders them across sessions. */
export function needsLedger(item: Item): boolean {
  return item.type === 'open' || item.type === 'seal' || standalone(item);
}

export interface Head {
  nextSeq: number;
  lastHash: string;
}

export interface Materialized {
  batch: WriteBatch;
  /** Each chain's head once the batch is written. */
  heads: Map<SessionChain, Head>;
  /** The ledger's head once the batch is written. */
  ledger: { seq: number; hash: string };
  /** Sessions the batch seals. */
  sealed: string[];
  /**
   * The batch's events as they were before encryption (the same rows as `batch.events` when the recording is plain):
   * what in-process consumers of a committed batch (the audit shipper) read, never the store.
   */
  readable: EventRow[];
  /**
   * A recovery seal that wrote nothing, and why: its session was sealed, or written past its head, by another gateway
   * meanwhile; or its write collided with another one and was rolled back.
   */
  notSealed?: SealedElsewhereError | SealContendedError;
}

/**
 * Turns queued items into the rows of one group commit: assigns each event its sequence number and hash from
 * its chain's durable head, signs seals, and appends ledger rows. Nothing changes until the batch is written:
 * the caller moves the heads forward then, so a failed batch leaves no trace to undo.
 */
export function materialize(items: readonly Item[], ledgerHead: { seq: number; hash: string }, key: SigningKey, instanceId: string): Materialized {
  const batch = emptyBatch();
  const readable: EventRow[] = [];
  const heads = new Map<SessionChain, Head>();
  const sealed: string[] = [];
  let ledger = { ...ledgerHead };

  const toLedger = (kind: LedgerKind, sessionId: string, detail: unknown, timeUs: number) => {
    const row = { instanceId, seq: ledger.seq + 1, timeUs, kind, sessionId, detail: JSON.stringify(detail), hash: '' };
    row.hash = ledgerHash(ledger.hash, row);
    batch.ledger.push(row);
    ledger = { seq: row.seq, hash: row.hash };
  };
  const pushEvent = (
    chain: SessionChain,
    head: Head,
    timeUs: number,
    monoUs: number,
    kind: EventKind,
    direction: EventDirection | null,
    boundary: EventBoundary | null,
    payload: string,
    forwarded: string | null,
  ) => {
    const e = { sessionId: chain.sessionId, seq: head.nextSeq, timeUs, monoUs, kind, direction, boundary, payload, forwarded, hash: '' };
    const dataKey = chain.dataKey;
    if (dataKey === undefined) {
      e.hash = eventHash(head.lastHash, e);
      batch.events.push(e);
      readable.push(e);
    } else {
      // Sealed before hashing: the chain covers the stored form, so verify needs no key.
      const stored = {
        ...e,
        payload: sealText(dataKey, eventAad(e.sessionId, e.seq, 'payload'), payload),
        forwarded: forwarded === null ? null : sealText(dataKey, eventAad(e.sessionId, e.seq, 'forwarded'), forwarded),
      };
      stored.hash = e.hash = eventHash(head.lastHash, stored);
      batch.events.push(stored);
      readable.push(e);
    }
    head.nextSeq++;
    head.lastHash = e.hash;
  };
  const headOf = (chain: SessionChain): Head => {
    let head = heads.get(chain);
    if (head === undefined) {
      head = { nextSeq: chain.nextSeq, lastHash: chain.lastHash };
      heads.set(chain, head);
      if (chain.lost > 0) {
        // Best-effort recording lost events here: the chain says so instead of hiding the hole.
        const gap = JSON.stringify({ lost: chain.lost, reason: 'the recording store was unavailable (best-effort recording)' });
        pushEvent(chain, head, nowUs(), chain.monoUs(), 'gap', null, null, gap, null);
      }
    }
    return head;
  };

  for (const item of items) {
    switch (item.type) {
      case 'open':
        if (item.dataKey !== undefined) batch.dataKeys.push(dataKeyRow(item.row, item.dataKey));
        batch.sessionsOpened.push(item.row);
        toLedger('opened', item.row.id, { connection: item.row.connection, subject: item.row.subject, openedAtUs: item.row.openedAtUs }, item.row.openedAtUs);
        break;
      case 'event':
        pushEvent(item.chain, headOf(item.chain), item.timeUs, item.monoUs, item.kind, item.direction, item.boundary, item.payload, item.forwarded);
        break;
      case 'negotiated':
        batch.negotiated.push({ id: item.chain.sessionId, ...item.fields });
        break;
      case 'seal': {
        const head = headOf(item.chain);
        pushEvent(
          item.chain,
          head,
          item.closedAtUs,
          item.chain.monoUs(),
          'close',
          null,
          null,
          JSON.stringify({ status: item.status, reason: item.reason, denials: item.denials, redactions: item.redactions }),
          null,
        );
        const seal = key.sign(
          sealBytes({ sessionId: item.chain.sessionId, eventCount: head.nextSeq, lastHash: head.lastHash, status: item.status, closedAtUs: item.closedAtUs }),
        );
        batch.sealed.push({
          id: item.chain.sessionId,
          status: item.status,
          closedAtUs: item.closedAtUs,
          closeReason: item.reason,
          eventCount: head.nextSeq,
          lastHash: head.lastHash,
          seal,
          sealKeyId: key.keyId,
          denials: item.denials,
          redactions: item.redactions,
        });
        toLedger(
          'sealed',
          item.chain.sessionId,
          { status: item.status, eventCount: head.nextSeq, lastHash: head.lastHash, seal, sealKeyId: key.keyId },
          item.closedAtUs,
        );
        sealed.push(item.chain.sessionId);
        break;
      }
      case 'tombstone': {
        const s = item.session;
        batch.deletions.push(s.id);
        const detail = {
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
        };
        toLedger('tombstone', s.id, detail, item.deletedAtUs);
        break;
      }
      case 'access':
        toLedger('access', item.requestId, item.detail, item.timeUs);
        break;
      case 'erased':
        toLedger('erased', item.sessionId, item.detail, item.timeUs);
        break;
    }
  }
  return { batch, heads, ledger, sealed, readable };
}

function dataKeyRow(session: SessionRow, dk: WrappedDataKey): DataKeyRow {
  if (typeof dk.wrapped !== 'string') throw new Error(`the data key of session ${session.id} is not wrapped yet (settleWraps first)`);
  return { owner: session.id, kekId: dk.kekId, wrapped: dk.wrapped, createdAtUs: session.openedAtUs, erasedAtUs: null, erasedBy: null, eraseReason: null };
}

/**
 * Picks the queued items the next batch may take. A recovery seal goes alone, before anything else, as soon as the
 * ledger is free; meanwhile the others go without it and it holds none back (its chain has nothing but the seal, and
 * where its ledger row falls among the others' is immaterial), so neither can starve the other. For the rest: a chain
 * already in a batch being written waits; so does every ledger item from the first one that waits, since the ledger is
 * one chain across sessions; and a chain is never split between two batches, so its commit covers exactly its events.
 * Returns the items taken and the ones left, both in queue order.
 */
export function selectBatch(queue: readonly Item[], ledgerBusy: boolean): { taken: Item[]; rest: Item[] } {
  const recovery = queue.findIndex(isRecoverySeal);
  if (recovery < 0) return selectLive(queue, ledgerBusy);
  if (!ledgerBusy) return { taken: [queue[recovery]!], rest: queue.filter((_, i) => i !== recovery) };
  const live = queue.filter((item) => !isRecoverySeal(item));
  const { taken } = selectLive(live, ledgerBusy);
  const chosen = new Set(taken);
  return { taken, rest: queue.filter((item) => !chosen.has(item)) };
}

function selectLive(queue: readonly Item[], ledgerBusy: boolean): { taken: Item[]; rest: Item[] } {
  const blocked = new Set<SessionChain>();
  for (const item of queue) {
    const chain = chainOf(item);
    if (chain?.inFlight) blocked.add(chain);
  }
  for (;;) {
    let ledgerOpen = !ledgerBusy;
    let grew = false;
    for (const item of queue) {
      const chain = chainOf(item);
      if (chain !== undefined && blocked.has(chain)) {
        if (needsLedger(item)) ledgerOpen = false;
        continue;
      }
      if (needsLedger(item) && !ledgerOpen) {
        if (chain !== undefined) {
          blocked.add(chain);
          grew = true;
        }
      }
    }
    // A chain blocked late may have had earlier items counted as taken: go again until nothing changes.
    if (!grew) break;
  }
  const taken: Item[] = [];
  const rest: Item[] = [];
  let ledgerOpen = !ledgerBusy;
  for (const item of queue) {
    const chain = chainOf(item);
    const ok = (chain === undefined || !blocked.has(chain)) && (!needsLedger(item) || ledgerOpen);
    if (ok) taken.push(item);
    else {
      rest.push(item);
      if (needsLedger(item)) ledgerOpen = false;
    }
  }
  return { taken, rest };
}
