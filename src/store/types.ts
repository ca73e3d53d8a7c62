/**
 * What the recording store holds. Times are microseconds since the Unix epoch (a JS number holds them
 * exactly until the year 2255); hashes are lower-case hex SHA-256.
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

/** Where a just-in-time access request is: waiting, decided, or (for a grant) run out or taken back. */
export type AccessRequestStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'revoked';

/** A just-in-time access request and, once decided, its decision; an approved one is a grant until `expiresAtUs`. */
export interface AccessRequestRow {
  id: string;
  connection: string;
  requesterSubject: string;
  requesterIssuer: string;
  requesterEmail: string | null;
  reason: string;
  /** How long the access is asked for. */
  durationMs: number;
  status: AccessRequestStatus;
  createdAtUs: number;
  decidedAtUs: number | null;
  deciderSubject: string | null;
  deciderIssuer: string | null;
  decisionNote: string | null;
  /** Pending: when the request lapses unanswered; approved: when the grant ends. */
  expiresAtUs: number;
}

export interface AccessRequestQuery {
  status?: AccessRequestStatus;
  connection?: string;
  /** Newest first. */
  limit: number;
}

/**
 * Where a held call's review is: waiting for approvers; approved (the holding gateway may forward the call once);
 * released (it did: an approval is single-use); rejected; expired (no decision in time); interrupted (the holding
 * gateway stopped or restarted, so the call failed); cancelled (the client cancelled or left).
 */
export type ReviewStatus = 'pending' | 'approved' | 'released' | 'rejected' | 'expired' | 'interrupted' | 'cancelled';

/** One approver's approval of a review. */
export interface ReviewApproval {
  subject: string;
  issuer: string;
  email: string | null;
  atUs: number;
  note: string | null;
}

/** A call held by a guardrail rule until enough approvers approve exactly it. */
export interface ReviewRow {
  id: string;
  status: ReviewStatus;
  /** The rule that held it. */
  rule: string;
  connection: string;
  sessionId: string;
  /** The gateway instance holding the call: only it can forward it. */
  instanceId: string;
  method: string;
  /** The tool, prompt or resource the call is about, when it is about one. */
  target: string | null;
  /** The virtual server the call came through (src/virtual); null for a call made on the connection itself. */
  virtualServer: string | null;
  /** The tool's or prompt's name on that virtual server (prefixed or renamed); null when not through one, or for a resource. */
  virtualTarget: string | null;
  /** The request's params as JSON text, as recorded (client-argument masking applied when configured). */
  params: string;
  /** SHA-256 (hex) of the canonical method and params: what an approval is bound to. */
  digest: string;
  requesterSubject: string;
  requesterIssuer: string;
  requesterEmail: string | null;
  /** Groups any of whose members may approve or reject. */
  approverGroups: string[];
  /** Approvals (by distinct approvers) needed. */
  minApprovals: number;
  approvals: ReviewApproval[];
  createdAtUs: number;
  /** When the review times out unanswered. */
  expiresAtUs: number;
  /** When it left `pending` (approved, rejected, expired, …). */
  decidedAtUs: number | null;
  /** Who rejected it, or gave the last approval. */
  deciderSubject: string | null;
  deciderIssuer: string | null;
  deciderEmail: string | null;
  /** The rejection's reason, or why the review ended without a decision. */
  decisionNote: string | null;
}

export interface ReviewQuery {
  status?: ReviewStatus;
  connection?: string;
  instanceId?: string;
  /** Newest first. */
  limit: number;
}

/** What a review update writes; `approvals` replaces the list. */
export type ReviewUpdate = Pick<ReviewRow, 'status'> &
  Partial<Pick<ReviewRow, 'approvals' | 'decidedAtUs' | 'deciderSubject' | 'deciderIssuer' | 'deciderEmail' | 'decisionNote'>>;

/**
 * A connection's pinned tool: the definition an admin trusts (first seen, or approved since) and, when the server
 * now offers another one (or a tool never approved), that definition, pending approval. A tool with a pending
 * definition is quarantined: hidden from tools/list, its calls refused.
 */
export interface ToolPinRow {
  connection: string;
  tool: string;
  /** SHA-256 (hex) of the approved definition; null for a tool that appeared later and was never approved. */
  digest: string | null;
  /** The approved definition as canonical JSON (name, description, inputSchema, annotations). */
  definition: string | null;
  /** A changed or new definition the server offers, awaiting approval. */
  pendingDigest: string | null;
  pendingDefinition: string | null;
  pendingSinceUs: number | null;
  /** When the server's list last lacked the tool; null while it offers it. */
  removedAtUs: number | null;
  pinnedAtUs: number;
  approvedAtUs: number | null;
  approvedBy: string | null;
  /**
   * Why the approved definition deserves a second look: what the poisoning scan found in it, or the name another
   * connection offered first. Kept after an admin approved it anyway; empty for most pins.
   */
  reasons: ToolPinReason[];
  /** Why the pending definition is held besides being new or changed (the scan's findings); empty when none. */
  pendingReasons: ToolPinReason[];
}

/** One reason a tool definition is suspicious: the rule, where in the definition, and what it found. */
export interface ToolPinReason {
  /** The scan rule (`bidi-control`, `hide-from-user`, …) or `duplicate-name`. */
  rule: string;
  /** Where: `description`, `inputSchema.properties.path.description`, `name`, … */
  field: string;
  /** What, with the text around it quoted, invisible characters shown as code points. */
  message: string;
  /** Other connections involved (a tool it names, the one that offered the name first). */
  connections?: string[];
}

/** What a tool pin update writes. */
export type ToolPinUpdate = Partial<Omit<ToolPinRow, 'connection' | 'tool' | 'pinnedAtUs'>>;

/**
 * A console sign-in on its way: the browser went to the IdP, and comes back with `state`. Kept in the store so that
 * any gateway instance can finish it; taken (and deleted) once.
 */
export interface ConsoleLoginRow {
  state: string;
  /** Which configured issuer (its URL). */
  issuer: string;
  /** PKCE: the verifier whose challenge went to the IdP. */
  codeVerifier: string;
  nonce: string;
  /** The console path to go back to. */
  returnTo: string;
  /** What the authorization request named, for the token request to name the same. */
  redirectUri: string;
  resource: string;
  expiresAtUs: number;
}

/**
 * A signed-in person in the console. The browser holds a random id in an HttpOnly cookie; the store keeps only its
 * SHA-256, the identity the sign-in established, and the CSRF token the console sends back on every change.
 */
export interface ConsoleSessionRow {
  /** SHA-256 (hex) of the cookie's value. */
  idHash: string;
  subject: string;
  issuer: string;
  email: string | null;
  name: string | null;
  groups: string[];
  csrfToken: string;
  createdAtUs: number;
  expiresAtUs: number;
}

/**
 * An agent the gateway accepts tunnels from: its name and the SHA-256 of its token (the token itself is shown once,
 * when created, and never stored).
 */
export interface AgentRow {
  name: string;
  /** SHA-256 (hex) of the agent's token. */
  tokenHash: string;
  createdAtUs: number;
  /** Set once revoked: the token no longer opens a tunnel. */
  revokedAtUs: number | null;
  /** When a gateway last accepted a tunnel from it. */
  lastSeenAtUs: number | null;
}
