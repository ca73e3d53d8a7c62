import * as oidc from 'openid-client';
import type { IssuerConfig } from '../config/schema.js';
import type { Identity } from '../core/identity.js';
import { isLoopbackHttpUrl } from '../net/loopback.js';
import { HttpError } from '../core/http-error.js';
import { nowUs } from '../recording/time.js';
import type { Store } from '../store/store.js';
import { audienceMatches, type TokenVerifier } from '../identity/verifier.js';
import { checkDiscoveredEndpoints } from '../identity/endpoint-policy.js';

/**
 * The console's OIDC sign-in: the authorization-code flow with PKCE (and state and nonce), the gateway being the
 * OAuth client. The browser is sent to the IdP and back to /auth/callback; what is in flight between the two is
 * kept in the store, so any instance of the gateway can finish it, once. The identity comes from a token the
 * gateway verifies as it verifies MCP clients' tokens (same issuer config, same groups claim and role mapping):
 * the access token when it is a JWT meant for the gateway, else the ID token.
 */

/** A sign-in that cannot go on, with the status of the page that says why. */
export class SignInError extends HttpError {
  constructor(message: string, status = 400) {
    super(status, message);
  }
}

/** An issuer the console can sign in with: it has a client for the console. */
export interface ConsoleIssuer {
  issuer: string;
  label: string;
  clientId: string;
  clientSecret?: string;
  scopes: string[];
  /** Hosts besides the issuer's own its discovery document may name (identity.issuers[].endpointHosts). */
  endpointHosts: readonly string[];
}

export function consoleIssuers(issuers: readonly IssuerConfig[]): ConsoleIssuer[] {
  return issuers.flatMap((i) => {
    const clientId = i.console?.clientId ?? i.clientId;
    if (clientId === undefined) return [];
    const secret = i.console?.clientSecret?.reveal();
    return [
      {
        issuer: i.issuer,
        label: i.console?.label ?? new URL(i.issuer).host,
        clientId,
        ...(secret ? { clientSecret: secret } : {}),
        scopes: i.scopes.filter((s) => s !== 'offline_access'),
        endpointHosts: i.endpointHosts,
      },
    ];
  });
}

/** Ten minutes to come back from the IdP. */
const loginTtlUs = 10 * 60 * 1_000_000;

export class OidcSignIn {
  readonly #configs = new Map<string, Promise<oidc.Configuration>>();

  constructor(
    private readonly issuers: readonly ConsoleIssuer[],
    private readonly store: Store,
    private readonly verifier: TokenVerifier,
  ) {}

  /** Discovery, once per issuer (a failure is tried again next time). */
  #config(i: ConsoleIssuer): Promise<oidc.Configuration> {
    let config = this.#configs.get(i.issuer);
    if (config === undefined) {
      const url = new URL(i.issuer);
      const auth = i.clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(i.clientSecret);
      // Plain http only for an IdP on this machine (a local test or dev IdP).
      // Its endpoints are checked before any is used: the client secret goes to the token endpoint.
      config = oidc.discovery(url, i.clientId, undefined, auth, isLoopbackHttpUrl(url) ? { execute: [oidc.allowInsecureRequests] } : undefined).then((c) => {
        checkDiscoveredEndpoints(c.serverMetadata() as unknown as Record<string, unknown>, { issuer: i.issuer, endpointHosts: i.endpointHosts }, false);
        return c;
      });
      config.catch(() => this.#configs.delete(i.issuer));
      this.#configs.set(i.issuer, config);
    }
    return config;
  }

  #find(issuer: string): ConsoleIssuer {
    const i = this.issuers.find((x) => x.issuer === issuer);
    if (i === undefined) throw new SignInError(`${JSON.stringify(issuer.slice(0, 200))} is not an issuer the console signs in with`);
    return i;
  }

  /** Discovery, as a SignInError the person is shown when the IdP cannot be reached. */
  async #reach(i: ConsoleIssuer): Promise<oidc.Configuration> {
    try {
      return await this.#config(i);
    } catch (err) {
      throw new SignInError(`the identity provider ${i.issuer} could not be reached: ${(err as Error).message}`, 502);
    }
  }

  /**
   * Where to send the browser: the IdP's authorization endpoint, for a sign-in that returns to `redirectUri` with a
   * token for `resource`. Both are kept with the sign-in, so the token request names exactly the same.
   */
  async start(issuer: string, redirectUri: string, resource: string, returnTo: string): Promise<URL> {
    const i = this.#find(issuer);
    const config = await this.#reach(i);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    await this.store.putConsoleLogin({ state, issuer: i.issuer, codeVerifier, nonce, returnTo, redirectUri, resource, expiresAtUs: nowUs() + loginTtlUs });
    return oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: i.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      resource,
    });
  }

  /** The browser is back: the identity it signed in as, and where in the console it was going. */
  async finish(callback: URL, resources: readonly string[]): Promise<{ identity: Identity; returnTo: string }> {
    const error = callback.searchParams.get('error');
    if (error !== null)
      throw new SignInError(
        `the identity provider refused the sign-in: ${error}${callback.searchParams.has('error_description') ? `: ${callback.searchParams.get('error_description')!.slice(0, 300)}` : ''}`,
        401,
      );
    const state = callback.searchParams.get('state');
    const login = state === null ? undefined : await this.store.takeConsoleLogin(state, nowUs());
    if (login === undefined) throw new SignInError('this sign-in is unknown, used already, or older than 10 minutes; start again', 400);
    const i = this.#find(login.issuer);
    const config = await this.#reach(i);
    // The redirect URI and resource sent to the token endpoint must be those of the authorization request, whatever Host came back.
    const current = new URL(login.redirectUri);
    current.search = callback.search;
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await oidc.authorizationCodeGrant(
        config,
        current,
        { pkceCodeVerifier: login.codeVerifier, expectedState: state!, expectedNonce: login.nonce },
        { resource: login.resource },
      );
    } catch (err) {
      throw new SignInError(`the sign-in could not be completed: ${(err as Error).message}`, 401);
    }
    return { identity: await this.#identity(tokens, i, resources), returnTo: login.returnTo };
  }

  async #identity(tokens: oidc.TokenEndpointResponse, i: ConsoleIssuer, resources: readonly string[]): Promise<Identity> {
    try {
      const access = await this.verifier.verify(tokens.access_token);
      if (audienceMatches(access, resources)) return access.identity;
    } catch {
      // Not a JWT meant for the gateway (many IdPs issue opaque access tokens): the ID token says who signed in.
    }
    if (tokens.id_token === undefined) throw new SignInError('the identity provider returned neither an access token for the gateway nor an ID token', 401);
    try {
      const id = await this.verifier.verify(tokens.id_token);
      if (id.audiences.includes(i.clientId)) return id.identity;
    } catch (err) {
      throw new SignInError(`the ID token could not be verified: ${(err as Error).message}`, 401);
    }
    throw new SignInError(`the ID token is not meant for the console's client ${i.clientId}`, 401);
  }
}
