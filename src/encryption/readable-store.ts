import type { AuditEventRow } from '../store/audit.js';
import type { DataKeyStore } from '../store/data-keys.js';
import type { Store } from '../store/store.js';
import type { AccessRequestRow } from '../store/access-types.js';
import type { ReviewRow } from '../store/review-types.js';
import type { EventRow } from '../store/types.js';
import { accessReasonAad, accessRequestOwner, CiphertextError, eventAad, isSealed, openText, reviewParamsAad } from './envelope.js';
import { ErasedError, KekUnavailableError, WrappedKeyError } from './kek.js';
import type { Keyring } from './keyring.js';

/**
 * The recordings as people read them: a Store whose events (and reviews' params, access requests' reasons) come back
 * in plain text, opened with the data keys the keyring unwraps. Everything that shows or ships payloads (the CLI's
 * show/replay/export, the API, the console, the audit streams) reads through it; `verify` and the recorder use the
 * store itself, since the hash chain covers the stored (encrypted) form.
 *
 * - A page of events costs one `dataKeys` query (for the sessions whose values in it are sealed), and one unwrap per
 *   session while the keyring's cache holds its key. Plain values (recorded before encryption) pass through as they are.
 * - Events (`events`, `lastEvent`, `openingEvents`) that cannot be opened throw: `KekUnavailableError` (no such KEK
 *   here, or no keyring at all), `ErasedError` (crypto-shredded), `WrappedKeyError` or `CiphertextError` (altered),
 *   `DataKeyMissingError` (the key's row deleted outside Portcullis). `openingEventsSettled` answers per session.
 * - Metadata reads never fail on a payload: a review's params, an access request's reason and an audit event's
 *   payload that cannot be opened read as a statement of why (`unreadableJson`), so that listing reviews and requests,
 *   deciding them, and shipping the audit stream go on (the value stays sealed in the store).
 */

/** A sealed value whose session's data key row is gone: erasing keeps the row (with no key), so this is tampering. */
export class DataKeyMissingError extends Error {
  constructor(readonly owner: string) {
    super(
      `the recording of ${owner} is encrypted, but the store has no data key for it (table data_keys): the row was deleted outside Portcullis (erasing keeps it), so it can never be read`,
    );
    this.name = 'DataKeyMissingError';
  }
}

/** Why a recorded value cannot be read here. */
export type UnreadableError = KekUnavailableError | ErasedError | WrappedKeyError | CiphertextError | DataKeyMissingError;

export function isUnreadable(err: unknown): err is UnreadableError {
  return (
    err instanceof KekUnavailableError ||
    err instanceof ErasedError ||
    err instanceof WrappedKeyError ||
    err instanceof CiphertextError ||
    err instanceof DataKeyMissingError
  );
}

/**
 * What kind of reason it is, for those who answer differently: the KEK is not configured here (the config can fix
 * that), the data key was erased (for good), or the recording was altered (a wrapped key, a ciphertext, a key row).
 */
export type UnreadableKind = 'no-kek' | 'erased' | 'altered';

export function unreadableKind(err: UnreadableError): UnreadableKind {
  return err instanceof KekUnavailableError ? 'no-kek' : err instanceof ErasedError ? 'erased' : 'altered';
}

/** A value that could not be opened, as the JSON that stands for it where a listing must go on. */
export function unreadableJson(err: UnreadableError): string {
  return JSON.stringify({ unreadable: err.message });
}

/** What an event-like row needs to be opened. */
type Sealable = { sessionId: string; seq: number; payload: string; forwarded?: string | null };

const sealedEvent = (e: Sealable): boolean => isSealed(e.payload) || (typeof e.forwarded === 'string' && isSealed(e.forwarded));

/** Opens sealed values with the data keys of their owners, fetched in bulk. */
export class RecordingReader {
  constructor(
    private readonly store: Pick<DataKeyStore, 'dataKeys'>,
    readonly keyring: Keyring | undefined,
  ) {}

  /** Each owner's data key, or why it cannot be had: one query for all of them. */
  async dataKeys(owners: readonly string[]): Promise<Map<string, Buffer | UnreadableError>> {
    const out = new Map<string, Buffer | UnreadableError>();
    if (owners.length === 0) return out;
    const rows = new Map((await this.store.dataKeys(owners)).map((r) => [r.owner, r]));
    for (const owner of owners) {
      const row = rows.get(owner);
      try {
        if (row === undefined) throw new DataKeyMissingError(owner);
        if (this.keyring !== undefined) out.set(owner, await this.keyring.dataKey(row));
        else if (row.wrapped === null) throw new ErasedError(owner, row.erasedAtUs ?? 0, row.erasedBy, row.eraseReason);
        else throw new KekUnavailableError(owner, row.kekId);
      } catch (err) {
        // Anything else (a KMS that does not answer) is not a fact about the recording: it propagates.
        if (!isUnreadable(err)) throw err;
        out.set(owner, err);
      }
    }
    return out;
  }

  /** The events with their payload (and forwarded) opened, each one or why it cannot be, in the same order. */
  async settle<T extends Sealable>(events: readonly T[]): Promise<Array<T | UnreadableError>> {
    const keys = await this.dataKeys([...new Set(events.filter(sealedEvent).map((e) => e.sessionId))]);
    return events.map((e) => {
      if (!sealedEvent(e)) return e;
      const key = keys.get(e.sessionId)!;
      if (!Buffer.isBuffer(key)) return key;
      const open = (stored: string, field: 'payload' | 'forwarded') =>
        isSealed(stored) ? openText(key, eventAad(e.sessionId, e.seq, field), stored, `session ${e.sessionId} event ${e.seq}'s ${field}`) : stored;
      try {
        const opened: T = { ...e, payload: open(e.payload, 'payload') };
        if (typeof e.forwarded === 'string') opened.forwarded = open(e.forwarded, 'forwarded');
        return opened;
      } catch (err) {
        if (!isUnreadable(err)) throw err;
        return err;
      }
    });
  }

  /** The events opened; throws the first event's reason when one cannot be. */
  async open<T extends Sealable>(events: readonly T[]): Promise<T[]> {
    const settled = await this.settle(events);
    for (const e of settled) if (isUnreadable(e)) throw e;
    return settled as T[];
  }

  /** Reviews with their params opened (a review's params use its session's data key); unreadable ones say why. */
  async reviews(rows: ReviewRow[]): Promise<ReviewRow[]> {
    const keys = await this.dataKeys([...new Set(rows.filter((r) => isSealed(r.params)).map((r) => r.sessionId))]);
    return rows.map((r) => {
      if (!isSealed(r.params)) return r;
      return { ...r, params: openOr(keys.get(r.sessionId)!, reviewParamsAad(r.id), r.params, `review ${r.id}'s params`, unreadableJson) };
    });
  }

  /** Access requests with their reasons opened (each request has its own data key); unreadable ones say why. */
  async accessRequests(rows: AccessRequestRow[]): Promise<AccessRequestRow[]> {
    const keys = await this.dataKeys(rows.filter((r) => isSealed(r.reason)).map((r) => accessRequestOwner(r.id)));
    return rows.map((r) => {
      if (!isSealed(r.reason)) return r;
      const reason = openOr(
        keys.get(accessRequestOwner(r.id))!,
        accessReasonAad(r.id),
        r.reason,
        `access request ${r.id}'s reason`,
        (err) => `(unreadable: ${err.message})`,
      );
      return { ...r, reason };
    });
  }
}

function openOr(key: Buffer | UnreadableError, aad: string, stored: string, where: string, instead: (err: UnreadableError) => string): string {
  if (!Buffer.isBuffer(key)) return instead(key);
  try {
    return openText(key, aad, stored, where);
  } catch (err) {
    if (!isUnreadable(err)) throw err;
    return instead(err);
  }
}

/** A readable store, with the store it reads and its reader (for `verify`, which checks the stored form). */
const readings = new WeakMap<Store, { raw: Store; reader: RecordingReader }>();

/** The store as people read it (see above); `keyring` undefined: no KEK configured, only plain values read. */
export function readableStore(store: Store, keyring: Keyring | undefined): Store {
  const { raw } = readingOf(store);
  const reader = new RecordingReader(raw, keyring);
  const first = <T>(rows: T[]): T | undefined => rows[0];
  const readable: Store = {
    ...raw,
    events: async (sessionId, afterSeq, limit) => reader.open(await raw.events(sessionId, afterSeq, limit)),
    lastEvent: async (sessionId) => {
      const last = await raw.lastEvent(sessionId);
      return last === undefined ? undefined : first(await reader.open([last]));
    },
    openingEvents: async (sessionIds) => reader.open(await raw.openingEvents(sessionIds)),
    auditEvents: async (after, limit) => {
      const rows = await raw.auditEvents(after, limit);
      return (await reader.settle(rows)).map((e, i): AuditEventRow => (isUnreadable(e) ? { ...rows[i]!, payload: unreadableJson(e) } : e));
    },
    getReview: async (id) => {
      const row = await raw.getReview(id);
      return row === undefined ? undefined : first(await reader.reviews([row]));
    },
    listReviews: async (query) => reader.reviews(await raw.listReviews(query)),
    getAccessRequest: async (id) => {
      const row = await raw.getAccessRequest(id);
      return row === undefined ? undefined : first(await reader.accessRequests([row]));
    },
    listAccessRequests: async (query) => reader.accessRequests(await raw.listAccessRequests(query)),
  };
  readings.set(readable, { raw, reader });
  return readable;
}

/** The store a (readable) store reads, and how it opens values: a plain store is its own, with no keyring. */
export function readingOf(store: Store): { raw: Store; reader: RecordingReader } {
  return readings.get(store) ?? { raw: store, reader: new RecordingReader(store, undefined) };
}

/**
 * The opening events of these sessions, opened where they can be, and why not for the others (a listing shows those
 * sessions' metadata, and that their recording cannot be read here).
 */
export async function openingEventsSettled(
  store: Store,
  sessionIds: readonly string[],
): Promise<{ events: EventRow[]; unreadable: Map<string, UnreadableError> }> {
  const { raw, reader } = readingOf(store);
  const events: EventRow[] = [];
  const unreadable = new Map<string, UnreadableError>();
  const stored = await raw.openingEvents(sessionIds);
  (await reader.settle(stored)).forEach((e, i) => {
    if (isUnreadable(e)) unreadable.set(stored[i]!.sessionId, e);
    else events.push(e);
  });
  return { events, unreadable };
}
