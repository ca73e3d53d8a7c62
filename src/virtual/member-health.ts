import type { Logger } from 'pino';

/** What a virtual server's session last found of one member: up, or down and why. */
export type MemberReport = { readonly up: true } | { readonly up: false; readonly reason: string };

/** A member's state on one virtual server, as the console and /api show it. */
export interface MemberState {
  readonly member: string;
  readonly up: boolean;
  readonly reason?: string;
  /** When it last changed (ms since the epoch). */
  readonly since: number;
}

/**
 * The members of every virtual server, up or down (one per gateway): the virtual sessions report what they find, the
 * console's connections page and /api show it, and each transition is logged once.
 */
export interface MemberHealth {
  report(server: string, member: string, report: MemberReport): void;
  of(server: string): MemberState[];
  /** Called on every transition (a member that goes down or comes back); returns its removal. */
  onChange(listener: (server: string, state: MemberState) => void): () => void;
}

/** The gateway's MemberHealth: the last report of each member wins; a report that changes nothing is not a transition. */
export class MemberHealthBoard implements MemberHealth {
  readonly #states = new Map<string, Map<string, MemberState>>();
  readonly #listeners = new Set<(server: string, state: MemberState) => void>();

  constructor(private readonly log: Logger) {}

  report(server: string, member: string, report: MemberReport): void {
    let members = this.#states.get(server);
    if (members === undefined) this.#states.set(server, (members = new Map()));
    const before = members.get(member);
    if (before !== undefined && before.up === report.up) return;
    const state: MemberState = report.up ? { member, up: true, since: Date.now() } : { member, up: false, reason: report.reason, since: Date.now() };
    members.set(member, state);
    // The first report of a member that is up is its normal state, not news.
    if (report.up && before === undefined) return;
    if (report.up) this.log.info({ virtualServer: server, member }, `member '${member}' of virtual server '${server}' is back`);
    else
      this.log.warn({ virtualServer: server, member, reason: report.reason }, `member '${member}' of virtual server '${server}' is left out: ${report.reason}`);
    for (const l of this.#listeners) l(server, state);
  }

  of(server: string): MemberState[] {
    return [...(this.#states.get(server)?.values() ?? [])];
  }

  onChange(listener: (server: string, state: MemberState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
