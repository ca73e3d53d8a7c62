import { Hono } from 'hono';
import { untrustedPath, untrustedPrefix } from '../core/untrusted-text.js';
import { HttpError } from '../core/http-error.js';
import { type ControlContext, type ControlEnv, replyJsonApi as json, requestUrl, sent, strictParams } from '../http/kit/route.js';
import { once } from 'node:events';
import { isUnreadable, type UnreadableKind, unreadableKind } from '../encryption/readable-store.js';
import { attestSession, attestSessions, ownedBy } from '../recording/attest.js';
import { erasedSessions } from '../recording/erasure.js';
import type { ErasureFacts } from '../recording/erasure-facts.js';
import { eventLine, exportGroup, exportSession } from '../recording/export.js';
import { parseTimeSpec } from '../recording/time.js';
import { type TrustedKeys, verifySession } from '../recording/verify.js';
import type { Store } from '../store/store.js';
import { eventsOfTrace, isTraceId } from '../recording/exchanges.js';
import { eventsOfGroup, exchangeGroups, parseGroupId } from '../recording/exchange-groups.js';
import { type GroupQuery, findGroup, listGroups, type SessionGroup, unreadableGroup, verifyGroup, vouchListing } from '../recording/session-groups.js';
import { type SessionEra, type SessionQuery, type SessionStatus, sessionEras } from '../store/types.js';

/**
 * /api/sessions: the recordings over HTTP for the console and scripts (read only).
 *   GET /api/sessions                 ?user&connection&status&era&since&until&denied&redacted&q&limit&cursor → { sessions, next }
 *   GET /api/sessions/:id             → { session }   (a session and each listed one carry `erased`: who, when, why, vouched, or null)
 *   GET /api/sessions/:id/events      ?after&limit → { events, next }; ?trace=<W3C trace id> → { events, next: null }, that trace's exchanges
 *                                     ?groups → { idleGapMs, groups }, a modern session's groups; ?group=<label> → { events, next: null }, one group's
 *   GET /api/sessions/:id/verify      → the verification result
 *   GET /api/sessions/:id/export      → JSON lines (portcullis.recording/v1)
 *   GET /api/sessions/groups          ?user&connection&since&until&limit → { idleGapMs, groups, erased, unreadable, exhausted }:
 *                                     modern clients' exchanges as the sessions a user sees, per principal and connection
 *                                     across pooled sessions, each with `erasedNearby`; the modern sessions that cannot be
 *                                     grouped, by their rows: `erased`, and `unreadable` here (no KEK, altered: why and the fix)
 *   GET /api/sessions/<group id>[/events|/verify|/export] → { group, sessions, erasedNearby } | { events, next: null } | its
 *                                     sessions' verifications | JSON lines (a `group` line, its sessions' lines, its events)
 * Whose a session is, here and for who may see it, is what its hashed opening event says, not the session row
 * (recording/attest.ts): each session carries `tampered`, the row's columns that disagree with it.
 * An encrypted recording this gateway cannot read is listed by its row, with `unreadable` (and `erased`: who, when,
 * why); its events and export, and a group of it, answer 410 (erased), 503 (its KEK is not configured here) or 500
 * (altered), saying so.
 */

/** A person whose own sessions a request may see: a subject of one issuer. */
export interface Person {
  subject: string;
  issuer: string;
}

const statuses: SessionStatus[] = ['open', 'closed', 'cut-off'];

function intParam(params: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = params.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new HttpError(400, `${name} expects a whole number from ${min} to ${max}, found ${JSON.stringify(raw)}`);
  return n;
}

/** An ISO time, or a duration ago (15m, 2h, 7d), in µs. */
function timeParam(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  const us = parseTimeSpec(raw);
  if (us === undefined) throw new HttpError(400, `${name} expects an ISO time or a duration ago such as 2h, found ${JSON.stringify(raw)}`);
  return us;
}

function encodeCursor(openedAtUs: number, id: string): string {
  return Buffer.from(`${openedAtUs}:${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { openedAtUs: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString();
  const at = text.indexOf(':');
  const openedAtUs = Number(text.slice(0, at));
  if (at < 1 || !Number.isSafeInteger(openedAtUs)) throw new HttpError(400, 'cursor is not one this API gave out');
  return { openedAtUs, id: text.slice(at + 1) };
}

export class SessionsApi {
  constructor(
    private readonly store: Store,
    private readonly trusted: () => Promise<TrustedKeys>,
    /** The idle gap that starts a new group of a modern session's untraced exchanges (sessions.viewIdleGap). */
    private readonly idleGapMs = 300_000,
  ) {}

  /** The routes under /api/sessions; whose sessions the caller may see is `seesOnly` (undefined: everyone's). */
  routes(): Hono<ControlEnv> {
    const r = new Hono<ControlEnv>();
    r.use(async (c, next) => {
      if (c.req.method !== 'GET') throw new HttpError(405, `${c.req.method} is not allowed here; the sessions API is read only (GET)`);
      strictParams(c);
      await next();
    });
    r.all('/', (c) => readable(this.#list(c, requestUrl(c).searchParams, c.get('seesOnly'))));
    r.all('/groups', (c) => readable(this.#groups(c, requestUrl(c).searchParams, c.get('seesOnly'))));
    r.all('/:id/:what?', (c) => readable(this.#session(c, false)));
    r.all('/:id/:what/*', (c) => readable(this.#session(c, true)));
    return r;
  }

  /** One session, its events, its verification or its export; `beyond`: the path goes on past what it names. */
  async #session(c: ControlContext, beyond: boolean): Promise<Response> {
    const { id, what } = strictParams(c) as { id: string; what?: string };
    const only = c.get('seesOnly');
    const url = requestUrl(c);
    const res = c.env.outgoing;
    if (parseGroupId(id) !== undefined) return this.#group(c, id, what, beyond);
    let session = await attestSession(this.store, await this.store.getSession(id));
    // Someone else's session, for a caller who may only see their own: as if it did not exist. Decided on the
    // recording, so that rewriting the row's owner shows a session to nobody it did not already belong to.
    if (only !== undefined && session !== undefined && !ownedBy(session, only)) session = undefined;
    if (only !== undefined && session === undefined) throw new HttpError(404, `no session ${JSON.stringify(untrustedPrefix(id))}`);
    if (beyond || (what !== undefined && !['events', 'verify', 'export'].includes(what)))
      throw new HttpError(404, `no such resource: ${untrustedPath(url.pathname)}`);
    if (what === 'verify') return json(c, session === undefined ? 404 : 200, await verifySession(this.store, id, await this.trusted()));
    if (session === undefined) throw new HttpError(404, `no session ${JSON.stringify(untrustedPrefix(id))}`);
    if (what === undefined)
      return json(c, 200, { session: { ...session, erased: (await erasedSessions(this.store, [id], await this.trusted())).get(id) ?? null } });
    // Its events and its export need the payloads: said before a reply starts (an export is whole or nothing).
    if (session.unreadable !== undefined) await this.store.openingEvents([id]);
    if (what === 'events') {
      const trace = url.searchParams.get('trace');
      if (trace !== null) {
        if (!isTraceId(trace))
          throw new HttpError(400, `trace expects a W3C trace id (32 hex digits, not all zero), found ${JSON.stringify(untrustedPrefix(trace))}`);
        const events = eventsOfTrace(await this.store.events(id, -1, 1_000_000), trace);
        return json(c, 200, { events: events.map((e) => eventLine(session, e)), next: null });
      }
      if (url.searchParams.has('groups'))
        return json(c, 200, { idleGapMs: this.idleGapMs, groups: exchangeGroups(await this.store.events(id, -1, 1_000_000), this.idleGapMs).groups });
      const group = url.searchParams.get('group');
      if (group !== null) {
        const events = eventsOfGroup(await this.store.events(id, -1, 1_000_000), group.slice(0, 100), this.idleGapMs);
        return json(c, 200, { events: events.map((e) => eventLine(session, e)), next: null });
      }
      const after = intParam(url.searchParams, 'after', -1, -1, Number.MAX_SAFE_INTEGER);
      const limit = intParam(url.searchParams, 'limit', 1000, 1, 10_000);
      const events = await this.store.events(id, after, limit);
      return json(c, 200, { events: events.map((e) => eventLine(session, e)), next: events.length === limit ? events.at(-1)!.seq : null });
    }
    res.writeHead(200, {
      'content-type': 'application/x-ndjson',
      'content-disposition': `attachment; filename="portcullis-session-${id.replace(/[^A-Za-z0-9_-]/g, '_')}.jsonl"`,
      'cache-control': 'no-store',
    });
    try {
      for await (const line of exportSession(this.store, session)) {
        if (!res.write(`${line}\n`)) await once(res, 'drain');
      }
    } catch (err) {
      // Too late for an error reply (an event further on was altered, the store failed): the download is cut short.
      res.destroy(err as Error);
      return sent;
    }
    res.end();
    return sent;
  }

  /** The groups of modern exchanges, newest first; a scoped caller's own only (by the recording, as for sessions). */
  async #groups(c: ControlContext, params: URLSearchParams, only: Person | undefined): Promise<Response> {
    const query: GroupQuery = { limit: intParam(params, 'limit', 50, 1, 1000), ...whoWhatWhen(params, only) };
    const { groups, erased, unreadable, exhausted } = await vouchListing(this.store, await listGroups(this.store, query, this.idleGapMs), await this.trusted());
    return json(c, 200, { idleGapMs: this.idleGapMs, groups, erased, unreadable, exhausted });
  }

  /** One group: its facts and sessions, its events, its sessions' verification, or its export. */
  async #group(c: ControlContext, id: string, what: string | undefined, beyond: boolean): Promise<Response> {
    const url = requestUrl(c);
    if (beyond || (what !== undefined && !['events', 'verify', 'export'].includes(what)))
      throw new HttpError(404, `no such resource: ${untrustedPath(url.pathname)}`);
    const found = await findGroup(this.store, id, this.idleGapMs);
    const only = c.get('seesOnly');
    // A group of a session unreadable here cannot be told apart: say why (nobody scoped may see such a session).
    const unreadable = found === undefined && only === undefined ? await unreadableGroup(this.store, id) : undefined;
    if (unreadable !== undefined) {
      if (what === 'verify') {
        // Verifying needs no key: the whole session covers the group.
        const v = await verifySession(this.store, unreadable.id, await this.trusted());
        const note = `its session's payloads cannot be read here (${unreadable.unreadable}), so the group cannot be told apart: its whole session ${unreadable.id} was verified, which covers it`;
        return json(c, 200, { group: id, status: v.status, events: v.events, problems: v.problems, notes: [note, ...v.notes], sessions: [v] });
      }
      throw new HttpError(
        unreadableStatus[unreadable.unreadableKind],
        `session group ${JSON.stringify(untrustedPrefix(id))} cannot be read: ${unreadable.unreadable}`,
      );
    }
    const mine = (g: SessionGroup) => only === undefined || (g.subject === only.subject && g.issuer === only.issuer);
    if (found === undefined || !mine(found.group) || (only !== undefined && !found.sessions.every((s) => ownedBy(s, only))))
      throw new HttpError(404, `no session group ${JSON.stringify(untrustedPrefix(id))} (a group is named by its first request: <session id>.<seq>)`);
    const byId = new Map(found.sessions.map((s) => [s.id, s]));
    if (what === undefined) {
      // An erased session cannot be attested as anyone's: named only to those who see everyone's.
      const nearby = only === undefined ? found.erasedNearby : [];
      const vouched = await this.#vouched(nearby.map((e) => e.session));
      const erasedNearby = nearby.map((e) => ({ ...e, erased: vouched(e.session, e.erased) }));
      return json(c, 200, { idleGapMs: this.idleGapMs, group: found.group, sessions: found.sessions, erasedNearby });
    }
    if (what === 'events') return json(c, 200, { events: found.events.map((e) => eventLine(byId.get(e.sessionId)!, e)), next: null });
    if (what === 'verify') return json(c, 200, await verifyGroup(this.store, found, await this.trusted()));
    const res = c.env.outgoing;
    res.writeHead(200, {
      'content-type': 'application/x-ndjson',
      'content-disposition': `attachment; filename="portcullis-group-${id.replace(/[^A-Za-z0-9_-]/g, '_')}.jsonl"`,
      'cache-control': 'no-store',
    });
    for (const line of exportGroup(found, this.idleGapMs)) {
      if (!res.write(`${line}\n`)) await once(res, 'drain');
    }
    res.end();
    return sent;
  }

  /**
   * Erasure facts of these erased sessions with whether a signed ledger entry vouches for each (as the sessions list
   * carries them), in place of those their unreadable recordings gave.
   */
  async #vouched(ids: string[]): Promise<(id: string, facts: ErasureFacts) => ErasureFacts> {
    const found = ids.length === 0 ? new Map<string, ErasureFacts>() : await erasedSessions(this.store, [...new Set(ids)], await this.trusted());
    return (id, facts) => found.get(id) ?? facts;
  }

  async #list(c: ControlContext, params: URLSearchParams, only: Person | undefined): Promise<Response> {
    const limit = intParam(params, 'limit', 50, 1, 1000);
    const query: SessionQuery = { limit, ...whoWhatWhen(params, only) };
    const status = params.get('status');
    const era = params.get('era');
    if (era) {
      if (!sessionEras.includes(era as SessionEra))
        throw new HttpError(400, `era expects one of ${sessionEras.join(', ')}, found ${JSON.stringify(untrustedPrefix(era))}`);
      query.era = era as SessionEra;
    }
    if (status) {
      if (!statuses.includes(status as SessionStatus))
        throw new HttpError(400, `status expects one of ${statuses.join(', ')}, found ${JSON.stringify(status)}`);
      query.status = status as SessionStatus;
    }
    const flag = (name: string) => {
      const v = params.get(name);
      if (v === null || v === '') return undefined;
      if (v !== 'true' && v !== 'false') throw new HttpError(400, `${name} expects true or false, found ${JSON.stringify(v.slice(0, 20))}`);
      return v === 'true';
    };
    const denied = flag('denied');
    const redacted = flag('redacted');
    if (denied !== undefined) query.hadDenial = denied;
    if (redacted !== undefined) query.hadRedaction = redacted;
    const search = params.get('q');
    if (search) query.search = search.slice(0, 200);
    const cursor = params.get('cursor');
    if (cursor) query.before = decodeCursor(cursor);
    const rows = await this.store.listSessions(query);
    const attested = await attestSessions(this.store, rows);
    // The row's owner picked these (the index); the recording must agree before a scoped caller sees one.
    const visible = only === undefined ? attested : attested.filter((s) => ownedBy(s, only));
    const erased = await erasedSessions(
      this.store,
      visible.map((s) => s.id),
      await this.trusted(),
    );
    const sessions = visible.map((s) => ({ ...s, erased: erased.get(s.id) ?? null }));
    const last = rows.at(-1);
    return json(c, 200, { sessions, next: rows.length === limit && last ? encodeCursor(last.openedAtUs, last.id) : null });
  }
}

/**
 * How a recording that cannot be read here answers, a session or a group of one: erased for good (410), its KEK not
 * configured here (503, the config can fix it), or altered (500: the store holds what Portcullis never wrote).
 */
const unreadableStatus: Record<UnreadableKind, number> = { erased: 410, 'no-kek': 503, altered: 500 };

/** A recording that cannot be read here answers with why, not as a failure of the gateway. */
async function readable(answer: Promise<Response>): Promise<Response> {
  try {
    return await answer;
  } catch (err) {
    if (!isUnreadable(err)) throw err;
    throw new HttpError(unreadableStatus[unreadableKind(err)], err.message);
  }
}

/**
 * The user, connection and time window of a listing (sessions or groups) from its parameters; a scoped caller
 * (`only`) is held to their own, and asking for someone else's is refused rather than silently narrowed.
 */
function whoWhatWhen(params: URLSearchParams, only: Person | undefined): Pick<SessionQuery, 'subject' | 'issuer' | 'connection' | 'fromUs' | 'toUs'> {
  const query: Pick<SessionQuery, 'subject' | 'issuer' | 'connection' | 'fromUs' | 'toUs'> = {};
  const user = params.get('user');
  const connection = params.get('connection');
  if (user) query.subject = user;
  if (only !== undefined) {
    if (user && user !== only.subject) throw new HttpError(403, "you may see your own sessions only (roles.auditors see everyone's)");
    query.subject = only.subject;
    query.issuer = only.issuer;
  }
  if (connection) query.connection = connection;
  const since = timeParam(params, 'since');
  const until = timeParam(params, 'until');
  if (since !== undefined) query.fromUs = since;
  if (until !== undefined) query.toUs = until;
  return query;
}
