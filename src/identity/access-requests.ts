import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { accessReasonAad, accessRequestOwner, isSealed, sealText } from '../encryption/envelope.js';
import { ErasedError } from '../encryption/kek.js';
import type { Keyring } from '../encryption/keyring.js';
import type { Identity } from '../core/identity.js';
import type { Recorder } from '../recording/recorder.js';
import { nowUs } from '../recording/time.js';
import type { Store } from '../store/store.js';
import type { AccessRequestRow, AccessRequestStatus } from '../store/access-types.js';
import type { DataKeyRow } from '../store/types.js';
import type { ConnectionAccess } from './access-policy.js';
import { HttpError } from '../core/http-error.js';

/**
 * Just-in-time access: a user asks for a connection their groups do not open, for a bounded time and a stated
 * reason; someone in the connection's `access.approvers` (never the requester) approves or denies; an approved
 * request is a grant until it expires or is revoked, and then the sessions that depended on it end. Requests
 * and grants live in the store (so every gateway sharing it honours them); every request, decision and expiry
 * is also a ledger entry, tamper evident like the recordings.
 */

export class AccessRequestError extends HttpError {}

/** How long a request waits for an answer before it lapses. */
export const pendingLifetimeMs = 24 * 3_600_000;

export interface AccessRequestsOptions {
  store: Store;
  recorder: Recorder;
  access: (connection: string) => ConnectionAccess | undefined;
  log: Logger;
  /** Ends the sessions that depended on a grant that expired or was revoked. */
  onGrantEnded: (grant: AccessRequestRow, why: string) => void;
  /** Whether any connection takes requests; when none does, no grant can admit anyone and the store is not read. */
  inUse: boolean;
  /** A request was made or moved on here (the console's live view asks again; other replicas are told). */
  onChanged?: (requestId: string) => void;
  /**
   * Recordings are encrypted (recording.encryption): each request's reason is sealed under a data key of its own
   * (owner `access:<id>`), in the store and in the ledger entries that state the request.
   */
  keyring?: Keyring;
}

const same = (row: AccessRequestRow, identity: Identity) => row.requesterSubject === identity.subject && row.requesterIssuer === identity.issuer;
const whoOf = (identity: Identity) => ({ subject: identity.subject, issuer: identity.issuer, email: identity.email ?? null });

export class AccessRequests {
  /** Approved grants not yet expired, as last read from the store (or changed here). */
  #grants = new Map<string, AccessRequestRow>();
  /** Grants ended here (revoked): a refresh that read the store before the revocation must not bring them back. */
  readonly #ended = new Set<string>();
  #stopped = false;
  #refreshing: Promise<void> | undefined;
  /** A refresh asked for while one runs: it may have read the store before the change, so it runs again after. */
  #again: Promise<void> | undefined;

  constructor(private readonly o: AccessRequestsOptions) {}

  async start(): Promise<void> {
    if (this.o.inUse) await this.refresh();
  }

  /** The gateway is shutting down: the grants are no longer read again (nor ended, nor their expiries recorded). */
  stop(): void {
    this.#stopped = true;
  }

  /** The grant that lets `identity` use `connection` now, if any (from memory: called on every refused request). */
  grantFor(identity: Identity, connection: string, nowMs = Date.now()): AccessRequestRow | undefined {
    if (this.#grants.size === 0) return undefined;
    for (const g of this.#grants.values()) {
      if (g.connection === connection && same(g, identity) && g.expiresAtUs > nowMs * 1000) return g;
    }
    return undefined;
  }

  /** Reads the grants again, ends those that expired or disappeared (revoked elsewhere), and lapses old requests. */
  refresh(): Promise<void> {
    if (this.#refreshing !== undefined) {
      this.#again ??= this.#refreshing
        .catch(() => {})
        .then(() => {
          this.#again = undefined;
          return this.refresh();
        });
      return this.#again;
    }
    this.#refreshing = this.#refresh().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  /**
   * Another replica changed a request or grant, or the cluster reconciles (a lost notification, expiries): read the
   * grants again now (when any connection takes requests).
   */
  async changed(): Promise<void> {
    if (this.o.inUse && !this.#stopped) await this.refresh();
  }

  async #refresh(): Promise<void> {
    const now = nowUs();
    const approved = await this.o.store.listAccessRequests({ status: 'approved', limit: 100_000 });
    const current = new Map(approved.filter((g) => g.expiresAtUs > now && !this.#ended.has(g.id)).map((g) => [g.id, g]));
    for (const [id, g] of this.#grants) {
      if (!current.has(id)) this.o.onGrantEnded(g, g.expiresAtUs <= now ? 'the access grant expired' : 'the access grant was revoked');
    }
    this.#grants = current;
    for (const g of approved.filter((x) => x.expiresAtUs <= now))
      await this.#transition(g, 'approved', { status: 'expired', expiresAtUs: g.expiresAtUs }, 'expired', null);
    for (const r of await this.o.store.listAccessRequests({ status: 'pending', limit: 100_000 })) {
      if (r.expiresAtUs <= now) await this.#transition(r, 'pending', { status: 'expired', expiresAtUs: r.expiresAtUs }, 'lapsed', null);
    }
  }

  #connection(name: string): ConnectionAccess {
    const access = this.o.access(name);
    if (access === undefined) throw new AccessRequestError(404, `there is no connection named ${JSON.stringify(name.slice(0, 100))}`);
    return access;
  }

  /** Moves a request on in the store and records it in the ledger; false when another decision came first. */
  async #transition(
    row: AccessRequestRow,
    from: AccessRequestStatus,
    to: Parameters<Store['updateAccessRequest']>[2],
    event: string,
    by: Identity | null,
  ): Promise<AccessRequestRow | undefined> {
    if (!(await this.o.store.updateAccessRequest(row.id, from, to))) return undefined;
    const updated = { ...row, ...to };
    try {
      await this.o.recorder.recordAccess(row.id, { event, request: await this.#sealedReason(updated), by: by === null ? null : whoOf(by) });
    } catch (err) {
      // Unrecorded, it must not stand: put it back as it was, and say the store is unavailable.
      await this.o.store.updateAccessRequest(row.id, to.status, { status: from, expiresAtUs: row.expiresAtUs }).catch(() => {});
      throw new AccessRequestError(503, `the decision could not be recorded (${(err as Error).message}); try again when the store is back`);
    }
    this.o.log.info({ request: row.id, connection: row.connection, requester: row.requesterSubject, event, by: by?.subject }, 'access request');
    this.o.onChanged?.(row.id);
    return updated;
  }

  async request(identity: Identity, connection: string, durationMs: number, reason: string): Promise<AccessRequestRow> {
    const access = this.#connection(connection);
    if (!access.takesRequests) throw new AccessRequestError(400, `connection '${connection}' takes no access requests (it names no access.approvers)`);
    if (!Number.isFinite(durationMs) || durationMs < 1000) throw new AccessRequestError(400, 'the duration must be at least 1s');
    if (durationMs > access.maxGrantMs) {
      throw new AccessRequestError(
        400,
        `connection '${connection}' grants at most ${Math.round(access.maxGrantMs / 60_000)} minutes (access.maxGrant); ask for less`,
      );
    }
    const why = reason.trim();
    if (why.length === 0 || why.length > 1000) throw new AccessRequestError(400, 'a reason of 1 to 1000 characters is required');
    const already = access.open(identity);
    if (already.allowed) throw new AccessRequestError(409, `you already have access to '${connection}' (${already.reason})`);
    const grant = this.grantFor(identity, connection);
    if (grant !== undefined)
      throw new AccessRequestError(
        409,
        `you already have access to '${connection}' until ${new Date(grant.expiresAtUs / 1000).toISOString()} (grant ${grant.id})`,
      );
    const now = nowUs();
    const row: AccessRequestRow = {
      id: `ar_${randomBytes(9).toString('base64url')}`,
      connection,
      requesterSubject: identity.subject,
      requesterIssuer: identity.issuer,
      requesterEmail: identity.email ?? null,
      reason: why,
      durationMs,
      status: 'pending',
      createdAtUs: now,
      decidedAtUs: null,
      deciderSubject: null,
      deciderIssuer: null,
      decisionNote: null,
      expiresAtUs: now + pendingLifetimeMs * 1000,
    };
    const { stored, dataKey } = await this.#sealNew(row);
    // The store keeps one pending request per requester and connection; only when it refuses is the other one looked up.
    if (!(await this.o.store.insertAccessRequest(stored, dataKey))) {
      // Its data key was never stored: the keyring need not keep it.
      if (dataKey !== undefined) this.o.keyring?.forget(dataKey.owner);
      const pending = (await this.o.store.listAccessRequests({ status: 'pending', connection, limit: 10_000 })).find((r) => same(r, identity));
      throw new AccessRequestError(409, `your request ${pending === undefined ? '' : `${pending.id} `}for '${connection}' is still waiting for an approver`);
    }
    try {
      await this.o.recorder.recordAccess(row.id, { event: 'requested', request: stored, by: whoOf(identity) });
    } catch (err) {
      await this.o.store
        .updateAccessRequest(row.id, 'pending', { status: 'denied', expiresAtUs: row.expiresAtUs, decisionNote: 'not recorded: the store was unavailable' })
        .catch(() => {});
      throw new AccessRequestError(503, `the request could not be recorded (${(err as Error).message}); try again when the store is back`);
    }
    this.o.log.info({ request: row.id, connection, requester: identity.subject }, 'access requested');
    this.o.onChanged?.(row.id);
    return row;
  }

  /**
   * A new request as the store keeps it: with encryption, its reason sealed under a new data key of its own, whose
   * wrapped row the store writes with the request (a request row never exists without the key that opens its reason,
   * nor a key without its request).
   */
  async #sealNew(row: AccessRequestRow): Promise<{ stored: AccessRequestRow; dataKey?: DataKeyRow }> {
    const keyring = this.o.keyring;
    if (keyring === undefined) return { stored: row };
    const owner = accessRequestOwner(row.id);
    const dk = keyring.newDataKey(owner);
    const wrapped = await dk.wrapped;
    return {
      stored: { ...row, reason: sealText(dk.key, accessReasonAad(row.id), row.reason) },
      dataKey: { owner, kekId: dk.kekId, wrapped, createdAtUs: row.createdAtUs, erasedAtUs: null, erasedBy: null, eraseReason: null },
    };
  }

  /** A request as a ledger entry states it: never a plain reason when the store keeps it sealed. */
  async #sealedReason(row: AccessRequestRow): Promise<AccessRequestRow> {
    const keyring = this.o.keyring;
    if (keyring === undefined || isSealed(row.reason)) return row;
    const [dk] = await this.o.store.dataKeys([accessRequestOwner(row.id)]);
    // Requested before recordings were encrypted: the reason is plain where it is stored too.
    if (dk === undefined) return row;
    try {
      return { ...row, reason: sealText(await keyring.dataKey(dk), accessReasonAad(row.id), row.reason) };
    } catch (err) {
      if (err instanceof ErasedError) return { ...row, reason: '[erased]' };
      throw err;
    }
  }

  /** Whether `identity` may see a request: their own, or one they may approve. */
  visible(identity: Identity, row: AccessRequestRow): boolean {
    return same(row, identity) || this.o.access(row.connection)?.approve(identity).allowed === true;
  }

  async list(identity: Identity, status?: AccessRequestStatus): Promise<AccessRequestRow[]> {
    const rows = await this.o.store.listAccessRequests({ ...(status ? { status } : {}), limit: 1000 });
    return rows.filter((r) => this.visible(identity, r));
  }

  async get(identity: Identity, id: string): Promise<AccessRequestRow> {
    const row = await this.o.store.getAccessRequest(id);
    if (row === undefined || !this.visible(identity, row))
      throw new AccessRequestError(404, `there is no access request ${JSON.stringify(id.slice(0, 64))} you may see`);
    return row;
  }

  async #decidable(identity: Identity, id: string, status: AccessRequestStatus, what: string): Promise<AccessRequestRow> {
    const row = await this.get(identity, id);
    const may = this.#connection(row.connection).approve(identity);
    if (!may.allowed) throw new AccessRequestError(403, may.reason);
    if (same(row, identity)) throw new AccessRequestError(403, `you cannot ${what} your own access request`);
    if (row.status !== status)
      throw new AccessRequestError(409, `request ${row.id} is ${row.status}, so it cannot be ${what === 'revoke' ? 'revoked' : `${what}d`}`);
    return row;
  }

  async approve(identity: Identity, id: string, note?: string): Promise<AccessRequestRow> {
    const granted = await this.#decide(identity, id, 'approved', note);
    this.#grants.set(granted.id, granted);
    return granted;
  }

  deny(identity: Identity, id: string, note?: string): Promise<AccessRequestRow> {
    return this.#decide(identity, id, 'denied', note);
  }

  /** A pending request approved (a grant from now for its duration) or denied, once, by an approver who is not its requester. */
  async #decide(identity: Identity, id: string, to: 'approved' | 'denied', note: string | undefined): Promise<AccessRequestRow> {
    const row = await this.#decidable(identity, id, 'pending', to === 'approved' ? 'approve' : 'deny');
    const now = nowUs();
    const expiresAtUs = to === 'approved' ? now + row.durationMs * 1000 : row.expiresAtUs;
    const decision = {
      status: to,
      expiresAtUs,
      decidedAtUs: now,
      deciderSubject: identity.subject,
      deciderIssuer: identity.issuer,
      decisionNote: note ?? null,
    };
    const updated = await this.#transition(row, 'pending', decision, to, identity);
    if (updated === undefined) throw new AccessRequestError(409, `request ${row.id} was decided by someone else first`);
    return updated;
  }

  /** Ends a grant before its time; its sessions end at once here, and on other gateways when they are told (or refresh). */
  async revoke(identity: Identity, id: string, note?: string): Promise<AccessRequestRow> {
    const row = await this.#decidable(identity, id, 'approved', 'revoke');
    const updated = await this.#transition(
      row,
      'approved',
      { status: 'revoked', expiresAtUs: nowUs(), decisionNote: note ?? row.decisionNote },
      'revoked',
      identity,
    );
    if (updated === undefined) throw new AccessRequestError(409, `grant ${row.id} already ended`);
    this.#ended.add(row.id);
    this.#grants.delete(row.id);
    this.o.onGrantEnded(row, 'the access grant was revoked');
    return updated;
  }
}
