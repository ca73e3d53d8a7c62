import { sessionOpening } from '../core/refusal-log.js';
import { type Admission, admitted, type FullSessionCap, sessionRetrySeconds } from './admission.js';
import type { LimitedConnection, LimitsConfig } from './config.js';
import { Counters } from './keyed.js';
import type { Refusals } from './refusals.js';
import { type Principal, principalKey } from './principal.js';

/** Whether each session of the connection runs a server process of its own (stdio, not `upstreamSessions: pooled`). */
export function ownsProcess(connection: LimitedConnection): boolean {
  return connection.upstream.kind === 'stdio' && connection.upstreamSessions !== 'pooled';
}

/**
 * The server processes of stdio connections, counted per principal (limits.principal.stdioProcesses) and per
 * connection (its stdioProcesses). A process is counted with the session that owns it, or on its own when a pool
 * starts it (`upstreamSessions: pooled`): then the limits count processes, not the client sessions that share them.
 */
export class ServerProcesses {
  readonly #byPrincipal = new Counters();
  readonly #byConnection = new Counters();

  constructor(
    private readonly config: LimitsConfig,
    private readonly refusals: Refusals,
  ) {}

  /** The process limit that a new session owning a process of `connection` would exceed, if any. */
  fullCap(connection: LimitedConnection, principal: string): FullSessionCap | undefined {
    const principalCap = this.config.principal.stdioProcesses;
    if (this.#byPrincipal.count(principal) >= principalCap)
      return {
        scope: 'principal-stdio',
        limit: 'limits.principal.stdioProcesses',
        value: principalCap,
        what: 'you have as many server processes running as one caller may',
      };
    if (this.#byConnection.count(connection.name) >= connection.limits.stdioProcesses)
      return {
        scope: 'connection',
        limit: `connections.${connection.name}.limits.stdioProcesses`,
        value: connection.limits.stdioProcesses,
        what: `connection '${connection.name}' runs as many server processes as it may`,
      };
    return undefined;
  }

  /**
   * Takes a place for a server process of a pooled stdio connection, started when no open one can take a client
   * session; or says which limit refuses it.
   */
  admit(connection: LimitedConnection, principal: Principal): Admission {
    const p = principalKey(principal);
    const principalCap = this.config.principal.stdioProcesses;
    if (this.#byPrincipal.count(p) >= principalCap)
      return this.refusals.refuse(
        principal,
        { connection: connection.name, method: sessionOpening },
        'limits.principal.stdioProcesses',
        String(principalCap),
        sessionRetrySeconds,
        `Too many server processes: you have as many running as one caller may (limits.principal.stdioProcesses: ${principalCap}); try again later`,
      );
    if (this.#byConnection.count(connection.name) >= connection.limits.stdioProcesses)
      return this.refusals.refuse(
        principal,
        { connection: connection.name, method: sessionOpening },
        `connections.${connection.name}.limits.stdioProcesses`,
        String(connection.limits.stdioProcesses),
        sessionRetrySeconds,
        `Too many server processes: connection '${connection.name}' runs as many as it may (connections.${connection.name}.limits.stdioProcesses: ${connection.limits.stdioProcesses}); try again later`,
      );
    this.add(connection.name, p);
    return admitted(() => this.remove(connection.name, p));
  }

  add(connection: string, principal: string): void {
    this.#byConnection.add(connection);
    this.#byPrincipal.add(principal);
  }

  remove(connection: string, principal: string): void {
    this.#byConnection.remove(connection);
    this.#byPrincipal.remove(principal);
  }

  /** Processes counted now for a connection (for tests and metrics). */
  count(connection: string): number {
    return this.#byConnection.count(connection);
  }
}
