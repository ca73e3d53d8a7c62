import { type Admission, admitted, type FullSessionCap, sessionRetrySeconds } from './admission.js';
import type { LimitedConnection, LimitsConfig } from './config.js';
import { Counters, type KeyedBuckets } from './keyed.js';
import { type Principal, principalKey } from './principal.js';
import { rateText, type Refusals } from './refusals.js';
import { ownsProcess, type ServerProcesses } from './server-processes.js';

/**
 * Session admission: how many sessions each principal, each connection and the gateway may have open, and how fast
 * each principal may open them. A session that runs a server process of its own counts as a process too.
 */
export class SessionLimits {
  readonly #principal = new Counters();
  readonly #connection = new Counters();
  #global = 0;

  constructor(
    private readonly config: LimitsConfig,
    private readonly refusals: Refusals,
    private readonly processes: ServerProcesses,
    /** limits.principal.sessionOpens, per principal. */
    private readonly opens: KeyedBuckets,
  ) {}

  /** Sessions open now on the whole gateway. */
  get open(): number {
    return this.#global;
  }

  /**
   * The session count at its limit for one more session of `principal` on `connection`, if any. `member`: a member
   * session a virtual server's session opens for its caller (src/virtual): the caller's own count and opening rate
   * were spent on the virtual session, so only the connection's, the processes' and the gateway's counts apply.
   */
  fullCap(connection: LimitedConnection, principal: Principal, member = false): FullSessionCap | undefined {
    const p = principalKey(principal);
    const principalCap = this.config.principal.sessions;
    if (!member && this.#principal.count(p) >= principalCap)
      return { scope: 'principal', limit: 'limits.principal.sessions', value: principalCap, what: 'you have as many open sessions as one caller may' };
    const processFull = ownsProcess(connection) ? this.processes.fullCap(connection, p) : undefined;
    if (processFull !== undefined) return processFull;
    if (this.#connection.count(connection.name) >= connection.limits.sessions)
      return {
        scope: 'connection',
        limit: `connections.${connection.name}.limits.sessions`,
        value: connection.limits.sessions,
        what: `connection '${connection.name}' has as many sessions as it may`,
      };
    if (this.#global >= this.config.global.sessions)
      return { scope: 'global', limit: 'limits.global.sessions', value: this.config.global.sessions, what: 'the gateway has as many sessions as it may' };
    return undefined;
  }

  /** Takes a place for a new session of `principal` on `connection`, or says which limit refuses it. */
  admit(connection: LimitedConnection, principal: Principal, member = false): Admission {
    const p = principalKey(principal);
    const stdio = ownsProcess(connection);
    const full = this.fullCap(connection, principal, member);
    if (full !== undefined) {
      return this.refusals.refuse(
        principal,
        connection.name,
        full.limit,
        String(full.value),
        sessionRetrySeconds,
        `Too many sessions: ${full.what} (${full.limit}: ${full.value}); close a session or try again later`,
      );
    }
    const rate = this.config.principal.sessionOpens;
    const opens = member ? undefined : this.opens.get(p, rate);
    if (opens !== undefined && !opens.take()) {
      const wait = Math.max(1, Math.ceil(opens.waitMs() / 1000));
      return this.refusals.refuse(
        principal,
        connection.name,
        'limits.principal.sessionOpens',
        rateText(rate),
        wait,
        `Too many sessions opened: at most ${rateText(rate)} (limits.principal.sessionOpens); try again in ${wait}s`,
      );
    }
    if (!member) this.#principal.add(p);
    this.#connection.add(connection.name);
    if (stdio) this.processes.add(connection.name, p);
    this.#global++;
    return admitted(() => {
      if (!member) this.#principal.remove(p);
      this.#connection.remove(connection.name);
      if (stdio) this.processes.remove(connection.name, p);
      this.#global--;
    });
  }
}
