import type { Store } from '../store/store.js';
import type { SessionChain } from './session-chain.js';

/**
 * Bounds on a network store's writes. A store that stalls (connection open, no answer) must not hold a message
 * forever: past the bound the write counts as failed, and write-ahead fails closed. Its outcome is then unknown
 * (it may land later, or have landed with its answer lost), so what it would have moved on is read back.
 */

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

/** Moves a chain's head to the store's last event when a write thought failed had landed (best-effort goes on). */
export async function resyncChain(store: Store, chain: SessionChain): Promise<void> {
  const last = await store.lastEvent(chain.sessionId);
  if (last !== undefined && last.seq >= chain.nextSeq) {
    // Those events were not lost after all.
    chain.lost = Math.max(0, chain.lost - (last.seq + 1 - chain.nextSeq));
    chain.nextSeq = last.seq + 1;
    chain.lastHash = last.hash;
  }
  chain.uncertain = false;
}
