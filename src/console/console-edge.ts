import type { AuditStreamSummary } from './audit-summary.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { readJson } from '../api/json-body.js';
import { Hono } from 'hono';
import { replyApiJson } from '../edge/http-reply.js';
import type { HostPolicy } from '../edge/origin.js';
import { type ControlEnv, type ErrorReply, errorsAs, hostGuard, plainErrorReply, requestUrl, sent } from '../http/kit/route.js';
import type { PublicUrls } from '../edge/public-urls.js';
import type { DevIdentity } from '../identity/dev-identity.js';
import type { TokenVerifier } from '../identity/verifier.js';
import type { Identity } from '../core/identity.js';
import { sameSecret } from '../crypto/secrets.js';
import { inGroups } from '../identity/roles.js';
import { addCookie, ConsoleSessions, type ConsoleUser, readCookie } from './console-sessions.js';
import type { LiveEvents } from './live-events.js';
import { type ConsoleIssuer, type OidcSignIn, SignInError } from './oidc-sign-in.js';
import { securityHeaders, type StaticFiles } from './static-files.js';
import { HttpError } from '../core/http-error.js';
import type { ConnectionSummary } from './connection-summary.js';

/**
 * The web console's own endpoints, beside the pages (static-files.ts):
 *   GET  /auth/login?issuer&return   → 302 to the IdP (authorization code with PKCE)
 *   GET  /auth/callback              → the IdP's answer: signs in, 302 back into the console
 *   POST /auth/dev {user, key}       → signs in as a dev-identity user (quick start; the key is in the link printed at start)
 *   POST /auth/sign-out              → ends the console session
 *   GET  /api/console/sign-in        → { issuers, devUsers } for the sign-in page (public)
 *   GET  /api/console/me             → { identity, roles, csrfToken, expiresAt }
 *   GET  /api/console/live           → server-sent events (live-events.ts)
 *   GET  /api/console/connections    → { connections, audit } (roles.admins; connection-summary.ts, audit-summary.ts)
 * and, for the rest of /api, `caller()`: the signed-in person a console request comes from.
 */

export interface ConsoleRoles {
  /** Sees every session (roles.auditors); others see their own. */
  auditor: boolean;
  /** Agents, tool pins, connections (roles.admins). */
  admin: boolean;
}

export interface ConsoleEdgeOptions {
  sessions: ConsoleSessions;
  signIn: OidcSignIn;
  issuers: readonly ConsoleIssuer[];
  devIdentity: DevIdentity | undefined;
  verifier: TokenVerifier;
  live: LiveEvents;
  files: StaticFiles;
  publicUrls: PublicUrls;
  roles: { admins: readonly string[]; auditors: readonly string[] };
  /** The gateway's connections, as admins see them. */
  connections: () => ConnectionSummary[];
  /** The audit streams' state (empty when none is configured). */
  audit?: () => AuditStreamSummary[];
  log: Logger;
}

/**
 * The cookie that binds a sign-in in flight to the browser that started it (its value is the OAuth state). Over
 * https it is `__Host-` prefixed, so no other site of the same domain can plant one.
 */
const loginCookie = (secure: boolean) => (secure ? '__Host-portcullis-login' : 'portcullis-login');
const loginCookiePath = (secure: boolean) => (secure ? '/' : '/auth');

/** Sign-ins a gateway starts in a minute at most: each keeps a row in the store for 10 minutes, and nobody is signed in yet. */
const signInStartsPerMinute = 300;

/**
 * Only a path inside the console may be gone back to after signing in (no open redirect). The path is read as a
 * browser reads it (a browser drops tabs and newlines, and takes \\ for /, so `/\t/evil` is `//evil`), and what is
 * kept is its path and query on the gateway's own origin, in plain ASCII.
 */
export function safeReturn(raw: string | null): string {
  if (raw === null || raw.length > 500 || !raw.startsWith('/') || /[\u0000-\u0020\u007f-\uffff\\]/.test(raw)) return '/';
  const base = 'https://console.invalid';
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    return '/';
  }
  // `/..//evil` normalizes to `//evil`: a path that starts with two slashes names another host.
  return url.origin === base && !url.pathname.startsWith('//') ? `${url.pathname}${url.search}` : '/';
}

export class ConsoleEdge {
  #starts = { minute: 0, count: 0 };

  constructor(private readonly o: ConsoleEdgeOptions) {}

  rolesOf(identity: Identity): ConsoleRoles {
    return { auditor: inGroups(identity, this.o.roles.auditors), admin: inGroups(identity, this.o.roles.admins) };
  }

  /** Whether the gateway is reached over https (the cookie is then Secure and __Host-). */
  #secure(req: IncomingMessage): boolean {
    return this.o.publicUrls.for(req).startsWith('https:');
  }

  /** Whether the request's Origin is the gateway's own (what a change from the console must show). */
  #sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    return origin !== undefined && this.o.publicUrls.origins().includes(origin);
  }

  /**
   * The person a request with a console cookie comes from, or undefined when it has none. A change (anything but
   * GET/HEAD) must also come from the console itself: the gateway's origin and the session's CSRF token.
   */
  async caller(req: IncomingMessage): Promise<ConsoleUser | undefined> {
    if (!ConsoleSessions.hasCookie(req)) return undefined;
    const user = await this.o.sessions.user(req, this.#secure(req));
    if (user === undefined) throw new HttpError(401, 'the console sign-in has expired or ended; sign in again');
    if (req.method !== 'GET' && req.method !== 'HEAD') this.#fromOwnPage(req, user);
    return user;
  }

  /** A change must come from the console's page: the gateway's Origin and the session's CSRF token. */
  #fromOwnPage(req: IncomingMessage, user: ConsoleUser): void {
    if (!this.#sameOrigin(req) || !ConsoleSessions.csrfMatches(req, user)) {
      throw new HttpError(403, 'a change from the console must come from its own page (Origin and the CSRF token)');
    }
  }

  /**
   * The routes of /auth/* and /api/console/*, and the pages: the console's area refuses a foreign Host or Origin
   * first (with the pages' security headers), a failed sign-in is a small page, and any other refusal the API's JSON.
   * What none of them serves goes on to the rest of the control plane (an unknown /api/console/x is the API's 404).
   */
  routes(hostPolicy: HostPolicy): Hono<ControlEnv> {
    const r = new Hono<ControlEnv>();
    const files = this.o.files;
    const ours = (path: string) => path.startsWith('/auth/') || path.startsWith('/api/console/') || files.serves(path);
    // The console's own refusal of a foreign Host or Origin carries the pages' security headers.
    const guard = hostGuard(hostPolicy, this.o.log, plainErrorReply, securityHeaders);
    r.use((c, next) => (ours(requestUrl(c).pathname) ? guard(c, next) : next()));
    // The browser is mid-redirect there, not in the console's script: a refusal is a page.
    const signInPage: ErrorReply = (res, err) => this.#signInFailed(res, err.message, err.status);
    const pageErrors = errorsAs(signInPage);
    r.all('/auth/login', pageErrors, (c) => this.#login(c.env.incoming, c.env.outgoing, requestUrl(c)));
    r.all('/auth/callback', pageErrors, (c) => this.#callback(c.env.incoming, c.env.outgoing, requestUrl(c)));
    r.all('/auth/dev', (c) => this.#dev(c.env.incoming, c.env.outgoing));
    r.all('/auth/sign-out', (c) => this.#signOut(c.env.incoming, c.env.outgoing));
    r.all('/api/console/sign-in', (c) => this.#signInOptions(c.env.incoming, c.env.outgoing));
    r.all('/api/console/me', (c) => this.#me(c.env.incoming, c.env.outgoing));
    r.all('/api/console/live', (c) => this.#liveEvents(c.env.incoming, c.env.outgoing));
    r.all('/api/console/connections', (c) => this.#connections(c.env.incoming, c.env.outgoing));
    r.all('*', async (c, next) => {
      const path = requestUrl(c).pathname;
      if (!files.serves(path)) return next();
      files.serve(c.env.incoming, c.env.outgoing, path);
      return sent;
    });
    return r;
  }

  async #login(req: IncomingMessage, res: ServerResponse, url: URL): Promise<Response> {
    req.resume();
    const minute = Math.floor(Date.now() / 60_000);
    if (this.#starts.minute !== minute) this.#starts = { minute, count: 0 };
    if (++this.#starts.count > signInStartsPerMinute)
      throw new SignInError(`more than ${signInStartsPerMinute} sign-ins were started in the last minute; try again in a minute`, 429);
    const issuer = url.searchParams.get('issuer') ?? this.o.issuers[0]?.issuer;
    if (issuer === undefined) throw new SignInError('no identity provider is configured for the console (identity.issuers[].clientId or .console.clientId)');
    const base = this.o.publicUrls.for(req);
    const to = await this.o.signIn.start(issuer, `${base}/auth/callback`, base, safeReturn(url.searchParams.get('return')));
    // The sign-in is bound to this browser: the callback must come back with this cookie, so nobody can hand
    // someone else a callback link that signs them in as the sender (login CSRF).
    const state = to.searchParams.get('state')!;
    const secure = this.#secure(req);
    const cookie = `${loginCookie(secure)}=${state}; Path=${loginCookiePath(secure)}; HttpOnly; SameSite=Lax; Max-Age=600${secure ? '; Secure' : ''}`;
    res.writeHead(302, { location: to.href, 'cache-control': 'no-store', 'set-cookie': cookie }).end();
    return sent;
  }

  async #callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<Response> {
    req.resume();
    const state = url.searchParams.get('state');
    const secure = this.#secure(req);
    if (url.searchParams.get('error') === null && (state === null || readCookie(req, loginCookie(secure)) !== state)) {
      throw new SignInError('this sign-in was not started in this browser (or another one started since); start again from the sign-in page', 400);
    }
    addCookie(res, `${loginCookie(secure)}=; Path=${loginCookiePath(secure)}; HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`);
    const { identity, returnTo } = await this.o.signIn.finish(url, this.o.publicUrls.all());
    await this.o.sessions.signIn(res, identity, secure);
    this.o.log.info({ subject: identity.subject, issuer: identity.issuer }, 'console sign-in');
    res.writeHead(302, { location: returnTo, 'cache-control': 'no-store' }).end();
    return sent;
  }

  /** A sign-in with the dev identity: only where the dev identity is on (loopback, unless allowed), from the console's own origin. */
  async #dev(req: IncomingMessage, res: ServerResponse): Promise<Response> {
    if (req.method !== 'POST') throw new HttpError(405, 'use POST');
    if (this.o.devIdentity === undefined) throw new HttpError(404, 'the dev identity is off (identity.issuers are configured)');
    if (!this.#sameOrigin(req)) throw new HttpError(403, 'a dev sign-in must come from the console page');
    const body = await readJson(req);
    if (!sameSecret(typeof body.key === 'string' ? body.key : '', this.o.devIdentity.consoleKey)) {
      throw new HttpError(
        403,
        'the dev sign-in needs its key: open the console link the gateway printed at start (portcullis login --dev <user> prints it too)',
      );
    }
    const user = typeof body.user === 'string' ? body.user : '';
    let token: string;
    try {
      ({ token } = await this.o.devIdentity.mint(user));
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    const { identity } = await this.o.verifier.verify(token);
    await this.o.sessions.signIn(res, identity, this.#secure(req));
    this.o.log.info({ subject: identity.subject }, 'console sign-in (dev identity)');
    replyApiJson(res, 200, { identity, roles: this.rolesOf(identity) });
    return sent;
  }

  /** Signing out always clears the cookie; a session that has ended or expired already is simply forgotten. */
  async #signOut(req: IncomingMessage, res: ServerResponse): Promise<Response> {
    req.resume();
    if (req.method !== 'POST') throw new HttpError(405, 'use POST');
    const secure = this.#secure(req);
    const user = ConsoleSessions.hasCookie(req) ? await this.o.sessions.user(req, secure) : undefined;
    if (user !== undefined) this.#fromOwnPage(req, user);
    await this.o.sessions.signOut(res, user, secure);
    if (user !== undefined) this.o.live.endSession(user.idHash);
    res.writeHead(204, { 'cache-control': 'no-store' }).end();
    return sent;
  }

  #signInOptions(req: IncomingMessage, res: ServerResponse): Response {
    req.resume();
    replyApiJson(res, 200, {
      issuers: this.o.issuers.map((i) => ({ issuer: i.issuer, label: i.label })),
      devUsers: this.o.devIdentity?.users ?? null,
    });
    return sent;
  }

  async #me(req: IncomingMessage, res: ServerResponse): Promise<Response> {
    req.resume();
    const user = await this.caller(req);
    if (user === undefined) throw new HttpError(401, 'not signed in to the console');
    replyApiJson(res, 200, {
      identity: user.identity,
      roles: this.rolesOf(user.identity),
      csrfToken: user.csrfToken,
      expiresAt: new Date(user.expiresAtUs / 1000).toISOString(),
    });
    return sent;
  }

  async #liveEvents(req: IncomingMessage, res: ServerResponse): Promise<Response> {
    const user = await this.caller(req);
    if (user === undefined) throw new HttpError(401, 'not signed in to the console');
    this.o.live.subscribe(req, res, user.identity, this.rolesOf(user.identity).auditor, user);
    return sent;
  }

  async #connections(req: IncomingMessage, res: ServerResponse): Promise<Response> {
    req.resume();
    if (req.method !== 'GET') throw new HttpError(405, 'use GET');
    const user = await this.caller(req);
    if (user === undefined) throw new HttpError(401, 'not signed in to the console');
    if (!this.rolesOf(user.identity).admin)
      throw new HttpError(403, `only members of ${this.o.roles.admins.join(', ') || 'roles.admins (none configured)'} see the connections`);
    replyApiJson(res, 200, { connections: this.o.connections(), audit: this.o.audit?.() ?? [] });
    return sent;
  }

  /** A sign-in that failed, as a small page (the browser is mid-redirect, not in the console's script). */
  #signInFailed(res: ServerResponse, message: string, status: number): void {
    this.o.log.info({ status, reason: message }, 'console sign-in failed');
    const escaped = message.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'" });
    res.end(
      `<!doctype html><html lang="en"><meta charset="utf-8"><title>Sign-in failed</title><h1>Sign-in failed</h1><p>${escaped}</p><p><a href="/sign-in">Try again</a></p></html>`,
    );
  }
}
