/**
 * What the recording store holds: sessions, their events, the ledger, signing keys and data keys. Times are
 * microseconds since the Unix epoch (a JS number holds them exactly until the year 2255); hashes are lower-case hex
 * SHA-256. The store's other rows are in access-types.ts, review-types.ts, pin-types.ts, console-types.ts and
 * agent-types.ts, with the same conventions.
 */

export type SessionStatus = 'open' | 'closed' | 'cut-off';

export const sessionStatuses: readonly SessionStatus[] = ['open', 'closed', 'cut-off'];

/** One session's summary row: who, to what, when, and (once sealed) how its recording ends. */
export interface SessionRow {
  id: string;
  /** The gateway instance that recorded it (see recording/instance.ts). */
  instanceId: string;
  connection: string;
  subject: string;
  /** The subject's issuer; null for sessions recorded before store version 6. */
  issuer: string | null;
  email: string | null;
  groups: string[];
  /**
   * The downstream edge: streamable-http or sse (2025-era sessions), modern (2026-07-28 exchanges, see `eraOfEdge`), or
   * virtual (a member session a virtual server's session opened in-process; its opening event names that session).
   */
  edge: string;
  remoteAddress: string | null;
  clientInfo: unknown;
  serverInfo: unknown;
  protocolVersion: string | null;
  openedAtUs: number;
  closedAtUs: number | null;
  status: SessionStatus;
  closeReason: string | null;
  /** Set by the seal: how many events the recording has, and the hash of the last one. */
  eventCount: number | null;
  lastHash: string | null;
  /** Ed25519 signature (base64) over the seal statement, and the id of the key that made it. */
  seal: string | null;
  sealKeyId: string | null;
  /** Verdicts that refused a message, and redactions: counted for search. */
  denials: number;
  redactions: number;
}

/** The edge name of the sessions that serve 2026-07-28 (modern) clients: one pooled session per connection, principal and capabilities. */
export const modernEdge = 'modern';

/** Which era of MCP a recorded session served its client in. */
export type SessionEra = 'modern' | 'legacy';

export const sessionEras: readonly SessionEra[] = ['modern', 'legacy'];

export function eraOfEdge(edge: string): SessionEra {
  return edge === modernEdge ? 'modern' : 'legacy';
}

/** A session row as it is when the session opens: what is known then, and nothing of how it ends. */
export function openSessionRow(
  fields: Pick<SessionRow, 'id' | 'instanceId' | 'connection' | 'subject' | 'openedAtUs'> &
    Partial<Pick<SessionRow, 'issuer' | 'email' | 'groups' | 'edge' | 'remoteAddress'>>,
): SessionRow {
  return {
    issuer: null,
    email: null,
    groups: [],
    edge: 'streamable-http',
    remoteAddress: null,
    clientInfo: null,
    serverInfo: null,
    protocolVersion: null,
    closedAtUs: null,
    status: 'open',
    closeReason: null,
    eventCount: null,
    lastHash: null,
    seal: null,
    sealKeyId: null,
    denials: 0,
    redactions: 0,
    ...fields,
  };
}

export type EventKind = 'open' | 'negotiated' | 'message' | 'verdict' | 'gap' | 'truncated' | 'close';
export type EventDirection = 'toServer' | 'toClient';
/**
 * Where a message event was taken: as `received` from its sender, as `delivered` to its receiver, or both at
 * once (`relayed`: passed straight through with no stage acting on it; `payload` as received, `forwarded` as sent).
 */
export type EventBoundary = 'received' | 'delivered' | 'relayed';

/** One recorded event; `payload` is the JSON text as it passed (for messages) or a JSON object describing it. */
export interface EventRow {
  sessionId: string;
  seq: number;
  timeUs: number;
  /** Microseconds since the session opened, from a monotonic clock. */
  monoUs: number;
  kind: EventKind;
  direction: EventDirection | null;
  boundary: EventBoundary | null;
  payload: string;
  /** For a `relayed` message: the JSON exactly as forwarded (ids renumbered); otherwise null. */
  forwarded: string | null;
  hash: string;
}

export type LedgerKind = 'opened' | 'sealed' | 'tombstone' | 'access' | 'erased' | 'encrypted';

/**
 * The ledger: one hash chain per gateway instance over every session it opened, sealed or deleted, so a
 * session that disappears without a tombstone, or a tombstone that disappears, is noticed.
 */
export interface LedgerRow {
  instanceId: string;
  seq: number;
  timeUs: number;
  kind: LedgerKind;
  sessionId: string;
  /** JSON: for `sealed` and `tombstone`, the seal (event count, last hash, signature, key id, status). */
  detail: string;
  hash: string;
}

export interface KeyRow {
  keyId: string;
  /** SPKI PEM of the Ed25519 public key. */
  publicKey: string;
  instanceId: string;
  createdAtUs: number;
}

/** What a seal sets on the session row. */
export interface SealFields {
  status: Exclude<SessionStatus, 'open'>;
  closedAtUs: number;
  closeReason: string;
  eventCount: number;
  lastHash: string;
  seal: string;
  sealKeyId: string;
  denials: number;
  redactions: number;
}

/** Session facts learned after it opened (the initialize exchange). */
export interface NegotiatedFields {
  clientInfo: unknown;
  serverInfo: unknown;
  protocolVersion: string | null;
}

/** Everything one group commit writes, in one transaction, in this order. */
export interface WriteBatch {
  sessionsOpened: SessionRow[];
  events: EventRow[];
  negotiated: Array<{ id: string } & NegotiatedFields>;
  sealed: Array<{ id: string } & SealFields>;
  ledger: LedgerRow[];
  /** Sessions whose events and row are deleted (their tombstones are in `ledger`). */
  deletions: string[];
  /** Wrapped data keys of sessions this batch opens (recording encryption, src/encryption/); before their events. */
  dataKeys: DataKeyRow[];
}

export function emptyBatch(): WriteBatch {
  return { sessionsOpened: [], events: [], negotiated: [], sealed: [], ledger: [], deletions: [], dataKeys: [] };
}

export function batchSize(b: WriteBatch): number {
  return b.sessionsOpened.length + b.events.length + b.negotiated.length + b.sealed.length + b.ledger.length + b.deletions.length + b.dataKeys.length;
}

/**
 * A data key, wrapped by a KEK (src/encryption/): one per session (owner = the session id) and one per just-in-time
 * access request (owner = `access:<id>`). Erasing (crypto-shredding) sets `wrapped` to null for good and says who,
 * when and why; the payloads it encrypted stay, and verify still checks them, but nobody can read them again.
 */
export interface DataKeyRow {
  owner: string;
  /** The KEK that wraps it (its id in recording.encryption.keys). */
  kekId: string;
  /** The wrapped key (provider-specific text); null once erased. */
  wrapped: string | null;
  createdAtUs: number;
  erasedAtUs: number | null;
  /** Who erased it: `<subject> (<issuer>)` of an admin, or `retention`. */
  erasedBy: string | null;
  eraseReason: string | null;
}

/**
 * What the store keeps to recognise a KEK by its id: a known value wrapped under it. A process whose KEK of that id
 * does not unwrap it holds other key material under the same name, and is refused at start.
 */
export interface KekCheckRow {
  kekId: string;
  provider: string;
  check: string;
  createdAtUs: number;
}

export interface SessionQuery {
  subject?: string;
  /** With `subject`: that subject of this issuer only (one person, not whoever another IdP gave the same subject). */
  issuer?: string;
  connection?: string;
  status?: SessionStatus;
  /** Only sessions of this era (by their edge). */
  era?: SessionEra;
  /** Sessions opened at or after this time (µs). */
  fromUs?: number;
  /** Sessions opened before this time (µs). */
  toUs?: number;
  hadDenial?: boolean;
  hadRedaction?: boolean;
  /** Text found (case-insensitively) in the subject, e-mail, connection or id. */
  search?: string;
  /** Page size; newest first. */
  limit: number;
  /** Keyset cursor: sessions strictly older than this (opened time, then id). */
  before?: { openedAtUs: number; id: string };
}
