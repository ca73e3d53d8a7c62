import type { ErasedError } from '../encryption/kek.js';
import type { EventRow, LedgerRow, SessionRow } from '../store/types.js';
import type { ErasedDetail } from './batch.js';
import { erasureBytes, sealBytes } from './chain.js';
import type { ErasureFacts } from './erasure-facts.js';
import { verifySeal } from './keys.js';

/**
 * The checks of a session against what is signed or hash-chained outside its own events: its seal (a trusted key's
 * signature), the ledger's seal entries, and an erasure's ledger entry. Used by verify.ts.
 */

export type TrustedKeys = ReadonlyMap<string, string>;

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * How long after signing its ledger entries an erasure may still be destroying keys: a signed entry whose key is
 * still there is an erasure under way until then, and one cut short after (the sweeper finishes it).
 */
export const erasureGraceUs = 60_000_000;

/** Whether an `erased` entry's statement is signed by a trusted key (chain.ts erasureBytes). */
export function signedErasure(sessionId: string, d: Partial<ErasedDetail>, trusted: TrustedKeys): boolean {
  if (typeof d.by !== 'string' || typeof d.reason !== 'string' || typeof d.erasedAtUs !== 'number') return false;
  if (typeof d.keyId !== 'string' || typeof d.signature !== 'string') return false;
  const publicKey = trusted.get(d.keyId);
  return publicKey !== undefined && verifySeal(publicKey, erasureBytes({ sessionId, by: d.by, reason: d.reason, erasedAtUs: d.erasedAtUs }), d.signature);
}

/** The state of a session's data key as reading it found: destroyed (its row's who, when, why), gone, or there. */
export type KeyState = { erased: ErasedError } | 'missing' | 'present';

/**
 * An erasure is the ledger's word, not the key row's: whoever can write the store can null a wrapped key and name
 * anyone, so an erased key needs an `erased` entry signed by a trusted key, saying the same who, when and why. The
 * entry is written before the key is destroyed, so a signed entry whose key is still there is an erasure cut short
 * (or a key restored). Returns the erasure the ledger backs.
 */
export function checkErasure(
  sessionId: string,
  key: KeyState,
  ledger: LedgerRow[],
  trusted: TrustedKeys,
  problem: (message: string) => void,
  notes: string[],
  nowUs: number,
): ErasureFacts | undefined {
  const signed: Array<Partial<ErasedDetail>> = [];
  for (const l of ledger.filter((e) => e.kind === 'erased')) {
    const d = (parseJson(l.detail) ?? {}) as Partial<ErasedDetail>;
    if (signedErasure(sessionId, d, trusted)) signed.push(d);
    else
      problem(
        `the ledger's erasure entry ${l.instanceId} ${l.seq} is not signed by a trusted key: it was written outside Portcullis, or by a gateway whose public key is not in recording.trustedKeys`,
      );
  }
  if (key === 'missing') return undefined;
  if (key === 'present') {
    const entry = signed[0];
    // Signed within the grace: its gateway may still be destroying the keys (a large erasure takes a while).
    if (entry !== undefined && (entry.erasedAtUs ?? 0) > nowUs - erasureGraceUs)
      notes.push(`an erasure is under way: signed at ${isoOf(entry.erasedAtUs)} by ${entry.by}, its data key not destroyed yet`);
    else if (entry !== undefined)
      problem(
        `the ledger records this session erased at ${isoOf(entry.erasedAtUs)} by ${entry.by}, but its data key is still there: an erasure cut short before the key was destroyed (the next sweep of a gateway with recording.encryption finishes it, or erase it again), or a key restored after the erasure`,
      );
    return undefined;
  }
  const { erased } = key;
  const row = `at ${isoOf(erased.erasedAtUs)} by ${erased.erasedBy ?? 'unknown'} (${erased.reason ?? 'no reason recorded'})`;
  if (signed.length === 0) {
    problem(
      `its data key's row says it was erased ${row}, but no signed ledger entry records an erasure of this session: the key row was changed outside Portcullis`,
    );
    return undefined;
  }
  if (!signed.some((e) => e.erasedAtUs === erased.erasedAtUs && e.by === erased.erasedBy && e.reason === erased.reason)) {
    const entry = signed[0]!;
    problem(
      `its data key's row says it was erased ${row}, but the ledger recorded the erasure at ${isoOf(entry.erasedAtUs)} by ${entry.by} (${entry.reason}): the key row was changed`,
    );
    return undefined;
  }
  return { erasedAtUs: erased.erasedAtUs, by: erased.erasedBy, reason: erased.reason };
}

const isoOf = (us: number | undefined) => (us === undefined ? 'an unknown time' : new Date(us / 1000).toISOString());

export function checkSeal(
  session: SessionRow,
  last: EventRow | undefined,
  eventCount: number,
  trusted: TrustedKeys,
  problem: (message: string, seq?: number) => void,
  notes: string[],
): void {
  if (session.seal === null || session.sealKeyId === null || session.lastHash === null || session.eventCount === null || session.closedAtUs === null) {
    problem(`the session is marked ${session.status} but has no seal: the seal was removed`);
    return;
  }
  if (eventCount < session.eventCount) {
    problem(
      `the recording ends at event ${eventCount - 1}, but the seal covers ${session.eventCount} events: ${session.eventCount - eventCount} were removed from the end (truncated)`,
      eventCount,
    );
  } else if (eventCount > session.eventCount) {
    problem(
      `${eventCount - session.eventCount} events follow the seal (which covers ${session.eventCount}): they were added after the session was sealed`,
      session.eventCount,
    );
  }
  if (last !== undefined && eventCount === session.eventCount && last.hash !== session.lastHash) {
    problem(`the seal's last hash does not match event ${last.seq}: the end of the recording was changed`, last.seq);
  }
  if (last !== undefined && last.kind !== 'close') problem(`the last event (${last.seq}) is a ${last.kind} event, not the session's close`, last.seq);
  const publicKey = trusted.get(session.sealKeyId);
  if (publicKey === undefined) {
    problem(
      `sealed with key ${session.sealKeyId}, which is not trusted here: add its public key to recording.trustedKeys (or verify on the gateway that made it)`,
    );
    return;
  }
  const statement = sealBytes({
    sessionId: session.id,
    eventCount: session.eventCount,
    lastHash: session.lastHash,
    status: session.status,
    closedAtUs: session.closedAtUs,
  });
  if (!verifySeal(publicKey, statement, session.seal)) {
    problem(
      `the seal's signature is not valid for key ${session.sealKeyId}: the seal was replaced, or the session's end (status, time, event count, last hash) was altered`,
    );
    return;
  }
  notes.push(`sealed by key ${session.sealKeyId}`);
}

export function checkSealedInLedger(session: SessionRow, ledger: LedgerRow[], problem: (message: string) => void, notes?: string[]): void {
  if (!ledger.some((l) => l.kind === 'opened')) problem('the session is not in any gateway ledger: it was inserted outside Portcullis');
  const sealed = ledger.find((l) => l.kind === 'sealed');
  if (session.status === 'open') {
    if (sealed !== undefined) problem('the ledger records this session as sealed, but the store has it open: its seal was removed');
    return;
  }
  if (sealed === undefined) {
    problem('the ledger has no seal for this session');
    return;
  }
  type SealDetail = { seal?: string; eventCount?: number; lastHash?: string };
  let expected = parseJson(sealed.detail) as SealDetail | undefined;
  // `store encrypt` re-made the seal over the encrypted form: its ledger entry states the seal it replaced and the new
  // one, so the chain of seals goes back, entry by entry, to the one recorded when the session was sealed.
  for (const entry of ledger.filter((l) => l.kind === 'encrypted')) {
    const d = parseJson(entry.detail) as { from?: SealDetail; to?: SealDetail } | undefined;
    if (d?.from?.seal !== expected?.seal || d?.from?.lastHash !== expected?.lastHash || d?.from?.eventCount !== expected?.eventCount) {
      problem(`the ledger's encrypted entry (${entry.instanceId} ${entry.seq}) does not follow from the seal recorded before it`);
      return;
    }
    expected = d?.to;
    notes?.push(`encrypted in place at ${new Date(entry.timeUs / 1000).toISOString()} by ${entry.instanceId} (store encrypt), its seal signed again`);
  }
  if (expected?.seal !== session.seal || expected?.eventCount !== session.eventCount || expected?.lastHash !== session.lastHash) {
    problem('the seal differs from the one the ledger recorded when the session was sealed');
  }
}
