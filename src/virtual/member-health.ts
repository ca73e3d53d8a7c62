import type { Logger } from 'pino';

/** What a virtual server's session found of one member: open and answering, or left out and why. */
export type MemberState = { up: true } | { up: false; reason: string };

/** A member's last known state on one virtual server, and since when it has been in it (ISO time). */
export interface MemberStatus {
  member: string;
  up: boolean;
  /** Why it is down (absent when up). */
  reason?: string;
  since: string;
}

/** A member's state changed (up → down, down → up, or its first report). */
export type MemberHealthListener = (server: string, status: MemberStatus) => void;

/**
 * The gateway's view of every virtual server's members (one per gateway): each virtual session reports what it finds
 * when it opens a member, when a member fails (start, handshake, timeout, later death) and when a retry brings it
 * back; the latest report wins, so the view is "as last seen by any session". A member going down is a warning in
 * the log once per transition (not once per session or retry), and its coming back is logged too; listeners hear
 * every transition (the console, metrics read it when scraped). A member no session has reported yet is absent.
 */
export class MemberHealth {
  readonly #servers = new Map<string, Map<string, MemberStatus>>();
  readonly #listeners = new Set<MemberHealthListener>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  report(server: string, member: string, state: MemberState): void {
    let members = this.#servers.get(server);
    if (members === undefined) this.#servers.set(server, (members = new Map()));
    const before = members.get(member);
    if (before !== undefined && before.up === state.up) {
      // Still down for another reason (the retry failed differently): the newest reason, the same since.
      if (!state.up) before.reason = state.reason;
      return;
    }
    const status: MemberStatus = state.up
      ? { member, up: true, since: new Date(this.now()).toISOString() }
      : { member, up: false, reason: state.reason, since: new Date(this.now()).toISOString() };
    members.set(member, status);
    if (!state.up) {
      this.log.warn(
        { virtualServer: server, member, reason: state.reason },
        `virtual server '${server}': member '${member}' is unavailable and left out of its lists (${state.reason}); retrying in the background`,
      );
    } else if (before !== undefined) {
      this.log.info({ virtualServer: server, member, downSince: before.since }, `virtual server '${server}': member '${member}' is back`);
    }
    for (const listener of this.#listeners) {
      try {
        listener(server, { ...status });
      } catch (err) {
        this.log.error({ err, virtualServer: server, member }, 'a member health listener failed');
      }
    }
  }

  /** The members of `server` reported so far, in the order they were first reported. */
  of(server: string): MemberStatus[] {
    return [...(this.#servers.get(server)?.values() ?? [])].map((s) => ({ ...s }));
  }

  /** How many of `server`'s members are down now. */
  downCount(server: string): number {
    let n = 0;
    for (const s of this.#servers.get(server)?.values() ?? []) if (!s.up) n++;
    return n;
  }

  /** Hears every transition; returns how to stop hearing. */
  onChange(listener: MemberHealthListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
