/** Console sign-ins as the store holds them (store/console.ts). Times are µs since the epoch. */

/**
 * A console sign-in on its way: the browser went to the IdP, and comes back with `state`. Kept in the store so that
 * any gateway instance can finish it; taken (and deleted) once.
 */
export interface ConsoleLoginRow {
  state: string;
  /** Which configured issuer (its URL). */
  issuer: string;
  /** PKCE: the verifier whose challenge went to the IdP. */
  codeVerifier: string;
  nonce: string;
  /** The console path to go back to. */
  returnTo: string;
  /** What the authorization request named, for the token request to name the same. */
  redirectUri: string;
  resource: string;
  expiresAtUs: number;
}

/**
 * A signed-in person in the console. The browser holds a random id in an HttpOnly cookie; the store keeps only its
 * SHA-256, the identity the sign-in established, and the CSRF token the console sends back on every change.
 */
export interface ConsoleSessionRow {
  /** SHA-256 (hex) of the cookie's value. */
  idHash: string;
  subject: string;
  issuer: string;
  email: string | null;
  name: string | null;
  groups: string[];
  csrfToken: string;
  createdAtUs: number;
  expiresAtUs: number;
}
