import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../core/identity.js';
import type { EventLine } from '../recording/export.js';
import type { Session, SessionObserver } from '../session/session.js';

/**
 * What the console hears without reloading: sessions opening and ending and the events of their exchanges as they
 * are recorded, of every replica (live-relay.ts, live-exchanges.ts; to those who may see the session), and a nudge
 * when reviews or access requests change (the console then asks /api/reviews, which decides what each person
 * sees). Server-sent events on GET /api/console/live; a comment line every 25 s keeps proxies from closing it.
 */

export interface LiveSession {
  id: string;
  connection: string;
  subject: string;
  email: string | null;
  openedAt: string;
}

/**
 * A recorded event as /api/sessions/:id/events gives it (masked as recorded), except that a payload past
 * `liveLineMaxChars` is left out (`cut`): the console reads that one from the API.
 */
export type LiveEventLine = Omit<EventLine, 'payload' | 'forwarded'> & { payload?: string; forwarded?: string; cut?: true };

export type LiveEvent =
  | { type: 'session-opened'; session: LiveSession }
  /** Events of a session's exchanges, just recorded; `more`: there were more than one message carries (read them from the API). */
  | { type: 'session-events'; id: string; subject: string; events: LiveEventLine[]; more: boolean }
  | { type: 'session-closed'; id: string; subject: string; reason: string }
  | { type: 'reviews' }
  | { type: 'access-requests' };

interface Listener {
  res: ServerResponse;
  /** Sees every session (auditors) or only their own: their subject at their issuer. */
  all: boolean;
  subject: string;
  issuer: string;
  /** The console session it belongs to, and when that ends: the stream ends with it. */
  consoleSession: string;
  expiresAtMs: number;
}

/** Whose a session is: a subject at an issuer. */
export interface Owner {
  subject: string;
  issuer: string;
}

/** Whether a listener may see a session of `owner` (null: a session whose owner is not attested, for auditors only). */
function maySee(l: Listener, owner: Owner | null): boolean {
  return l.all || (owner !== null && l.subject === owner.subject && l.issuer === owner.issuer);
}

/** What a listener that does not read may have waiting before its stream is ended. */
const maxBufferedBytes = 1024 * 1024;

export class LiveEvents implements SessionObserver {
  readonly #listeners = new Set<Listener>();
  readonly #keepAlive: NodeJS.Timeout;

  constructor() {
    this.#keepAlive = setInterval(() => {
      const now = Date.now();
      for (const l of this.#listeners) {
        if (l.expiresAtMs <= now) this.#end(l);
        else l.res.write(': keep-alive\n\n');
      }
    }, 25_000);
    this.#keepAlive.unref();
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  /** Whether anyone listening here may see a session of `owner` (null: of nobody a scope names, so auditors only). */
  anyMaySee(owner: Owner | null): boolean {
    for (const l of this.#listeners) if (maySee(l, owner)) return true;
    return false;
  }

  /** Holds the response open as an event stream for `identity`, until the console session ends. */
  subscribe(req: IncomingMessage, res: ServerResponse, identity: Identity, all: boolean, consoleSession: { idHash: string; expiresAtUs: number }): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write(': live\n\n');
    const listener: Listener = {
      res,
      all,
      subject: identity.subject,
      issuer: identity.issuer,
      consoleSession: consoleSession.idHash,
      expiresAtMs: consoleSession.expiresAtUs / 1000,
    };
    this.#listeners.add(listener);
    req.on('close', () => this.#listeners.delete(listener));
  }

  /** Ends the streams of a console session that signed out. */
  endSession(idHash: string): void {
    for (const l of this.#listeners) if (l.consoleSession === idHash) this.#end(l);
  }

  #end(l: Listener): void {
    this.#listeners.delete(l);
    // A stream that is not being read will not take its end either: its socket goes.
    if (l.res.writableLength > maxBufferedBytes) l.res.destroy();
    else l.res.end();
  }

  /**
   * To every listener, or, for a session's event, to those who may see that session (its owner, the auditors; only
   * the auditors when `owner` is null).
   */
  #send(event: LiveEvent, owner?: Owner | null): void {
    if (this.#listeners.size === 0) return;
    const line = `data: ${JSON.stringify(event)}\n\n`;
    for (const l of this.#listeners) {
      if (owner !== undefined && !maySee(l, owner)) continue;
      // A page that stopped reading (a frozen tab, a dead network) is let go rather than buffered for without end;
      // the console opens a new stream and reads the lists again.
      if (l.res.writableLength > maxBufferedBytes) this.#end(l);
      else l.res.write(line);
    }
  }

  opened(session: Session): void {
    this.#send(openedEvent(session), session.identity);
  }

  closed(session: Session, reason: string): void {
    this.#send(closedEvent(session, reason), session.identity);
  }

  /** A session event of another replica (live-relay.ts), to those here who may see that session. */
  relay(event: LiveEvent, owner: Owner): void {
    this.#send(event, owner);
  }

  /** Events of a session's exchanges (live-exchanges.ts), to those here who may see the session. */
  sessionEvents(event: Extract<LiveEvent, { type: 'session-events' }>, owner: Owner | null): void {
    this.#send(event, owner);
  }

  reviewsChanged(): void {
    this.#send({ type: 'reviews' });
  }

  accessRequestsChanged(): void {
    this.#send({ type: 'access-requests' });
  }

  close(): void {
    clearInterval(this.#keepAlive);
    for (const l of this.#listeners) l.res.end();
    this.#listeners.clear();
  }
}

export function openedEvent(session: Session): LiveEvent {
  const identity = session.identity;
  return {
    type: 'session-opened',
    session: { id: session.id, connection: session.connection, subject: identity.subject, email: identity.email ?? null, openedAt: new Date().toISOString() },
  };
}

export function closedEvent(session: Session, reason: string): LiveEvent {
  return { type: 'session-closed', id: session.id, subject: session.identity.subject, reason: reason.slice(0, 300) };
}
