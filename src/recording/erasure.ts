import { accessRequestOwner } from '../encryption/envelope.js';
import type { Keyring } from '../encryption/keyring.js';
import type { Store } from '../store/store.js';
import type { DataKeyRow, SessionRow } from '../store/types.js';
import type { ErasedDetail, ErasureFactsToRecord } from './batch.js';
import type { ErasureFacts } from './erasure-facts.js';
import { parseJson, signedErasure, type TrustedKeys } from './seal-and-ledger-checks.js';
import { nowUs } from './time.js';

/**
 * Crypto-shredding: a recording is erased by destroying its data key (store.eraseDataKeys). Its rows stay, so the
 * ledger, the hash chain and the seal still verify, but its payloads can never be read again. Who, when and why go
 * into the data key's row and into an `erased` entry of the recorder's ledger, one per erased session.
 *
 * Used by POST /api/sessions/erase (an admin, by session or by subject) and by retention in erase mode.
 */

/** What erasure needs of the recorder (the Recorder is it). */
export interface ErasingRecorder {
  readonly store: Store;
  readonly keyring: Keyring | undefined;
  recordErasure(sessionId: string, facts: ErasureFactsToRecord): Promise<void>;
  /** Forgets destroyed data keys in this process and tells the other replicas (recorder.ts). */
  keysDestroyed(owners: readonly string[]): void;
}

/** Erasure asked of a gateway whose recordings are plain: there is no key to destroy. */
export class NotEncryptedError extends Error {
  constructor() {
    super(
      'recordings are not encrypted: nothing to shred; use retention to delete (recording.retention), or configure recording.encryption and run `portcullis store encrypt` first',
    );
    this.name = 'NotEncryptedError';
  }
}

/** Which recordings: sessions by id, and/or every session and access request of a subject (of one issuer when given). */
export interface ErasureChoice {
  sessions?: readonly string[];
  subject?: string;
  issuer?: string;
}

export interface ErasureOutcome {
  /** Sessions whose data key this erasure destroyed. */
  erased: Array<{ session: string; subject: string | null; connection: string | null }>;
  /** Access requests (of the subject) whose reasons were erased with them. */
  accessRequests: string[];
  /** Chosen sessions it could not erase, and why (plain, still open, erased before, unknown). */
  notErased: Array<{ session: string; why: string }>;
}

/** Every session of a subject (of one issuer when given), a page at a time. */
async function sessionsOf(store: Store, subject: string, issuer: string | undefined): Promise<SessionRow[]> {
  const out: SessionRow[] = [];
  let before: { openedAtUs: number; id: string } | undefined;
  for (;;) {
    const page = await store.listSessions({ subject, ...(issuer === undefined ? {} : { issuer }), limit: 1000, ...(before ? { before } : {}) });
    out.push(...page);
    if (page.length < 1000) return out;
    const last = page.at(-1)!;
    before = { openedAtUs: last.openedAtUs, id: last.id };
  }
}

/** Lists of owners in statements of bounded size (a subject may have tens of thousands of sessions; SQL parameters are limited). */
function chunks<T>(all: readonly T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.slice(i, i + size));
  return out;
}

function erasedBefore(k: DataKeyRow): string {
  return `erased before, at ${new Date((k.erasedAtUs ?? 0) / 1000).toISOString()} by ${k.erasedBy ?? 'unknown'} (${k.eraseReason ?? 'no reason recorded'})`;
}

/**
 * Erases the chosen recordings, `by` whom and why. Throws NotEncryptedError when the recorder has no keyring.
 * The ledger entries, signed, are written before the keys are destroyed; an erasure that stopped in between is
 * finished by the sweeper (sweeper.ts) or by erasing again, and verify says so until then.
 */
export async function eraseRecordings(r: ErasingRecorder, choice: ErasureChoice, by: string, reason: string): Promise<ErasureOutcome> {
  if (r.keyring === undefined) throw new NotEncryptedError();
  const store = r.store;
  const outcome: ErasureOutcome = { erased: [], accessRequests: [], notErased: [] };
  const chosen = new Map<string, SessionRow>();
  for (const id of new Set(choice.sessions ?? [])) {
    const row = await store.getSession(id);
    if (row === undefined) outcome.notErased.push({ session: id, why: 'no such session' });
    else chosen.set(id, row);
  }
  if (choice.subject !== undefined) for (const row of await sessionsOf(store, choice.subject, choice.issuer)) chosen.set(row.id, row);
  const requests = choice.subject === undefined ? [] : await store.accessRequestsOf(choice.subject, choice.issuer);

  const keys = new Map<string, DataKeyRow>();
  for (const part of chunks([...chosen.keys(), ...requests.map((q) => accessRequestOwner(q.id))]))
    for (const k of await store.dataKeys(part)) keys.set(k.owner, k);
  const sessions: SessionRow[] = [];
  for (const row of chosen.values()) {
    const key = keys.get(row.id);
    if (row.status === 'open') outcome.notErased.push({ session: row.id, why: 'still open: erase it once it has ended' });
    else if (key === undefined)
      outcome.notErased.push({
        session: row.id,
        why: 'recorded plain (before encryption): no key to shred; run `portcullis store encrypt` first, or delete it with retention',
      });
    else if (key.wrapped === null) outcome.notErased.push({ session: row.id, why: erasedBefore(key) });
    else sessions.push(row);
  }
  const liveRequests = requests.filter((q) => keys.get(accessRequestOwner(q.id))?.wrapped != null);
  const erasedAtUs = nowUs();
  // The signed ledger entries first, then the keys: a gateway that stops in between leaves a signed statement whose
  // key still exists, which the sweeper then destroys (sweeper.ts); never a destroyed key that nothing vouches for.
  await Promise.all([
    ...sessions.map((s) => r.recordErasure(s.id, { by, reason, erasedAtUs, subject: s.subject, connection: s.connection })),
    ...liveRequests.map((q) => r.recordErasure(q.id, { by, reason, erasedAtUs, subject: q.requesterSubject, connection: q.connection })),
  ]);
  const owners = [...sessions.map((s) => s.id), ...liveRequests.map((q) => accessRequestOwner(q.id))];
  const done = new Set<string>();
  for (const part of chunks(owners)) for (const owner of await store.eraseDataKeys(part, by, reason, erasedAtUs)) done.add(owner);
  r.keysDestroyed(owners);
  // A key destroyed meanwhile with this erasure's own facts was destroyed for it (a sweeper finishing what it took
  // for an erasure cut short, when this one ran past the grace): erased by this request, not by another.
  const others = owners.filter((o) => !done.has(o));
  for (const part of chunks(others))
    for (const k of await store.dataKeys(part)) if (k.erasedBy === by && k.eraseReason === reason && k.erasedAtUs === erasedAtUs) done.add(k.owner);

  for (const s of sessions) {
    if (done.has(s.id)) outcome.erased.push({ session: s.id, subject: s.subject, connection: s.connection });
    else outcome.notErased.push({ session: s.id, why: 'erased meanwhile by another request' });
  }
  for (const q of liveRequests) if (done.has(accessRequestOwner(q.id))) outcome.accessRequests.push(q.id);
  return outcome;
}

/**
 * The sessions among `ids` whose data key is erased, with who, when and why as the key's row says, and whether a signed
 * ledger entry vouches for it (the console and the API show them; one query each for the keys and the entries).
 */
export async function erasedSessions(store: Store, ids: readonly string[], trusted: TrustedKeys): Promise<Map<string, ErasureFacts>> {
  const erased = (await Promise.all(chunks(ids).map((part) => store.dataKeys(part)))).flat().filter((k) => k.wrapped === null);
  const entries = (await Promise.all(chunks(erased.map((k) => k.owner)).map((part) => store.erasureEntries(part)))).flat();
  return new Map(
    erased.map((k) => {
      const facts = { erasedAtUs: k.erasedAtUs ?? 0, by: k.erasedBy, reason: k.eraseReason };
      const vouched = entries.some((l) => {
        if (l.sessionId !== k.owner) return false;
        const d = (parseJson(l.detail) ?? {}) as Partial<ErasedDetail>;
        return d.erasedAtUs === facts.erasedAtUs && d.by === facts.by && d.reason === facts.reason && signedErasure(k.owner, d, trusted);
      });
      return [k.owner, { ...facts, vouched }] as const;
    }),
  );
}
