import { randomBytes } from 'node:crypto';
import { reviewParamsAad, sealText } from '../encryption/envelope.js';
import { inGroups } from '../identity/roles.js';
import type { Logger } from 'pino';
import { type Identity, samePrincipal } from '../core/identity.js';
import { nowUs } from '../recording/time.js';
import type { Store } from '../store/store.js';
import type { ReviewRow, ReviewStatus, ReviewUpdate } from '../store/review-types.js';
import { HttpError } from '../core/http-error.js';
import { HeldCalls, type ReviewOutcome } from './held-calls.js';

/**
 * Reviews: a call a guardrail holds waits, as a durable record in the store, until enough approvers (never the
 * caller) approve exactly it, someone rejects it, or it times out. Only the gateway instance holding the call
 * can forward it, and only once: it moves the review from approved to released before it does. Decisions made
 * through another gateway sharing the store arrive as change notifications (`changed`), with a read of every held
 * review at the cluster's reconciliation underneath (`recheck`; held-calls.ts: the calls held here, following their
 * reviews).
 */

export class ReviewError extends HttpError {}

/** A call to hold. */
export interface HoldSpec {
  sessionId: string;
  connection: string;
  identity: Identity;
  method: string;
  target: string | undefined;
  /** The virtual server the call came through, and the target's name there (absent for a direct call). */
  virtual?: { server: string; target: string | undefined };
  /** The params as the recording keeps them (what approvers are shown). */
  params: string;
  digest: string;
  rule: string;
  approvers: string[];
  approvals: number;
  timeoutMs: number;
  /** Aborted when the client cancels or the session ends. */
  signal: AbortSignal;
}

export interface ReviewsOptions {
  store: Store;
  instanceId: string;
  log: Logger;
  /** Told of every new review (notifications). */
  onCreated?: (review: ReviewRow) => void;
  /** Told when a review is approved or ends without approval (notifications); not of its release. */
  onDecided?: (review: ReviewRow) => void;
  /**
   * Recordings are encrypted (recording.encryption): the data key of a live session here, which its reviews' params
   * are sealed with before they are stored. A session without one cannot hold a call (the params would be plain).
   */
  dataKeyOf?: (sessionId: string) => Buffer | undefined;
}

const terminal = (status: ReviewStatus) => status !== 'pending' && status !== 'approved';

export function mayDecide(identity: Identity, row: ReviewRow): boolean {
  return inGroups(identity, row.approverGroups);
}

export class Reviews {
  /** The calls held here, waiting on their reviews (held-calls.ts). */
  readonly #held: HeldCalls;
  #stopped = false;

  constructor(private readonly o: ReviewsOptions) {
    this.#held = new HeldCalls({
      store: o.store,
      log: o.log,
      end: (row, status, note) => this.#end(row, status, note),
    });
  }

  /** Calls this instance held when it last stopped (or crashed) failed with it: their reviews say so. */
  async start(): Promise<void> {
    for (const status of ['pending', 'approved'] as const) {
      for (const row of await this.o.store.listReviews({ instanceId: this.o.instanceId, status, limit: 100_000 })) {
        await this.#end(row, 'interrupted', 'the gateway restarted while the call was held; the client got an error and the call was not forwarded');
      }
    }
  }

  /** Another replica changed a review: if its call is held here, it follows the stored state now. */
  changed(id: string): Promise<void> {
    return this.#held.changed(id);
  }

  /**
   * Reads every held review again: a decision taken through another gateway whose notification was missed (after the
   * change listener reconnects, and at each of the cluster's reconciliations).
   */
  recheck(): Promise<void> {
    return this.#held.recheck();
  }

  /**
   * Replicas that are gone held calls that will never be forwarded: their reviews say so, as their own restart
   * would (interrupted). Any survivor may do it; the store's compare-and-set lets one win.
   */
  async interruptOf(instanceIds: readonly string[]): Promise<void> {
    for (const instanceId of instanceIds) {
      if (instanceId === this.o.instanceId) continue;
      for (const status of ['pending', 'approved'] as const) {
        for (const row of await this.o.store.listReviews({ instanceId, status, limit: 100_000 })) {
          await this.#end(row, 'interrupted', `gateway instance ${instanceId} stopped while the call was held; the call was not forwarded`);
        }
      }
    }
  }

  /** Gives up every held call: the gateway is shutting down. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#held.stop('the gateway shut down while the call was held');
  }

  /** Holds a call: the review is stored, and the promise settles when it is decided, times out or is given up. */
  hold(spec: HoldSpec): { id: string; outcome: Promise<ReviewOutcome> } {
    const id = `rv_${randomBytes(9).toString('base64url')}`;
    const created = nowUs();
    const row: ReviewRow = {
      id,
      status: 'pending',
      rule: spec.rule,
      connection: spec.connection,
      sessionId: spec.sessionId,
      instanceId: this.o.instanceId,
      method: spec.method,
      target: spec.target ?? null,
      virtualServer: spec.virtual?.server ?? null,
      virtualTarget: spec.virtual?.target ?? null,
      params: spec.params,
      digest: spec.digest,
      requesterSubject: spec.identity.subject,
      requesterIssuer: spec.identity.issuer,
      requesterEmail: spec.identity.email ?? null,
      approverGroups: spec.approvers,
      minApprovals: spec.approvals,
      approvals: [],
      createdAtUs: created,
      expiresAtUs: created + spec.timeoutMs * 1000,
      decidedAtUs: null,
      deciderSubject: null,
      deciderIssuer: null,
      deciderEmail: null,
      decisionNote: null,
    };
    const outcome = new Promise<ReviewOutcome>((resolve) => {
      if (this.#stopped) return resolve({ released: false, review: undefined, message: 'The gateway is shutting down' });
      const stored = this.#stored(row);
      if (stored === undefined) {
        return resolve({
          released: false,
          review: undefined,
          message: `The call needs a review, but session ${spec.sessionId} has no data key here to encrypt its params with; the call is refused`,
        });
      }
      this.o.store.insertReview(stored).then(
        () => {
          if (spec.signal.aborted || this.#stopped) {
            const why = this.#stopped ? 'the gateway shut down while the call was held' : 'cancelled before it was held';
            void this.#end(row, this.#stopped ? 'interrupted' : 'cancelled', why);
            return resolve({ released: false, review: row, message: `The review ended: ${why} (review ${id})` });
          }
          this.#held.wait(row, spec.signal, spec.timeoutMs, resolve);
          this.o.log.info(
            { review: id, rule: spec.rule, connection: spec.connection, requester: spec.identity.subject, target: spec.target },
            'call held for review',
          );
          this.o.onCreated?.(row);
        },
        (err: Error) => {
          this.o.log.error({ err: err.message, review: id }, 'a review could not be stored; the call is refused');
          resolve({
            released: false,
            review: undefined,
            message: `The call needs a review, but the review could not be stored (${err.message}); try again later`,
          });
        },
      );
    });
    return { id, outcome };
  }

  /** The row as the store keeps it: params sealed under the session's data key when recordings are encrypted. */
  #stored(row: ReviewRow): ReviewRow | undefined {
    if (this.o.dataKeyOf === undefined) return row;
    const key = this.o.dataKeyOf(row.sessionId);
    return key === undefined ? undefined : { ...row, params: sealText(key, reviewParamsAad(row.id), row.params) };
  }

  async get(id: string, identity: Identity): Promise<ReviewRow> {
    const row = await this.o.store.getReview(id);
    // Neither approver nor caller: as if there were no such review (its arguments are not theirs to see).
    if (row === undefined || (!mayDecide(identity, row) && !this.#isRequester(identity, row)))
      throw new ReviewError(404, `there is no review ${JSON.stringify(id.slice(0, 100))}`);
    return row;
  }

  /** Reviews the identity may decide, or asked for themselves, newest first. */
  async list(identity: Identity, status?: ReviewStatus, limit = 200): Promise<ReviewRow[]> {
    const rows = await this.o.store.listReviews({ ...(status ? { status } : {}), limit: 10_000 });
    const visible = rows.filter((r) => mayDecide(identity, r) || this.#isRequester(identity, r)).slice(0, limit);
    // A review whose gateway died without restarting is never timed out by it: overdue ones are expired here.
    const now = nowUs();
    return Promise.all(
      visible.map(async (r) => (r.status === 'pending' && r.expiresAtUs <= now ? ((await this.#end(r, 'expired', 'no approver decided in time')) ?? r) : r)),
    );
  }

  async approve(id: string, identity: Identity, note: string | undefined): Promise<ReviewRow> {
    const row = await this.#decidable(id, identity);
    if (row.approvals.some((a) => a.subject === identity.subject && a.issuer === identity.issuer)) {
      throw new ReviewError(
        409,
        `you already approved review ${id}; it needs ${row.minApprovals - row.approvals.length} more approval(s) from other approvers`,
      );
    }
    const approvals = [
      ...row.approvals,
      { subject: identity.subject, issuer: identity.issuer, email: identity.email ?? null, atUs: nowUs(), note: note ?? null },
    ];
    const done = approvals.length >= row.minApprovals;
    const to: ReviewUpdate = done
      ? {
          status: 'approved',
          approvals,
          decidedAtUs: nowUs(),
          deciderSubject: identity.subject,
          deciderIssuer: identity.issuer,
          deciderEmail: identity.email ?? null,
          decisionNote: note ?? null,
        }
      : { status: 'pending', approvals };
    const updated = await this.#update(row, to);
    this.o.log.info(
      { review: id, by: identity.subject, approvals: approvals.length, needed: row.minApprovals },
      done ? 'review approved' : 'review approval added',
    );
    if (done) this.#decided(updated);
    return updated;
  }

  async reject(id: string, identity: Identity, reason: string): Promise<ReviewRow> {
    const why = reason.trim();
    if (why.length === 0 || why.length > 1000)
      throw new ReviewError(400, 'a reason of 1 to 1000 characters is required: the caller is told who rejected the call and why');
    const row = await this.#decidable(id, identity);
    const updated = await this.#update(row, {
      status: 'rejected',
      decidedAtUs: nowUs(),
      deciderSubject: identity.subject,
      deciderIssuer: identity.issuer,
      deciderEmail: identity.email ?? null,
      decisionNote: why,
    });
    this.o.log.info({ review: id, by: identity.subject }, 'review rejected');
    this.#decided(updated);
    return updated;
  }

  #isRequester(identity: Identity, row: ReviewRow): boolean {
    return samePrincipal(identity, { subject: row.requesterSubject, issuer: row.requesterIssuer, groups: [] });
  }

  /** The review, if this identity may decide it now. */
  async #decidable(id: string, identity: Identity): Promise<ReviewRow> {
    const row = await this.get(id, identity);
    if (this.#isRequester(identity, row)) throw new ReviewError(403, 'you cannot decide a review of your own call; another approver must');
    if (!mayDecide(identity, row)) throw new ReviewError(403, `only members of ${row.approverGroups.join(', ')} may decide review ${id}`);
    if (row.status === 'pending' && row.expiresAtUs <= nowUs()) {
      await this.#end(row, 'expired', 'no approver decided in time');
      throw new ReviewError(409, `review ${id} timed out; the call was rejected`);
    }
    if (row.status !== 'pending') throw new ReviewError(409, `review ${id} is already ${row.status}; an approval applies once, to the call it was made for`);
    return row;
  }

  async #update(row: ReviewRow, to: ReviewUpdate): Promise<ReviewRow> {
    let ok: boolean;
    try {
      ok = await this.o.store.updateReview(row.id, { status: row.status, approvalCount: row.approvals.length }, to);
    } catch (err) {
      throw new ReviewError(503, `the decision could not be stored (${(err as Error).message}); try again`);
    }
    if (!ok) throw new ReviewError(409, `review ${row.id} changed while you decided (another approver, or a timeout); look at it again`);
    return { ...row, ...to };
  }

  /** A decision taken here on a call held here settles it at once; another gateway is told, or reads it at its reconciliation. */
  #decided(row: ReviewRow): void {
    this.o.onDecided?.(row);
    this.#held.decided(row);
  }

  /** Moves a pending or approved review to a terminal status; undefined when it was no longer there. */
  async #end(row: ReviewRow, status: ReviewStatus, note: string): Promise<ReviewRow | undefined> {
    if (terminal(row.status)) return undefined;
    const to: ReviewUpdate = { status, decidedAtUs: nowUs(), decisionNote: note };
    const ok = await this.o.store.updateReview(row.id, { status: row.status, approvalCount: row.approvals.length }, to).catch((err: Error) => {
      this.o.log.error({ err: err.message, review: row.id }, 'a review could not be ended in the store');
      return false;
    });
    if (!ok) return undefined;
    const ended = { ...row, ...to };
    this.o.onDecided?.(ended);
    return ended;
  }
}
