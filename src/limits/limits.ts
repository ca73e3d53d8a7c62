import type { Logger } from 'pino';
import type { LimitedConnection, LimitsConfig } from './config.js';
import { globToRegExp } from '../core/glob.js';
import { idKey, type JsonRpcRequest, type RequestId } from '../protocol/jsonrpc.js';
import { BurstLog } from './burst-log.js';
import { Counters, KeyedBuckets } from './keyed.js';
import { LimitExceededError } from './limit-error.js';
import { type Clock, monotonicClock, type Rate } from './token-bucket.js';
import { UnauthenticatedGate } from './unauthenticated.js';

export { LimitExceededError } from './limit-error.js';

/**
 * The gateway's limits (docs/security.md, Limits): how many sessions and requests in flight each principal,
 * each connection and the gateway may have, and how fast each principal may open sessions and send requests
 * (per tool too). Everything is kept per principal or per connection, so one principal over its limits is refused
 * while every other goes on as before. Counters exist only while something is held; buckets are bounded in
 * number. All of it is this gateway's own: gateways sharing a store do not share limits.
 */

/** A principal: a subject is only meaningful together with its issuer. */
export interface Principal {
  subject: string;
  issuer: string;
}

const keys = new WeakMap<Principal, string>();

/** The key of a principal (remembered per identity object: a request's costs a lookup). */
export function principalKey(p: Principal): string {
  let key = keys.get(p);
  if (key === undefined) keys.set(p, (key = JSON.stringify([p.issuer, p.subject])));
  return key;
}

/** A place taken by a session; released once, when the session has ended. */
export interface SessionLease {
  release(): void;
}

export type Admission = { lease: SessionLease } | { refused: LimitExceededError; record: boolean };

/**
 * A session count at its limit, and which live sessions count towards it: the principal's (`principal-stdio`: those
 * on stdio connections), the connection's, or all of the gateway's.
 */
export interface FullSessionCap {
  scope: 'principal' | 'principal-stdio' | 'connection' | 'global';
  limit: string;
  value: number;
  what: string;
}

/** How long a client refused for a count (sessions, requests in flight) is told to wait: a hint, not a promise. */
const sessionRetrySeconds = 10;
const requestRetrySeconds = 1;
/** Principals (and principal × tool pattern) whose rate is remembered; beyond it, refilled buckets go first. */
const trackedKeys = 100_000;

interface Slot {
  principal: string;
  connection: string;
  /** Requests in flight under this id (a legacy client may reuse an id before its answer: each counts). */
  count: number;
}

interface ToolRule {
  pattern: string;
  match: RegExp;
  rate: Rate;
}

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
  readonly #config: LimitsConfig;
  readonly #clock: Clock;
  readonly #bursts: BurstLog;
  readonly #sessions = { principal: new Counters(), principalStdio: new Counters(), connection: new Counters(), stdio: new Counters(), global: 0 };
  readonly #inFlight = { principal: new Counters(), connection: new Counters(), global: 0 };
  readonly #opens: KeyedBuckets;
  readonly #requests: KeyedBuckets;
  readonly #toolRates: KeyedBuckets;
  readonly #toolRules = new Map<string, ToolRule[]>();
  /** Requests in flight by session, then by idKey of the client's id. */
  readonly #slots = new Map<string, Map<string, Slot>>();
  #sweeper: NodeJS.Timeout | undefined;
  readonly #onRefused: (limit: string) => void;
  /** Requests whose token is not known to be valid yet, paced by remote address before verification. */
  readonly unauthenticated: UnauthenticatedGate;

  constructor(o: LimitsOptions) {
    this.#config = o.config;
    this.#clock = o.clock ?? monotonicClock;
    this.#bursts = new BurstLog(o.log.child({ part: 'limits' }), this.#clock, o.quietMs);
    this.#opens = new KeyedBuckets(trackedKeys, this.#clock);
    this.#requests = new KeyedBuckets(trackedKeys, this.#clock);
    this.#toolRates = new KeyedBuckets(trackedKeys, this.#clock);
    this.#onRefused = o.onRefused ?? (() => {});
    this.unauthenticated = new UnauthenticatedGate(o.config.unauthenticated, this.#bursts, this.#clock, this.#onRefused);
    if (o.clock === undefined) {
      this.#sweeper = setInterval(() => this.#bursts.sweep(), Math.max(1000, o.quietMs ?? 10_000));
      this.#sweeper.unref();
    }
  }

  /**
   * The session count that is at its limit for one more session of `principal` on `connection`, if any: which
   * sessions count towards it (`scope`), so that an idle one among them can make room (the registry reclaims it).
   */
  fullSessionCap(connection: LimitedConnection, principal: Principal): FullSessionCap | undefined {
    const p = principalKey(principal);
    const c = connection.limits;
    const stdio = ownsProcess(connection);
    const s = this.#sessions;
    const principalCap = this.#config.principal;
    if (s.principal.count(p) >= principalCap.sessions)
      return { scope: 'principal', limit: 'limits.principal.sessions', value: principalCap.sessions, what: 'you have as many open sessions as one caller may' };
    if (stdio && s.principalStdio.count(p) >= principalCap.stdioProcesses)
      return {
        scope: 'principal-stdio',
        limit: 'limits.principal.stdioProcesses',
        value: principalCap.stdioProcesses,
        what: 'you have as many server processes running as one caller may',
      };
    if (stdio && s.stdio.count(connection.name) >= c.stdioProcesses)
      return {
        scope: 'connection',
        limit: `connections.${connection.name}.limits.stdioProcesses`,
        value: c.stdioProcesses,
        what: `connection '${connection.name}' runs as many server processes as it may`,
      };
    if (s.connection.count(connection.name) >= c.sessions)
      return {
        scope: 'connection',
        limit: `connections.${connection.name}.limits.sessions`,
        value: c.sessions,
        what: `connection '${connection.name}' has as many sessions as it may`,
      };
    if (s.global >= this.#config.global.sessions)
      return { scope: 'global', limit: 'limits.global.sessions', value: this.#config.global.sessions, what: 'the gateway has as many sessions as it may' };
    return undefined;
  }

  /**
   * Takes a place for a new session of `principal` on `connection`, or says which limit refuses it. `record` is
   * true for the first refusal of a burst: the one to record as a refused session (the rest are counted in the log).
   */
  admitSession(connection: LimitedConnection, principal: Principal): Admission {
    const p = principalKey(principal);
    const stdio = ownsProcess(connection);
    const s = this.#sessions;
    const full = this.fullSessionCap(connection, principal);
    if (full !== undefined) {
      return this.#refuse(
        principal,
        connection.name,
        full.limit,
        String(full.value),
        sessionRetrySeconds,
        `Too many sessions: ${full.what} (${full.limit}: ${full.value}); close a session or try again later`,
      );
    }
    const opens = this.#opens.get(p, this.#config.principal.sessionOpens);
    if (!opens.take()) {
      const rate = this.#config.principal.sessionOpens;
      const wait = Math.max(1, Math.ceil(opens.waitMs() / 1000));
      return this.#refuse(
        principal,
        connection.name,
        'limits.principal.sessionOpens',
        rateText(rate),
        wait,
        `Too many sessions opened: at most ${rateText(rate)} (limits.principal.sessionOpens); try again in ${wait}s`,
      );
    }
    s.principal.add(p);
    s.connection.add(connection.name);
    if (stdio) {
      s.stdio.add(connection.name);
      s.principalStdio.add(p);
    }
    s.global++;
    let held = true;
    return {
      lease: {
        release: () => {
          if (!held) return;
          held = false;
          s.principal.remove(p);
          s.connection.remove(connection.name);
          if (stdio) {
            s.stdio.remove(connection.name);
            s.principalStdio.remove(p);
          }
          s.global--;
        },
      },
    };
  }

  /**
   * Takes a place for a server process of a pooled stdio connection (`upstreamSessions: pooled`), started when no
   * open one can take a client session: limits.principal.stdioProcesses and the connection's stdioProcesses count
   * processes there, not the client sessions that share them.
   */
  admitProcess(connection: LimitedConnection, principal: Principal): Admission {
    const p = principalKey(principal);
    const s = this.#sessions;
    const principalCap = this.#config.principal;
    if (s.principalStdio.count(p) >= principalCap.stdioProcesses)
      return this.#refuse(
        principal,
        connection.name,
        'limits.principal.stdioProcesses',
        String(principalCap.stdioProcesses),
        sessionRetrySeconds,
        `Too many server processes: you have as many running as one caller may (limits.principal.stdioProcesses: ${principalCap.stdioProcesses}); try again later`,
      );
    if (s.stdio.count(connection.name) >= connection.limits.stdioProcesses)
      return this.#refuse(
        principal,
        connection.name,
        `connections.${connection.name}.limits.stdioProcesses`,
        String(connection.limits.stdioProcesses),
        sessionRetrySeconds,
        `Too many server processes: connection '${connection.name}' runs as many as it may (connections.${connection.name}.limits.stdioProcesses: ${connection.limits.stdioProcesses}); try again later`,
      );
    s.stdio.add(connection.name);
    s.principalStdio.add(p);
    let held = true;
    return {
      lease: {
        release: () => {
          if (!held) return;
          held = false;
          s.stdio.remove(connection.name);
          s.principalStdio.remove(p);
        },
      },
    };
  }

  /** Server processes of pooled stdio connections counted now, per connection (for tests and metrics). */
  processes(connection: string): number {
    return this.#sessions.stdio.count(connection);
  }

  /**
   * Admits a client request on a session (its rate, per tool for tools/call, and its place in flight), or says which
   * limit refuses it. `paced` false spares a session's opening initialize the request rate: limits.principal.sessionOpens
   * already paces it.
   */
  admitRequest(
    sessionId: string,
    connection: LimitedConnection,
    principal: Principal,
    request: JsonRpcRequest,
    paced = request.method !== 'initialize',
  ): LimitExceededError | undefined {
    let slots = this.#slots.get(sessionId);
    const key = idKey(request.id);
    const p = principalKey(principal);
    const taken: Array<{ refund(): void }> = [];
    const refund = () => taken.forEach((b) => b.refund());
    if (paced) {
      const rate = this.#config.principal.requests;
      const bucket = this.#requests.get(p, rate);
      if (!bucket.take()) return this.#refuseRate(principal, connection.name, 'limits.principal.requests', rate, bucket.waitMs(), 'requests');
      taken.push(bucket);
    }
    const tool = request.method === 'tools/call' && typeof request.params?.name === 'string' ? request.params.name : undefined;
    const rule = tool === undefined ? undefined : this.#toolRule(connection, tool);
    if (rule !== undefined) {
      const bucket = this.#toolRates.get(`${p}\n${connection.name}\n${rule.pattern}`, rule.rate);
      if (!bucket.take()) {
        refund();
        return this.#refuseRate(
          principal,
          connection.name,
          `connections.${connection.name}.limits.tools.${rule.pattern}`,
          rule.rate,
          bucket.waitMs(),
          `calls of ${JSON.stringify(tool)}`,
        );
      }
      taken.push(bucket);
    }
    const f = this.#inFlight;
    const busy = (limit: string, value: number, what: string) => {
      refund();
      return this.#refuse(
        principal,
        connection.name,
        limit,
        String(value),
        requestRetrySeconds,
        `Too many requests in flight: ${what} (${limit}: ${value}); wait for an answer first`,
      ).refused;
    };
    if (f.principal.count(p) >= this.#config.principal.requestsInFlight)
      return busy('limits.principal.requestsInFlight', this.#config.principal.requestsInFlight, 'you have as many requests waiting as one caller may');
    if (f.connection.count(connection.name) >= connection.limits.requestsInFlight)
      return busy(
        `connections.${connection.name}.limits.requestsInFlight`,
        connection.limits.requestsInFlight,
        `connection '${connection.name}' has as many requests waiting as it may`,
      );
    if (f.global >= this.#config.global.requestsInFlight)
      return busy('limits.global.requestsInFlight', this.#config.global.requestsInFlight, 'the gateway has as many requests waiting as it may');
    f.principal.add(p);
    f.connection.add(connection.name);
    f.global++;
    if (slots === undefined) this.#slots.set(sessionId, (slots = new Map()));
    const slot = slots.get(key);
    if (slot !== undefined) slot.count++;
    else slots.set(key, { principal: p, connection: connection.name, count: 1 });
    return undefined;
  }

  /**
   * Whether a principal's next requests are refused before they reach a session: it was refused for its request
   * rate or its requests in flight lately (that refusal is recorded) and is still over the limit. The edge then
   * answers 429 at once, so a client that keeps sending costs neither parsing into its session nor a recorded event
   * per request: one recorded refusal per burst, the rest counted.
   */
  refusesRequestsEarly(principal: Principal): LimitExceededError | undefined {
    const p = principalKey(principal);
    const rate = this.#config.principal.requests;
    const bucket = this.#requests.peek(p);
    if (bucket !== undefined && this.#bursts.active(`${p}\nlimits.principal.requests`)) {
      const waitMs = bucket.waitMs();
      if (waitMs > 0) return this.#refuseRate(principal, '', 'limits.principal.requests', rate, waitMs, 'requests');
    }
    const cap = this.#config.principal.requestsInFlight;
    if (this.#inFlight.principal.count(p) >= cap && this.#bursts.active(`${p}\nlimits.principal.requestsInFlight`)) {
      return this.#refuse(
        principal,
        '',
        'limits.principal.requestsInFlight',
        String(cap),
        requestRetrySeconds,
        `Too many requests in flight: you have as many requests waiting as one caller may (limits.principal.requestsInFlight: ${cap}); wait for an answer first`,
      ).refused;
    }
    return undefined;
  }

  /** A request refused before any session (a bad header or envelope) costs the request rate too: a flood is 429, unrecorded. */
  admitRefused(principal: Principal): LimitExceededError | undefined {
    const rate = this.#config.principal.requests;
    const bucket = this.#requests.get(principalKey(principal), rate);
    return bucket.take() ? undefined : this.#refuseRate(principal, '', 'limits.principal.requests', rate, bucket.waitMs(), 'requests');
  }

  /** The request is over for its client: answered, or cancelled by it. */
  releaseRequest(sessionId: string, id: RequestId): void {
    const slots = this.#slots.get(sessionId);
    const key = idKey(id);
    const slot = slots?.get(key);
    if (slot === undefined) return;
    if (--slot.count === 0) slots!.delete(key);
    if (slots!.size === 0) this.#slots.delete(sessionId);
    this.#freeSlot(slot);
  }

  /** The session has ended: whatever it still had in flight is over. */
  releaseSession(sessionId: string): void {
    const slots = this.#slots.get(sessionId);
    if (slots === undefined) return;
    this.#slots.delete(sessionId);
    for (const slot of slots.values()) for (let i = 0; i < slot.count; i++) this.#freeSlot(slot);
  }

  /** What is held now, for tests and metrics. */
  get usage(): { sessions: number; requestsInFlight: number } {
    return { sessions: this.#sessions.global, requestsInFlight: this.#inFlight.global };
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

  #freeSlot(slot: Slot): void {
    this.#inFlight.principal.remove(slot.principal);
    this.#inFlight.connection.remove(slot.connection);
    this.#inFlight.global--;
  }

  #toolRule(connection: LimitedConnection, tool: string): ToolRule | undefined {
    let rules = this.#toolRules.get(connection.name);
    if (rules === undefined) {
      rules = Object.entries(connection.limits.tools).map(([pattern, rate]) => ({ pattern, match: globToRegExp(pattern), rate }));
      this.#toolRules.set(connection.name, rules);
    }
    return rules.find((r) => r.match.test(tool));
  }

  #refuseRate(principal: Principal, connection: string, limit: string, rate: Rate, waitMs: number, what: string): LimitExceededError {
    const wait = Math.max(1, Math.ceil(waitMs / 1000));
    return this.#refuse(principal, connection, limit, rateText(rate), wait, `Too many ${what}: at most ${rateText(rate)} (${limit}); try again in ${wait}s`)
      .refused;
  }

  #refuse(
    principal: Principal,
    connection: string,
    limit: string,
    value: string,
    retryAfterSeconds: number,
    message: string,
  ): { refused: LimitExceededError; record: boolean } {
    const refused = new LimitExceededError(limit, value, retryAfterSeconds, message);
    this.#onRefused(limit);
    const record = this.#bursts.refused(
      `${principalKey(principal)}\n${limit}`,
      { subject: principal.subject, issuer: principal.issuer, connection, limit, value },
      'limit reached: refusing',
    );
    return { refused, record };
  }
}

/** Whether each session of the connection runs a server process of its own (stdio, not `upstreamSessions: pooled`). */
function ownsProcess(connection: LimitedConnection): boolean {
  return connection.upstream.kind === 'stdio' && connection.upstreamSessions !== 'pooled';
}

function rateText(rate: Rate): string {
  return `${rate.perSecond}/s with bursts of ${rate.burst}`;
}
