import type { AgentRow, ConsoleLoginRow, ConsoleSessionRow, AccessRequestQuery, AccessRequestRow, AccessRequestStatus, EventRow, KeyRow, LedgerRow, ReviewQuery, ReviewRow, ReviewStatus, ReviewUpdate, SessionQuery, SessionRow, ToolPinRow, ToolPinUpdate, WriteBatch } from './types.js';

/**
 * The recording store: one interface, two backends (SQLite embedded, PostgreSQL shared) that pass the same
 * test suite (test/store/contract.ts). The recorder is its only writer; the CLI and the API read it.
 */
export interface Store {
  readonly backend: 'sqlite' | 'postgres';
  /** Where it is, for logs and errors; never a password. */
  readonly location: string;

  /** Applies pending migrations; returns the schema version now in place. */
  migrate(): Promise<number>;
  /** Throws StoreSchemaError when the store has no Portcullis schema or a newer one (read-only commands). */
  checkSchema(): Promise<void>;

  /** Writes a group commit in one transaction: all of it or nothing. */
  write(batch: WriteBatch): Promise<void>;
  /**
   * Proves the store takes event writes again after a failure: inserts a throw-away event in a transaction that
   * is rolled back (so locks, permissions and triggers are exercised) without waiting on a lock.
   */
  probe(): Promise<void>;
  /** Records that an instance is alive. */
  heartbeat(instanceId: string, nowUs: number): Promise<void>;
  /** Instances whose last heartbeat is older than `beforeUs`. */
  staleInstances(beforeUs: number): Promise<string[]>;
  registerKey(key: KeyRow): Promise<void>;

  /** Adds a request; false (nothing written) when its id exists or its requester already waits on the connection. */
  insertAccessRequest(row: AccessRequestRow): Promise<boolean>;
  getAccessRequest(id: string): Promise<AccessRequestRow | undefined>;
  listAccessRequests(query: AccessRequestQuery): Promise<AccessRequestRow[]>;
  /**
   * Moves a request from status `from` to `to` with the given decision fields; false when it was no longer in
   * `from` (another approver, or another gateway, got there first).
   */
  updateAccessRequest(id: string, from: AccessRequestStatus, to: Pick<AccessRequestRow, 'status' | 'expiresAtUs'> & Partial<Pick<AccessRequestRow, 'decidedAtUs' | 'deciderSubject' | 'deciderIssuer' | 'decisionNote'>>): Promise<boolean>;

  insertReview(row: ReviewRow): Promise<void>;
  getReview(id: string): Promise<ReviewRow | undefined>;
  listReviews(query: ReviewQuery): Promise<ReviewRow[]>;
  /**
   * Compare-and-set: applies `to` only while the review is still in status `from` with `approvalCount` approvals
   * (two approvers approving at once, or a decision racing the timeout, cannot both win); false when it was not.
   */
  updateReview(id: string, from: { status: ReviewStatus; approvalCount: number }, to: ReviewUpdate): Promise<boolean>;

  /** Adds a pin; false (nothing written) when the connection already has one for the tool (another gateway pinned it first). */
  insertToolPin(row: ToolPinRow): Promise<boolean>;
  /** A connection's pins, or every connection's, by connection then tool. */
  listToolPins(connection?: string): Promise<ToolPinRow[]>;
  /**
   * Compare-and-set on the pin's approved and pending digests (null matches null): applies `to` only while both
   * are still as the caller last read them; false when they were not.
   */
  updateToolPin(connection: string, tool: string, expect: { digest: string | null; pendingDigest: string | null }, to: ToolPinUpdate): Promise<boolean>;

  /** Adds an agent, or replaces its token (and clears a revocation) when `replace`; false when it exists and not `replace`. */
  putAgent(row: AgentRow, replace: boolean): Promise<boolean>;
  getAgent(name: string): Promise<AgentRow | undefined>;
  /** Every agent, by name. */
  listAgents(): Promise<AgentRow[]>;
  /** Sets the given fields of an agent; false when there is no such agent. */
  updateAgent(name: string, to: Partial<Pick<AgentRow, 'revokedAtUs' | 'lastSeenAtUs'>>): Promise<boolean>;

  /** A console sign-in started (see ConsoleLoginRow). */
  putConsoleLogin(row: ConsoleLoginRow): Promise<void>;
  /** Takes the sign-in with this state once: it is deleted, and only returned when not expired. */
  takeConsoleLogin(state: string, nowUs: number): Promise<ConsoleLoginRow | undefined>;
  putConsoleSession(row: ConsoleSessionRow): Promise<void>;
  /** The console session with this id hash, unless it has expired. */
  getConsoleSession(idHash: string, nowUs: number): Promise<ConsoleSessionRow | undefined>;
  deleteConsoleSession(idHash: string): Promise<void>;
  /** Deletes expired console sign-ins and sessions; how many. */
  pruneConsole(nowUs: number): Promise<number>;

  getSession(id: string): Promise<SessionRow | undefined>;
  listSessions(query: SessionQuery): Promise<SessionRow[]>;
  /** Sessions still marked open, optionally only those of some instances. */
  openSessions(instanceIds?: readonly string[]): Promise<SessionRow[]>;
  /** Sealed sessions that closed before `beforeUs`, oldest first. */
  expiredSessions(beforeUs: number, limit: number): Promise<SessionRow[]>;
  /** Events after `afterSeq`, in order, at most `limit`. */
  events(sessionId: string, afterSeq: number, limit: number): Promise<EventRow[]>;
  lastEvent(sessionId: string): Promise<EventRow | undefined>;
  /** The first event (seq 0, the opening) of each of these sessions that has one, in no particular order. */
  openingEvents(sessionIds: readonly string[]): Promise<EventRow[]>;
  /** Ledger rows of one instance after `afterSeq`, in order. */
  ledger(instanceId: string, afterSeq: number, limit: number): Promise<LedgerRow[]>;
  ledgerInstances(): Promise<string[]>;
  ledgerHead(instanceId: string): Promise<LedgerRow | undefined>;
  /** Every ledger row that names a session (opened, sealed, tombstone). */
  ledgerFor(sessionId: string): Promise<LedgerRow[]>;
  keys(): Promise<KeyRow[]>;

  close(): Promise<void>;
}

/** The store cannot take writes (disk full, database down, locked): recording fails closed. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** The store has no Portcullis schema yet, or one newer than this version understands. */
export class StoreSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreSchemaError';
  }
}
