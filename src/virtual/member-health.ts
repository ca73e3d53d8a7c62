import type { Logger } from 'pino';

/** What a virtual server's session last found of one member: up, or down and why. */
export type MemberReport = { readonly up: true } | { readonly up: false; readonly reason: string };

/** A member's state on one virtual server, as the console and /api show it. */
export interface MemberState {
  readonly member: string;
  readonly up: boolean;
  /** Why it is down (absent when up): the latest reason, when a retry failed differently. */
  readonly reason?: string;
  /** When it last changed (ms since the epoch). */
  readonly since: number;
}

/**
 * The members of every virtual server, up or down (one per gateway): the virtual sessions report what they find, the
 * console's connections page and /metrics show it, and each transition is logged once.
 */
export interface MemberHealth {
  report(server: string, member: string, report: MemberReport): void;
  /** The members of `server` reported so far, in the order they were first reported. */
  of(server: string): MemberState[];
  /** How many of `server`'s members are down now. */
  downCount(server: string): number;
  /** Called on every change of a member's state (its first report too); returns its removal. */
  onChange(listener: (server: string, state: MemberState) => void): () => void;
}

/**
 * The gateway's MemberHealth. The last report of each member wins, so the view is "as last seen by any session"; a
 * report that changes nothing is not a transition: a member going down is a warning once (not once per session or per
 * failed retry), its coming back is logged too, and the first report of a member that is up is its normal state, not
 * news. Still down for another reason (the retry failed differently), the reason is the newest and `since` stays.
 */
export class MemberHealthBoard implements MemberHealth {
  readonly #states = new Map<string, Map<string, MemberState>>();
  readonly #listeners = new Set<(server: string, state: MemberState) => void>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  report(server: string, member: string, report: MemberReport): void {
    let members = this.#states.get(server);
    if (members === undefined) this.#states.set(server, (members = new Map()));
    const before = members.get(member);
    if (before !== undefined && before.up === report.up) {
      if (!report.up && before.reason !== report.reason) members.set(member, { ...before, reason: report.reason });
      return;
    }
    const since = this.now();
    const state: MemberState = report.up ? { member, up: true, since } : { member, up: false, reason: report.reason, since };
    members.set(member, state);
    if (!report.up) {
      this.log.warn(
        { virtualServer: server, member, reason: report.reason },
        `member '${member}' of virtual server '${server}' is left out: ${report.reason} (retried in the background)`,
      );
    } else if (before !== undefined) {
      this.log.info(
        { virtualServer: server, member, downSince: new Date(before.since).toISOString() },
        `member '${member}' of virtual server '${server}' is back`,
      );
    }
    for (const listener of this.#listeners) {
      try {
        listener(server, state);
      } catch (err) {
        // One broken listener must not keep the others (or the reporting session) from going on.
        this.log.error({ err, virtualServer: server, member }, 'a member health listener failed');
      }
    }
  }

  of(server: string): MemberState[] {
    return [...(this.#states.get(server)?.values() ?? [])];
  }

  downCount(server: string): number {
    let down = 0;
    for (const s of this.#states.get(server)?.values() ?? []) if (!s.up) down++;
    return down;
  }

  onChange(listener: (server: string, state: MemberState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
