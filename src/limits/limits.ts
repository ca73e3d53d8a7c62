import type { Logger } from 'pino';
import type { Admission, FullSessionCap } from './admission.js';
import type { LimitedConnection, LimitsConfig } from './config.js';
import type { JsonRpcRequest, RequestId } from '../protocol/jsonrpc.js';
import { BurstLog } from './burst-log.js';
import { KeyedBuckets } from './keyed.js';
import type { LimitExceededError } from './limit-error.js';
import type { Principal } from './principal.js';
import { Refusals } from './refusals.js';
import { RequestLimits } from './request-limits.js';
import { ServerProcesses } from './server-processes.js';
import { SessionLimits } from './session-limits.js';
import { type Clock, monotonicClock } from './token-bucket.js';
import { UnauthenticatedGate } from './unauthenticated.js';

export { LimitExceededError } from './limit-error.js';

/**
 * The gateway's limits (docs/security.md, Limits): how many sessions and requests in flight each principal,
 * each connection and the gateway may have, and how fast each principal may open sessions and send requests
 * (per tool too). Everything is kept per principal or per connection, so one principal over its limits is refused
 * while every other goes on as before. Counters exist only while something is held; buckets are bounded in
 * number. All of it is this gateway's own: gateways sharing a store do not share limits.
 *
 * This class puts the parts together behind one object: sessions (session-limits.ts), server processes
 * (server-processes.ts), requests (request-limits.ts), requests before authentication (unauthenticated.ts), all
 * refusing the same way (refusals.ts).
 */

/** Principals (and principal × tool pattern) whose rate is remembered; beyond it, refilled buckets go first. */
const trackedKeys = 100_000;

export interface LimitsOptions {
  config: LimitsConfig;
  log: Logger;
  clock?: Clock;
  /** How long a key must be refused no more for its burst to be over (logging). */
  quietMs?: number;
  /** Told of every refusal, by the limit's config key (metrics). */
  onRefused?: (limit: string) => void;
}

export class Limits {
  readonly #bursts: BurstLog;
  readonly #processes: ServerProcesses;
  readonly #sessions: SessionLimits;
  readonly #requests: RequestLimits;
  #sweeper: NodeJS.Timeout | undefined;
  /** Requests whose token is not known to be valid yet, paced by remote address before verification. */
  readonly unauthenticated: UnauthenticatedGate;

  constructor(o: LimitsOptions) {
    const clock = o.clock ?? monotonicClock;
    const onRefused = o.onRefused ?? (() => {});
    this.#bursts = new BurstLog(o.log.child({ part: 'limits' }), clock, o.quietMs);
    const refusals = new Refusals(this.#bursts, onRefused);
    const buckets = () => new KeyedBuckets(trackedKeys, clock);
    this.#processes = new ServerProcesses(o.config, refusals);
    this.#sessions = new SessionLimits(o.config, refusals, this.#processes, buckets());
    this.#requests = new RequestLimits(o.config, refusals, buckets(), buckets());
    this.unauthenticated = new UnauthenticatedGate(o.config.unauthenticated, this.#bursts, clock, onRefused);
    if (o.clock === undefined) {
      this.#sweeper = setInterval(() => this.#bursts.sweep(), Math.max(1000, o.quietMs ?? 10_000));
      this.#sweeper.unref();
    }
  }

  /**
   * The session count that is at its limit for one more session of `principal` on `connection`, if any: which
   * sessions count towards it (`scope`), so that an idle one among them can make room (the registry reclaims it).
   */
  fullSessionCap(connection: LimitedConnection, principal: Principal, member = false): FullSessionCap | undefined {
    return this.#sessions.fullCap(connection, principal, member);
  }

  /**
   * Takes a place for a new session of `principal` on `connection`, or says which limit refuses it. `record` is
   * true for the first refusal of a burst: the one to record as a refused session (the rest are counted in the log).
   * `member`: a virtual server's member session, which the caller's own session count and opening rate do not count.
   */
  admitSession(connection: LimitedConnection, principal: Principal, member = false): Admission {
    return this.#sessions.admit(connection, principal, member);
  }

  /**
   * Takes a place for a server process of a pooled stdio connection (`upstreamSessions: pooled`), started when no
   * open one can take a client session: limits.principal.stdioProcesses and the connection's stdioProcesses count
   * processes there, not the client sessions that share them.
   */
  admitProcess(connection: LimitedConnection, principal: Principal): Admission {
    return this.#processes.admit(connection, principal);
  }

  /** Server processes of pooled stdio connections counted now, per connection (for tests and metrics). */
  processes(connection: string): number {
    return this.#processes.count(connection);
  }

  /** A client request on a session: its rate, per tool for tools/call, and its place in flight (request-limits.ts). */
  admitRequest(
    sessionId: string,
    connection: LimitedConnection,
    principal: Principal,
    request: JsonRpcRequest,
    paced = request.method !== 'initialize',
    member = false,
  ): LimitExceededError | undefined {
    return this.#requests.admit(sessionId, connection, principal, request, paced, member);
  }

  /** Whether a principal's next requests are refused at the edge, before they reach a session (request-limits.ts). */
  refusesRequestsEarly(principal: Principal): LimitExceededError | undefined {
    return this.#requests.refusesEarly(principal);
  }

  /** A request refused before any session (a bad header or envelope) costs the request rate too: a flood is 429, unrecorded. */
  admitRefused(principal: Principal): LimitExceededError | undefined {
    return this.#requests.admitRefused(principal);
  }

  /** The request is over for its client: answered, or cancelled by it. */
  releaseRequest(sessionId: string, id: RequestId): void {
    this.#requests.release(sessionId, id);
  }

  /** The session has ended: whatever it still had in flight is over. */
  releaseSession(sessionId: string): void {
    this.#requests.releaseSession(sessionId);
  }

  /** What is held now, for tests and metrics. */
  get usage(): { sessions: number; requestsInFlight: number } {
    return { sessions: this.#sessions.open, requestsInFlight: this.#requests.inFlight };
  }

  /** Logs the totals of the bursts still going (shutdown). */
  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#bursts.sweep(true);
  }

  /** Ends quiet bursts now (tests move an injected clock instead of waiting for the timer). */
  sweep(): void {
    this.#bursts.sweep();
  }
}
