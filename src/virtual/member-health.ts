import type { Logger } from 'pino';

/** What a virtual server's session last found of one member: up, or down and why. */
export type MemberReport = { readonly up: true } | { readonly up: false; readonly reason: string };

/** A member's state on one virtual server, as the console and /metrics show it. */
export interface MemberState {
  readonly member: string;
  readonly up: boolean;
  /** Why it is down (absent when up): the latest reason, when a retry failed differently. */
  readonly reason?: string;
  /** When it last changed (ms since the epoch). */
  readonly since: number;
  /**
   * The virtual sessions open now that have reported on it (and so use it, or retry it). 0: none does any more, and
   * the state is as it was last seen: a member no session uses is not counted down in /metrics.
   */
  readonly sessions: number;
}

/**
 * The members of every virtual server, up or down (one per gateway): the virtual sessions report what they find, the
 * console's connections page and /metrics show it, and each transition is logged once.
 */
export interface MemberHealth {
  /** What the virtual session `session` found of `member`. */
  report(server: string, member: string, report: MemberReport, session: string): void;
  /** The virtual session ended: it no longer uses (nor retries) any member. */
  ended(server: string, session: string): void;
  /** The members of `server` reported so far, in the order they were first reported. */
  of(server: string): MemberState[];
  /** How many of `server`'s members are down now, in a session open now. */
  downCount(server: string): number;
  /** Called on every change of a member's state (its first report too); returns its removal. */
  onChange(listener: (server: string, state: MemberState) => void): () => void;
}

interface Tracked {
  state: Omit<MemberState, 'sessions'>;
  /** The open virtual sessions that reported on it. */
  sessions: Set<string>;
}

/**
 * The gateway's MemberHealth. The last report of each member wins, so the view is "as last seen by any session"; a
 * report that changes nothing is not a transition: a member going down is a warning once (not once per session or per
 * failed retry), its coming back is logged too, and the first report of a member that is up is its normal state, not
 * news. Still down for another reason (the retry failed differently), the reason is the newest and `since` stays.
 * A member stays as last seen once no session uses it, but is no longer counted down: an alert on /metrics ends with
 * the last session that missed it, rather than lasting until some session happens to open it again.
 */
export class MemberHealthBoard implements MemberHealth {
  readonly #members = new Map<string, Map<string, Tracked>>();
  readonly #listeners = new Set<(server: string, state: MemberState) => void>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  report(server: string, member: string, report: MemberReport, session: string): void {
    let members = this.#members.get(server);
    if (members === undefined) this.#members.set(server, (members = new Map()));
    const tracked = members.get(member);
    tracked?.sessions.add(session);
    const before = tracked?.state;
    if (before !== undefined && before.up === report.up) {
      if (!report.up && before.reason !== report.reason) tracked!.state = { ...before, reason: report.reason };
      return;
    }
    const since = this.now();
    const state = report.up ? { member, up: true, since } : { member, up: false, reason: report.reason, since };
    if (tracked === undefined) members.set(member, { state, sessions: new Set([session]) });
    else tracked.state = state;
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
    const changed = this.#stateOf(members.get(member)!);
    for (const listener of this.#listeners) {
      try {
        listener(server, changed);
      } catch (err) {
        // One broken listener must not keep the others (or the reporting session) from going on.
        this.log.error({ err, virtualServer: server, member }, 'a member health listener failed');
      }
    }
  }

  ended(server: string, session: string): void {
    for (const tracked of this.#members.get(server)?.values() ?? []) tracked.sessions.delete(session);
  }

  of(server: string): MemberState[] {
    return [...(this.#members.get(server)?.values() ?? [])].map((t) => this.#stateOf(t));
  }

  downCount(server: string): number {
    let down = 0;
    for (const t of this.#members.get(server)?.values() ?? []) if (!t.state.up && t.sessions.size > 0) down++;
    return down;
  }

  onChange(listener: (server: string, state: MemberState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #stateOf(t: Tracked): MemberState {
    return { ...t.state, sessions: t.sessions.size };
  }
}
