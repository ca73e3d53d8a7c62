import { isUnreadable, type UnreadableError, type UnreadableKind } from '../encryption/readable-store.js';
import type { Store } from '../store/store.js';
import { type EventRow, modernEdge, type SessionQuery } from '../store/types.js';
import { type AttestedSession, attestSessions, unreadableFacts } from './attest.js';
import { erasedSessions } from './erasure.js';
import type { ErasureFacts } from './erasure-facts.js';
import { type ExchangeGroup, eventsOfMergedGroup, groupId, groupSessions, parseGroupId, type SessionEvents } from './exchange-groups.js';
import { nowUs } from './time.js';
import { type SessionVerification, type TrustedKeys, type VerifyStatus, verifySession } from './verify.js';

/**
 * The sessions a user sees of modern (2026-07-28) clients: the exchanges of one principal on one connection, over every
 * pooled session that recorded them (and the sessions that record refused requests), grouped by trace id, else by an
 * idle gap (exchange-groups.ts). The pooled sessions are the gateway's, not the client's; a group is what the client
 * did. Read from the recording each time: nothing here is stored, and nothing is decided on it.
 */

/** A group with whose it is and where: the identity and connection of its (attested) sessions. */
export interface SessionGroup extends ExchangeGroup {
  connection: string;
  subject: string;
  issuer: string | null;
  email: string | null;
  /** Whether one of its sessions is still open: more exchanges may join it. */
  open: boolean;
  /** Whether a row of one of its sessions disagrees with its recording (`sessions verify` tells more). */
  tampered: boolean;
}

/**
 * A pooled session of a group's principal and connection, erased, that was recording within the idle gap of the
 * group's exchanges: those of its exchanges that belonged to the group (if any) can never be read, and grouping, which
 * reads payloads, cannot tell which did. A group with one may be partly erased; it cannot be said that it is.
 */
export interface ErasedNearby {
  session: string;
  erased: ErasureFacts;
}

/** A group as a listing shows it: with the erased sessions near it (ErasedNearby). */
export interface ListedGroup extends SessionGroup {
  erasedNearby: ErasedNearby[];
}

/**
 * A modern session this gateway cannot group because it was erased (its payloads can never be read): a listing shows
 * it by its row, in place of the groups it held.
 */
export type ErasedModernSession = AttestedSession & { erased: ErasureFacts };

/**
 * A modern session this gateway cannot group because its recording cannot be read here, though it was not erased:
 * encrypted under a KEK this config lacks (`unreadableKind` no-kek, as its own routes answer 503), or altered (altered,
 * 500), its opening or any later event. `unreadable` says why, `unreadableFix` what to do. Listed by its row (by its
 * opening, when that reads), in place of the groups it held.
 */
export type UnreadableModernSession = AttestedSession &
  Required<Pick<AttestedSession, 'unreadable' | 'unreadableFix'>> & { unreadableKind: Exclude<UnreadableKind, 'erased'> };

/** The sessions a listing keeps aside, by their rows: those erased, and those unreadable here for another reason. */
interface Aside {
  erased: ErasedModernSession[];
  unreadable: UnreadableModernSession[];
}

/** Puts a session whose recording cannot be read here where it belongs aside; false when it can be read. */
function setAside(s: AttestedSession, aside: Aside): boolean {
  if (s.unreadable === undefined) return false;
  if (s.erased !== undefined) aside.erased.push({ ...s, erased: s.erased });
  else if (s.unreadableKind !== undefined && s.unreadableKind !== 'erased' && s.unreadableFix !== undefined)
    aside.unreadable.push({ ...s, unreadable: s.unreadable, unreadableKind: s.unreadableKind, unreadableFix: s.unreadableFix });
  return true;
}

const newestFirst = (a: AttestedSession, b: AttestedSession) => b.openedAtUs - a.openedAtUs || (a.id < b.id ? -1 : 1);

/** Pooled sessions read at most to answer one listing or lookup: groups have no index, so a view reads recordings. */
export const groupScanLimit = 2000;

const page = 200;

export interface GroupQuery {
  subject?: string;
  issuer?: string;
  connection?: string;
  /** Groups active at or after this time (µs). */
  fromUs?: number;
  /** Groups that started before this time (µs). */
  toUs?: number;
  /** Newest first, at most this many. */
  limit: number;
}

async function allEvents(store: Store, sessionId: string): Promise<EventRow[]> {
  const out: EventRow[] = [];
  for (let after = -1; ; ) {
    const events = await store.events(sessionId, after, 5000);
    out.push(...events);
    if (events.length < 5000) return out;
    after = events.at(-1)!.seq;
  }
}

/**
 * The modern sessions of the query opened before `toUs`, newest first, back to those that ended before `fromUs` (a
 * whole page of them in a row ends the scan: the sessions of one pool key mostly follow one another), at most
 * `groupScanLimit`.
 */
async function modernSessions(
  store: Store,
  query: Pick<SessionQuery, 'subject' | 'issuer' | 'connection' | 'toUs'>,
  fromUs: number | undefined,
): Promise<Aside & { sessions: AttestedSession[]; exhausted: boolean }> {
  const out: AttestedSession[] = [];
  const aside: Aside = { erased: [], unreadable: [] };
  let before: SessionQuery['before'];
  let endedEarlier = 0;
  for (let scanned = 0; ; ) {
    const rows = await store.listSessions({ ...query, era: 'modern', limit: page, ...(before ? { before } : {}) });
    for (const s of await attestSessions(store, rows)) {
      if (++scanned > groupScanLimit) return { sessions: out, ...aside, exhausted: true };
      // The row says modern; the recording must agree (an altered edge column does not move a session between views).
      if (s.edge !== modernEdge) continue;
      // A recording this gateway cannot read (erased, encrypted under a KEK it lacks, altered) has no exchanges to
      // group: it is kept aside, by its row, to be shown in place of its groups.
      const endedBefore = fromUs !== undefined && s.closedAtUs !== null && s.closedAtUs < fromUs;
      if (s.unreadable !== undefined) {
        if (!endedBefore) setAside(s, aside);
        continue;
      }
      if (endedBefore) {
        if (++endedEarlier >= page) return { sessions: out, ...aside, exhausted: false };
        continue;
      }
      endedEarlier = 0;
      out.push(s);
    }
    if (rows.length < page) return { sessions: out, ...aside, exhausted: false };
    const last = rows.at(-1)!;
    before = { openedAtUs: last.openedAtUs, id: last.id };
  }
}

/** Whose a session is, as the key its groups are formed under. */
const principalOf = (s: AttestedSession) => JSON.stringify([s.connection, s.subject, s.issuer]);

/** The erased sessions (of the group's principal) that were recording within `gapUs` of the group's exchanges. */
function erasedNear(group: ExchangeGroup, erased: readonly ErasedModernSession[], gapUs: number): ErasedNearby[] {
  return erased
    .filter((s) => s.openedAtUs <= group.lastUs + gapUs && (s.closedAtUs ?? nowUs()) >= group.firstUs - gapUs)
    .map((s) => ({ session: s.id, erased: s.erased }));
}

/** A session whose opening reads but a later event does not (an altered ciphertext), and why. */
interface FailedRead {
  session: AttestedSession;
  why: UnreadableError;
}

/**
 * The groups of sessions that all belong to one principal on one connection, with their events. A session one of
 * whose events cannot be read here is left out of them (`failed`): the others are grouped all the same.
 */
async function groupsOf(
  store: Store,
  sessions: readonly AttestedSession[],
  gapMs: number,
): Promise<{ groups: SessionGroup[]; streams: SessionEvents[]; byEvent: Map<string, string>; failed: FailedRead[] }> {
  const streams: SessionEvents[] = [];
  const failed: FailedRead[] = [];
  for (const s of sessions) {
    try {
      streams.push({ sessionId: s.id, events: await allEvents(store, s.id) });
    } catch (err) {
      if (!isUnreadable(err)) throw err;
      failed.push({ session: s, why: err });
    }
  }
  const byId = new Map(sessions.map((s) => [s.id, s]));
  const first = byId.get(streams[0]?.sessionId ?? '');
  if (first === undefined) return { groups: [], streams, byEvent: new Map(), failed };
  const grouped = groupSessions(streams, gapMs);
  const groups = grouped.groups.map((g): SessionGroup => {
    const own = g.sessions.map((id) => byId.get(id)!);
    return {
      ...g,
      connection: first.connection,
      subject: first.subject,
      issuer: first.issuer,
      email: own.find((s) => s.email !== null)?.email ?? null,
      open: own.some((s) => s.status === 'open'),
      tampered: own.some((s) => s.tampered.length > 0),
    };
  });
  return { groups, streams, byEvent: grouped.byEvent, failed };
}

/**
 * The groups of the modern sessions the query names, newest first: each principal's sessions on each connection grouped
 * together, each with the erased sessions near it; and, newest first, the modern sessions the query names whose groups
 * cannot be told because their recordings cannot be read here: `erased` (for good), and `unreadable` (no KEK here,
 * altered), each saying why and what to do. `exhausted`: the scan stopped at `groupScanLimit` sessions (narrow it by
 * time, user or connection).
 */
export async function listGroups(store: Store, query: GroupQuery, gapMs: number): Promise<Aside & { groups: ListedGroup[]; exhausted: boolean }> {
  const gapUs = gapMs * 1000;
  const scanned = await modernSessions(
    store,
    {
      ...(query.subject !== undefined ? { subject: query.subject } : {}),
      ...(query.issuer !== undefined ? { issuer: query.issuer } : {}),
      ...(query.connection !== undefined ? { connection: query.connection } : {}),
      ...(query.toUs !== undefined ? { toUs: query.toUs } : {}),
    },
    query.fromUs === undefined ? undefined : query.fromUs - gapUs,
  );
  // Who the scope asked for is decided on the recording (attested), not on the row the query matched: a session whose
  // opening cannot be read cannot be attested, so it is nobody's to see but those who see everyone's.
  const inScope = (s: AttestedSession) =>
    (query.subject === undefined || s.subject === query.subject) && (query.issuer === undefined || (s.issuer === query.issuer && s.owned));
  const byPrincipal = new Map<string, AttestedSession[]>();
  for (const s of scanned.sessions.filter(inScope)) {
    const k = principalOf(s);
    const own = byPrincipal.get(k);
    if (own === undefined) byPrincipal.set(k, [s]);
    else own.push(s);
  }
  const aside: Aside = { erased: scanned.erased.filter(inScope), unreadable: scanned.unreadable.filter(inScope) };
  const grouped: Array<{ principal: string; groups: SessionGroup[] }> = [];
  for (const [principal, own] of byPrincipal) {
    // Oldest first: the idle groups are numbered in time.
    const { groups, failed } = await groupsOf(store, own.reverse(), gapMs);
    for (const f of failed) setAside({ ...f.session, ...unreadableFacts(f.session.id, f.why) }, aside);
    grouped.push({ principal, groups });
  }
  const out: ListedGroup[] = [];
  for (const { principal, groups } of grouped) {
    const erasedOfPrincipal = aside.erased.filter((s) => principalOf(s) === principal);
    for (const g of groups) {
      if (query.fromUs !== undefined && g.lastUs < query.fromUs) continue;
      if (query.toUs !== undefined && g.firstUs >= query.toUs) continue;
      out.push({ ...g, erasedNearby: erasedNear(g, erasedOfPrincipal, gapUs) });
    }
  }
  out.sort((a, b) => b.firstUs - a.firstUs || (a.id < b.id ? -1 : 1));
  // The scan read a gap before the window, to group across its edge: shown are those that reach into it.
  const shown = <T extends AttestedSession>(list: T[]) =>
    list
      .filter((s) => query.fromUs === undefined || s.closedAtUs === null || s.closedAtUs >= query.fromUs)
      .sort(newestFirst)
      .slice(0, query.limit);
  return { groups: out.slice(0, query.limit), erased: shown(aside.erased), unreadable: shown(aside.unreadable), exhausted: scanned.exhausted };
}

/**
 * A listing's erasures (its erased sessions, and those near its groups) as erasedSessions tells them, with whether a
 * signed ledger entry vouches for each, in place of what their unreadable recordings gave: as the API and the CLI list them.
 */
export async function vouchListing<L extends { groups: ListedGroup[]; erased: ErasedModernSession[] }>(
  store: Store,
  listing: L,
  trusted: TrustedKeys,
): Promise<L> {
  const ids = [...new Set([...listing.erased.map((s) => s.id), ...listing.groups.flatMap((g) => g.erasedNearby.map((e) => e.session))])];
  const found = ids.length === 0 ? new Map<string, ErasureFacts>() : await erasedSessions(store, ids, trusted);
  const vouched = (id: string, facts: ErasureFacts) => found.get(id) ?? facts;
  return {
    ...listing,
    groups: listing.groups.map((g) => ({ ...g, erasedNearby: g.erasedNearby.map((e) => ({ ...e, erased: vouched(e.session, e.erased) })) })),
    erased: listing.erased.map((s) => ({ ...s, erased: vouched(s.id, s.erased) })),
  };
}

/** One group found by its id, with its sessions and its events (in time order). */
export interface FoundGroup {
  group: SessionGroup;
  sessions: AttestedSession[];
  events: EventRow[];
  /** The erased sessions of its principal near it: it may be partly erased (ErasedNearby). */
  erasedNearby: ErasedNearby[];
}

/**
 * The group that holds the request an id names (the group it starts, or, under another idle gap, the one it is now
 * part of), read over the principal's modern sessions on the connection around it. Undefined when the id names no
 * request of a modern session.
 */
export async function findGroup(store: Store, id: string, gapMs: number): Promise<FoundGroup | undefined> {
  const at = parseGroupId(id);
  if (at === undefined) return undefined;
  const [target] = await attestSessions(
    store,
    [await store.getSession(at.sessionId)].filter((s) => s !== undefined),
  );
  if (target === undefined || target.edge !== modernEdge || target.unreadable !== undefined) return undefined;
  const gapUs = gapMs * 1000;
  let fromUs = target.openedAtUs - gapUs;
  let toUs = (target.closedAtUs ?? nowUs()) + gapUs + 1;
  // Widened until the group lies inside the sessions read, with an idle gap to spare on each side.
  for (let round = 0; round < 8; round++) {
    const { sessions, erased } = await modernSessions(store, { subject: target.subject, connection: target.connection, toUs }, fromUs);
    const own = sessions.filter((s) => principalOf(s) === principalOf(target)).reverse();
    if (!own.some((s) => s.id === target.id)) own.push(target);
    const { groups, streams, byEvent, failed } = await groupsOf(store, own, gapMs);
    // Its own recording cannot be read (an event altered): say why, as its session's events do; another's is left out.
    const unreadableTarget = failed.find((f) => f.session.id === target.id);
    if (unreadableTarget !== undefined) throw unreadableTarget.why;
    const label = byEvent.get(groupId(at.sessionId, at.seq));
    const group = groups.find((g) => g.label === label);
    if (label === undefined || group === undefined) return undefined;
    const wider = group.firstUs - gapUs < fromUs || (group.lastUs + gapUs >= toUs && toUs <= nowUs());
    if (!wider || round === 7) {
      return {
        group,
        sessions: own.filter((s) => group.sessions.includes(s.id)),
        events: eventsOfMergedGroup(streams, byEvent, label),
        erasedNearby: erasedNear(
          group,
          erased.filter((s) => principalOf(s) === principalOf(target)),
          gapUs,
        ),
      };
    }
    fromUs = Math.min(fromUs, group.firstUs - 2 * gapUs);
    toUs = Math.max(toUs, group.lastUs + 2 * gapUs + 1);
  }
  return undefined;
}

/**
 * The modern session a group id names when it cannot be read here (`unreadable` says why, `unreadableKind` which kind:
 * encrypted under a KEK this config lacks, erased, its ciphertext altered): its groups cannot be told without its
 * payloads. Undefined when it can be read, or the id names none.
 */
export async function unreadableGroup(
  store: Store,
  id: string,
): Promise<(AttestedSession & Required<Pick<AttestedSession, 'unreadable' | 'unreadableKind'>>) | undefined> {
  const at = parseGroupId(id);
  if (at === undefined) return undefined;
  const [target] = await attestSessions(
    store,
    [await store.getSession(at.sessionId)].filter((s) => s !== undefined),
  );
  if (target?.edge !== modernEdge || target.unreadable === undefined || target.unreadableKind === undefined) return undefined;
  return { ...target, unreadable: target.unreadable, unreadableKind: target.unreadableKind };
}

/** A group's integrity: its sessions' verifications (each proves a whole session's recording), and the worst of them. */
export interface GroupVerification {
  group: string;
  status: VerifyStatus;
  events: number;
  problems: Array<{ seq?: number; message: string }>;
  notes: string[];
  sessions: SessionVerification[];
}

const worst: VerifyStatus[] = ['failed', 'deleted', 'unsealed', 'erased', 'verified'];

export async function verifyGroup(store: Store, found: FoundGroup, trusted: TrustedKeys): Promise<GroupVerification> {
  const sessions: SessionVerification[] = [];
  for (const s of found.sessions) sessions.push(await verifySession(store, s.id, trusted));
  return {
    group: found.group.id,
    status: worst.find((w) => sessions.some((v) => v.status === w)) ?? 'verified',
    events: sessions.reduce((n, v) => n + v.events, 0),
    problems: sessions.flatMap((v) => v.problems.map((p) => ({ ...p, message: `session ${v.sessionId}: ${p.message}` }))),
    notes: [
      `the group is a view over ${sessions.length} session${sessions.length === 1 ? '' : 's'}; each is verified whole`,
      ...sessions.flatMap((v) => v.notes.map((n) => `session ${v.sessionId}: ${n}`)),
    ],
    sessions,
  };
}
