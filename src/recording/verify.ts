import { ErasedError, KekUnavailableError } from '../encryption/kek.js';
import { DataKeyMissingError, isUnreadable, readingOf, type UnreadableError } from '../encryption/readable-store.js';
import type { Store } from '../store/store.js';
import { type EventRow, eraOfEdge, type LedgerRow, type SessionRow } from '../store/types.js';
import type { ErasureFacts } from './erasure-facts.js';
import { eventHash, ledgerGenesis, ledgerHash, sessionGenesis } from './chain.js';
import { exchangeGroups } from './exchange-groups.js';
import { type ExchangeRecord, ExchangeTracker } from './exchanges.js';
import { checkErasure, checkSeal, checkSealedInLedger, type KeyState, parseJson, type TrustedKeys } from './seal-and-ledger-checks.js';
import { nowUs } from './time.js';
import { closingMismatches, negotiatedMismatches, openingFacts, openingMismatches } from './session-facts.js';

/**
 * Verification: recomputes a session's hash chain from its first event, checks the seal against the last
 * event and a trusted key, and cross-checks the ledger. It says which event broke and how, and tells a
 * session cut off by a crash (sealed as such at recovery) from one that was tampered with. The session row
 * itself is not hashed: each of its columns is checked against the hashed event that states it (session-facts.ts).
 *
 * Encrypted recordings are verified as stored: the chain and the seal cover the ciphertext, so no key is needed. What
 * only the payloads state (the row's owner, negotiated and closing columns; the exchanges) is checked when the store
 * given is a readable one (encryption/readable-store.ts) whose keyring opens them, and said to be skipped otherwise.
 * An erased session (its data key destroyed) is verified all the same and reported as `erased`: who, when, why.
 */

/** `erased`: intact and sealed like `verified`, but its data key was destroyed (crypto-shredded): it can never be read. */
export type VerifyStatus = 'verified' | 'erased' | 'unsealed' | 'deleted' | 'failed';

export interface VerifyProblem {
  /** The event the problem is at, when it is at one. */
  seq?: number;
  message: string;
}

export interface SessionVerification {
  sessionId: string;
  status: VerifyStatus;
  /** The session's own status (open, closed, cut-off), when it exists. */
  sessionStatus?: string;
  events: number;
  problems: VerifyProblem[];
  notes: string[];
  /**
   * The client's requests, each with its verdicts and how it ended (`incomplete`: those with no answer recorded).
   * Whether the recording is intact is the chain's and the seal's to say; this says what it holds, per exchange.
   */
  exchanges?: { total: number; complete: number; incomplete: ExchangeRecord[]; all?: ExchangeRecord[] };
  /** When the session was erased (its data key destroyed), by whom and why, as its data key's row records it. */
  erased?: ErasureFacts;
}

/** Keys whose seals count: this gateway's own, configured ones, and (only when asked) every key the store lists. */
export type { TrustedKeys } from './seal-and-ledger-checks.js';

const page = 5000;

/**
 * `listExchanges`: the result lists every exchange (`exchanges.all`), not only the incomplete ones, each with its
 * view group (`group`: trace id, else by `idleGapMs`, see exchange-groups.ts) when that is given.
 */
export async function verifySession(
  store: Store,
  sessionId: string,
  trusted: TrustedKeys,
  listExchanges = false,
  idleGapMs?: number,
): Promise<SessionVerification> {
  // The chain is the stored form's; the reader opens payloads for the checks that need them, when it can.
  const { raw, reader } = readingOf(store);
  store = raw;
  const session = await store.getSession(sessionId);
  const ledger = await store.ledgerFor(sessionId);
  if (session === undefined) return missing(sessionId, ledger);
  const result: SessionVerification = { sessionId, status: 'verified', sessionStatus: session.status, events: 0, problems: [], notes: [] };
  const problem = (message: string, seq?: number) => result.problems.push(seq === undefined ? { message } : { seq, message });

  // Every stored hash, so that an event that fails its place in the chain can be told apart: intact but moved
  // (its own hash follows from some other stored event) or changed (it follows from none).
  const storedHashes = new Set<string>([sessionGenesis(sessionId)]);
  for (let after = -1; ; ) {
    const events = await store.events(sessionId, after, page);
    for (const e of events) storedHashes.add(e.hash);
    if (events.length < page) break;
    after = events.at(-1)!.seq;
  }
  const followsSomeStoredEvent = (e: EventRow) => {
    if (storedHashes.size > 20_000 || result.problems.length > 20) return false;
    for (const h of storedHashes) if (h !== e.hash && eventHash(h, e) === e.hash) return true;
    return false;
  };

  let expected = sessionGenesis(sessionId);
  let index = 0;
  let last: EventRow | undefined;
  // The opening, negotiated and last events as readable (undefined while `unreadable`).
  let first: EventRow | undefined;
  let negotiated: EventRow | undefined;
  let lastReadable: EventRow | undefined;
  // Why payloads could not be opened: one reason per cause (a session has one data key).
  const unreadable = new Map<string, UnreadableError>();
  const exchanges = new ExchangeTracker();
  // The message events, for the view groups of a listing (their order is the recording's).
  // A legacy session is its client's own: only a modern (pooled) one is grouped.
  const messages: EventRow[] | undefined = listExchanges && idleGapMs !== undefined && eraOfEdge(session.edge) === 'modern' ? [] : undefined;
  for (let after = -1; ; ) {
    const events = await store.events(sessionId, after, page);
    const opened = await reader.settle(events);
    for (const [i, e] of events.entries()) {
      const o = opened[i]!;
      const readable = isUnreadable(o) ? undefined : o;
      if (isUnreadable(o)) unreadable.set(o.message, o);
      let afterGap = false;
      if (e.seq !== index) {
        afterGap = true;
        if (e.seq > index) {
          problem(
            e.seq === index + 1
              ? `event ${index} is missing (deleted): the recording goes from ${index - 1} to ${e.seq}`
              : `events ${index} to ${e.seq - 1} are missing (deleted)`,
            index,
          );
        } else {
          problem(`event ${e.seq} appears out of order (after event ${index - 1})`, e.seq);
        }
        index = e.seq;
      }
      if (eventHash(expected, e) !== e.hash && !afterGap && !followsSomeStoredEvent(e)) {
        problem(`event ${e.seq} does not match its hash: its content, time or position was changed (or two events were swapped)`, e.seq);
      }
      if (index === 0 && e.kind !== 'open') problem(`event 0 is a ${e.kind} event, not the session's opening`, 0);
      if (index === 0) first = readable;
      if (readable !== undefined) exchanges.add(readable);
      if (readable !== undefined && e.kind === 'message') messages?.push(readable);
      if (e.kind === 'negotiated') negotiated = readable;
      if (e.kind === 'gap') {
        const gap = parseJson(readable?.payload ?? '') as { lost?: number } | undefined;
        result.notes.push(`event ${e.seq}: best-effort recording lost ${gap?.lost ?? 'some'} events here, while the store was unavailable`);
      }
      // Go on from the stored hash, so that each further problem is found on its own.
      expected = e.hash;
      last = e;
      lastReadable = readable;
      index++;
      result.events++;
    }
    if (events.length < page) break;
    after = events.at(-1)!.seq;
  }
  if (last === undefined) problem('the session has no events: not even its opening');
  const readable = unreadable.size === 0;
  const erasedKey = [...unreadable.values()].find((u): u is ErasedError => u instanceof ErasedError);
  const keyState: KeyState =
    erasedKey !== undefined ? { erased: erasedKey } : [...unreadable.values()].some((u) => u instanceof DataKeyMissingError) ? 'missing' : 'present';
  const erasure = checkErasure(sessionId, keyState, ledger, trusted, problem, result.notes, nowUs());
  if (erasure !== undefined) {
    result.erased = erasure;
    result.notes.push(
      `erased (crypto-shredded) at ${new Date(erasure.erasedAtUs / 1000).toISOString()} by ${erasure.by ?? 'an unknown admin'}: ${erasure.reason ?? 'no reason recorded'}; its payloads can never be read, and its chain and seal are verified as stored`,
    );
  }
  for (const u of unreadable.values()) {
    if (u instanceof ErasedError) continue;
    if (u instanceof KekUnavailableError) {
      result.notes.push(
        `its payloads are encrypted under KEK '${u.kekId}', which this config does not have: the checks of the session row against them (owner, negotiated, close) and of its exchanges were skipped (add the KEK to recording.encryption.keys to make them); the chain and the seal need no key`,
      );
    } else {
      // Altered ciphertext, a ciphertext moved from elsewhere, an altered or deleted wrapped key.
      problem(u.message);
    }
  }
  if (!readable && erasedKey !== undefined)
    result.notes.push('the checks of the session row against its payloads (owner, negotiated, close) and of its exchanges were skipped');
  const records = exchanges.records();
  if (messages !== undefined) {
    const { bySeq } = exchangeGroups(messages, idleGapMs!);
    for (const r of records) {
      const group = bySeq.get(r.seq);
      if (group !== undefined) r.group = group;
    }
  }
  const incomplete = records.filter((r) => r.outcome === 'unanswered');
  if (readable)
    result.exchanges = { total: records.length, complete: records.length - incomplete.length, incomplete, ...(listExchanges ? { all: records } : {}) };
  if (readable && incomplete.length > 0 && session.status !== 'open') {
    const named = incomplete.slice(0, 5).map((r) => `#${JSON.stringify(r.id)} ${r.method} (event ${r.seq})`);
    result.notes.push(
      `${incomplete.length} request${incomplete.length === 1 ? ' has' : 's have'} no recorded answer: ${named.join(', ')}${incomplete.length > 5 ? ', …' : ''}`,
    );
  }
  checkRow(session, readable, first, negotiated, lastReadable, ledger, problem, result.notes);

  if (session.status === 'open') {
    result.notes.push(
      'not sealed yet: the session is live, or its gateway stopped and it awaits recovery (the next start of that gateway, or any gateway once it is silent)',
    );
    checkSealedInLedger(session, ledger, problem);
    if (result.problems.length > 0) result.status = 'failed';
    else result.status = 'unsealed';
    return result;
  }
  checkSeal(session, last, result.events, trusted, problem, result.notes);
  checkSealedInLedger(session, ledger, problem, result.notes);
  if (session.status === 'cut-off') result.notes.push(`cut off: ${session.closeReason ?? 'no reason recorded'}`);
  if (result.problems.length > 0) result.status = 'failed';
  else if (result.erased !== undefined) result.status = 'erased';
  return result;
}

/** Every column of the session row against the hashed events that state it; those only payloads state when `readable`. */
function checkRow(
  session: SessionRow,
  readable: boolean,
  first: EventRow | undefined,
  negotiated: EventRow | undefined,
  last: EventRow | undefined,
  ledger: LedgerRow[],
  problem: (message: string) => void,
  notes: string[],
): void {
  if (!readable) {
    // Only an open session's closing columns are known without its payloads (nothing of its end may be claimed).
    if (session.status === 'open') for (const m of closingMismatches(session, undefined).mismatches) problem(m.message);
    // Its payloads unreadable here (encrypted, no key; erased): the row is checked against the ledger's hashed
    // `opened` entry (who, which connection, when) and the rest of its columns are not covered.
    const entry = parseJson(ledger.find((l) => l.kind === 'opened')?.detail ?? 'null') as { connection?: string; subject?: string; openedAtUs?: number } | null;
    if (entry !== null && entry !== undefined) {
      if (entry.subject !== undefined && entry.subject !== session.subject)
        problem(
          `the session row's subject is ${JSON.stringify(session.subject)}, but the ledger recorded ${JSON.stringify(entry.subject)}: the row was changed`,
        );
      if (entry.connection !== undefined && entry.connection !== session.connection)
        problem(
          `the session row's connection is ${JSON.stringify(session.connection)}, but the ledger recorded ${JSON.stringify(entry.connection)}: the row was changed`,
        );
      if (entry.openedAtUs !== undefined && entry.openedAtUs !== session.openedAtUs)
        problem(
          `the session row's openedAtUs is ${session.openedAtUs}, but the ledger recorded the session opening at ${entry.openedAtUs}: the row was changed`,
        );
    }
    notes.push("encrypted: the row's subject, connection and opening time are checked against the ledger; its other columns against nothing");
    return;
  }
  const opening = openingFacts(first);
  for (const m of openingMismatches(session, opening)) problem(m.message);
  if (opening !== undefined && opening.openedAtUs === undefined) {
    // Recorded before the opening event stated its time: the ledger's hash-chained entry does.
    const entry = parseJson(ledger.find((l) => l.kind === 'opened')?.detail ?? 'null') as { openedAtUs?: number } | null;
    if (entry?.openedAtUs !== undefined && entry.openedAtUs !== session.openedAtUs) {
      problem(`the session row's openedAtUs is ${session.openedAtUs}, but the ledger recorded the session opening at ${entry.openedAtUs}: the row was changed`);
    }
  }
  for (const m of negotiatedMismatches(session, negotiated)) problem(m.message);
  const closing = closingMismatches(session, last);
  for (const m of closing.mismatches) problem(m.message);
  if (!closing.counted) notes.push('recorded before the close event stated the counts of refusals and redactions: those two columns are not covered');
}

function missing(sessionId: string, ledger: LedgerRow[]): SessionVerification {
  const tombstone = ledger.find((l) => l.kind === 'tombstone');
  if (tombstone !== undefined) {
    const d = parseJson(tombstone.detail) as { reason?: string; deletedAtUs?: number; eventCount?: number } | undefined;
    const when = d?.deletedAtUs ? new Date(d.deletedAtUs / 1000).toISOString() : 'at an unknown time';
    return {
      sessionId,
      status: 'deleted',
      events: 0,
      problems: [],
      notes: [
        `deleted ${when} by ${tombstone.instanceId} (${d?.reason ?? 'no reason recorded'}); its ${d?.eventCount ?? '?'} events were sealed before deletion`,
      ],
    };
  }
  if (ledger.length > 0) {
    return {
      sessionId,
      status: 'failed',
      events: 0,
      problems: [{ message: 'the session is in the ledger but its recording is gone, with no tombstone: it was deleted outside Portcullis' }],
      notes: [],
    };
  }
  return { sessionId, status: 'failed', events: 0, problems: [{ message: 'no such session in the store' }], notes: [] };
}

export interface LedgerVerification {
  instanceId: string;
  entries: number;
  problems: VerifyProblem[];
}

/** Recomputes an instance's ledger chain, and checks that every session it opened is either present or tombstoned. */
export async function verifyLedger(store: Store, instanceId: string): Promise<LedgerVerification> {
  const result: LedgerVerification = { instanceId, entries: 0, problems: [] };
  let expected = ledgerGenesis(instanceId);
  let index = 0;
  const opened = new Set<string>();
  const tombstoned = new Set<string>();
  for (let after = -1; ; ) {
    const rows = await store.ledger(instanceId, after, page);
    for (const l of rows) {
      if (l.seq !== index) {
        result.problems.push({
          seq: index,
          message: l.seq > index ? `ledger entries ${index} to ${l.seq - 1} of ${instanceId} are missing (deleted)` : `ledger entry ${l.seq} is out of order`,
        });
        index = l.seq;
      }
      if (ledgerHash(expected, l) !== l.hash)
        result.problems.push({ seq: l.seq, message: `ledger entry ${l.seq} of ${instanceId} does not match its hash: it was changed` });
      expected = l.hash;
      if (l.kind === 'opened') opened.add(l.sessionId);
      if (l.kind === 'tombstone') tombstoned.add(l.sessionId);
      index++;
      result.entries++;
    }
    if (rows.length < page) break;
    after = rows.at(-1)!.seq;
  }
  for (const id of opened) {
    if (tombstoned.has(id)) continue;
    if ((await store.getSession(id)) === undefined && !(await store.ledgerFor(id)).some((l) => l.kind === 'tombstone')) {
      result.problems.push({
        message: `session ${id} (opened by ${instanceId}) is gone from the store without a tombstone: it was deleted outside Portcullis`,
      });
    }
  }
  return result;
}

/** Trusted keys for verification: the given PEMs by key id, and optionally every key registered in the store. */
export async function trustedKeys(own: Array<{ keyId: string; publicKeyPem: string }>, store?: Store): Promise<Map<string, string>> {
  const map = new Map(own.map((k) => [k.keyId, k.publicKeyPem]));
  if (store !== undefined) for (const k of await store.keys()) if (!map.has(k.keyId)) map.set(k.keyId, k.publicKey);
  return map;
}
