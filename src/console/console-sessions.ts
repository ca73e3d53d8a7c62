import { randomBytes } from 'node:crypto';
import { sameSecret, secretHash } from '../crypto/secrets.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../core/identity.js';
import { nowUs } from '../recording/time.js';
import type { Store } from '../store/store.js';
import type { ConsoleSessionRow } from '../store/console-types.js';

/**
 * Who is signed in to the console. A sign-in (OIDC or the dev identity) ends here: the browser gets a random id in
 * an HttpOnly, SameSite=Lax cookie (Secure, and `__Host-` prefixed, when the gateway is reached over https), and
 * the store keeps only the id's SHA-256 with the identity and a CSRF token. Every change the console asks for
 * (POST) must carry that token in a header and come from the gateway's own origin, so another site cannot make a
 * signed-in browser act.
 */

export const csrfHeader = 'x-portcullis-csrf';

export interface ConsoleUser {
  identity: Identity;
  csrfToken: string;
  expiresAtUs: number;
  idHash: string;
}

/** The cookie's name: with https, `__Host-` binds it to this origin (Secure, Path=/, no Domain). */
function cookieName(secure: boolean): string {
  return secure ? '__Host-portcullis-console' : 'portcullis-console';
}

export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/** Adds a Set-Cookie header to those already on `res` (a sign-in sets one and clears another). */
export function addCookie(res: ServerResponse, cookie: string): void {
  const prior = res.getHeader('set-cookie');
  res.setHeader('set-cookie', [...(prior === undefined ? [] : Array.isArray(prior) ? prior : [String(prior)]), cookie]);
}

export class ConsoleSessions {
  constructor(
    private readonly store: Store,
    private readonly lifetimeMs: number,
  ) {}

  /** Starts a console session for `identity`: sets the cookie on `res`. */
  async signIn(res: ServerResponse, identity: Identity, secure: boolean): Promise<void> {
    const id = randomBytes(32).toString('base64url');
    const created = nowUs();
    const row: ConsoleSessionRow = {
      idHash: secretHash(id),
      subject: identity.subject,
      issuer: identity.issuer,
      email: identity.email ?? null,
      name: identity.name ?? null,
      groups: identity.groups,
      csrfToken: randomBytes(32).toString('base64url'),
      createdAtUs: created,
      expiresAtUs: created + this.lifetimeMs * 1000,
    };
    await this.store.putConsoleSession(row);
    const attributes = ['Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${Math.floor(this.lifetimeMs / 1000)}`, ...(secure ? ['Secure'] : [])];
    addCookie(res, `${cookieName(secure)}=${id}; ${attributes.join('; ')}`);
  }

  /** The signed-in person a request's cookie names, or undefined (no cookie, unknown, or expired). */
  async user(req: IncomingMessage, secure: boolean): Promise<ConsoleUser | undefined> {
    const id = readCookie(req, cookieName(secure));
    if (id === undefined || !/^[A-Za-z0-9_-]{20,100}$/.test(id)) return undefined;
    const row = await this.store.getConsoleSession(secretHash(id), nowUs());
    if (row === undefined) return undefined;
    const identity: Identity = {
      subject: row.subject,
      issuer: row.issuer,
      groups: row.groups,
      ...(row.email ? { email: row.email } : {}),
      ...(row.name ? { name: row.name } : {}),
    };
    return { identity, csrfToken: row.csrfToken, expiresAtUs: row.expiresAtUs, idHash: row.idHash };
  }

  /** Whether a request carries the session's CSRF token. */
  static csrfMatches(req: IncomingMessage, user: ConsoleUser): boolean {
    return sameSecret(String(req.headers[csrfHeader] ?? ''), user.csrfToken);
  }

  /** Ends the session (when there still is one), and clears the cookie. */
  async signOut(res: ServerResponse, user: ConsoleUser | undefined, secure: boolean): Promise<void> {
    if (user !== undefined) await this.store.deleteConsoleSession(user.idHash);
    addCookie(res, `${cookieName(secure)}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`);
  }

  /** Whether a request carries a console cookie at all (signed in or not). */
  static hasCookie(req: IncomingMessage): boolean {
    return readCookie(req, cookieName(true)) !== undefined || readCookie(req, cookieName(false)) !== undefined;
  }
}
