import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { isLoopbackHttpUrl } from '../net/loopback.js';
import { assertPublicHost, checkDiscoveredEndpoints, discoveredEndpoints, EndpointError } from './endpoint-policy.js';
import type { CachedToken } from './token-cache.js';

/**
 * Signing in to an OIDC provider from the CLI, with openid-client: the authorization-code flow with PKCE on a
 * loopback redirect (RFC 8252: the browser comes back to a port the CLI listens on for this one sign-in), or the
 * device flow for machines without a browser. The token asked for is meant for the gateway (RFC 8707 `resource`:
 * the gateway's base URL), and a refresh token is kept when the IdP gives one.
 */

export interface LoginTarget {
  issuer: string;
  clientId: string;
  scopes: string[];
  /** The gateway's base URL, asked for as the token's resource (audience). */
  resource: string;
  /** Hosts besides the issuer's own its discovery document may name as endpoints. */
  endpointHosts: readonly string[];
  /**
   * Whether the user named the issuer and its endpoint hosts (--issuer, --config, or a sign-in they already made);
   * when the gateway named them, endpoint hosts other than the issuer's must be public addresses too.
   */
  named: boolean;
}

export class LoginError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoginError';
  }
}

async function configure(target: LoginTarget): Promise<oidc.Configuration> {
  const issuer = new URL(target.issuer);
  let config: oidc.Configuration;
  try {
    // Plain http only for an IdP on this machine (a local test or dev IdP); anything else must be https.
    config = await oidc.discovery(
      issuer,
      target.clientId,
      undefined,
      oidc.None(),
      isLoopbackHttpUrl(issuer) ? { execute: [oidc.allowInsecureRequests] } : undefined,
    );
  } catch (err) {
    throw new LoginError(`the identity provider ${target.issuer} could not be discovered: ${(err as Error).message}`);
  }
  // Nothing is sent to an endpoint before it is known to be the IdP's (endpoint-policy.ts).
  const metadata = config.serverMetadata() as unknown as Record<string, unknown>;
  try {
    checkDiscoveredEndpoints(metadata, target, false);
    if (!target.named) {
      for (const name of discoveredEndpoints) {
        const value = metadata[name];
        if (typeof value === 'string' && new URL(value).host !== issuer.host) await assertPublicHost(new URL(value).hostname, `its ${name}`);
      }
    }
  } catch (err) {
    if (err instanceof EndpointError) throw new LoginError(`the identity provider ${target.issuer} is not used: ${err.message}`);
    throw err;
  }
  return config;
}

function toCached(
  target: LoginTarget,
  config: oidc.Configuration,
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
  previous?: CachedToken,
): CachedToken {
  const claims = tokens.claims();
  const subject = claims?.sub ?? previous?.subject ?? 'unknown';
  const expiresIn = tokens.expiresIn();
  const tokenEndpoint = config.serverMetadata().token_endpoint;
  return {
    accessToken: tokens.access_token,
    expiresAtMs: Date.now() + (expiresIn ?? 300) * 1000,
    ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : previous?.refreshToken ? { refreshToken: previous.refreshToken } : {}),
    issuer: target.issuer,
    subject,
    clientId: target.clientId,
    ...(tokenEndpoint ? { tokenEndpoint } : {}),
    resource: target.resource,
    scopes: target.scopes,
    ...(target.endpointHosts.length > 0 ? { endpointHosts: [...target.endpointHosts] } : {}),
  };
}

/** Waits for the browser's return to http://127.0.0.1:<port>/callback; answers it with a page saying what happened. */
function loopbackReceiver(): Promise<{ redirectUri: string; result: Promise<URL>; close(): void }> {
  return new Promise((resolve, reject) => {
    let deliver!: (url: URL) => void;
    const result = new Promise<URL>((r) => (deliver = r));
    const server: Server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      if (url.pathname !== '/callback') {
        res.writeHead(404).end();
        return;
      }
      const failed = url.searchParams.has('error');
      res.writeHead(failed ? 400 : 200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(
        failed
          ? '<!doctype html><title>Portcullis</title><p>Sign-in failed; see the terminal.</p>'
          : '<!doctype html><title>Portcullis</title><p>Signed in to Portcullis. You can close this window.</p>',
      );
      deliver(url);
    });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        redirectUri: `http://127.0.0.1:${port}/callback`,
        result,
        close: () => {
          server.closeAllConnections();
          server.close();
        },
      });
    });
  });
}

/**
 * The authorization-code flow with PKCE: `open` is given the URL to visit (the CLI prints it and may open a
 * browser); resolves once the browser comes back with a code and it is exchanged, or rejects after `timeoutMs`.
 */
export async function authorizationCodeLogin(target: LoginTarget, open: (url: URL) => void, timeoutMs = 300_000): Promise<CachedToken> {
  const config = await configure(target);
  const receiver = await loopbackReceiver();
  try {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: receiver.redirectUri,
      scope: target.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      resource: target.resource,
      // OpenID Connect Core §11: a refresh token for offline access is granted only after an explicit consent.
      ...(target.scopes.includes('offline_access') ? { prompt: 'consent' } : {}),
    });
    open(url);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LoginError(`no sign-in came back within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    });
    const callback = await Promise.race([receiver.result, timeout]).finally(() => clearTimeout(timer));
    if (callback.searchParams.has('error')) {
      throw new LoginError(
        `the identity provider refused the sign-in: ${callback.searchParams.get('error')} ${callback.searchParams.get('error_description') ?? ''}`.trim(),
      );
    }
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: target.resource });
      return toCached(target, config, tokens);
    } catch (err) {
      throw new LoginError(`the code could not be exchanged for a token: ${(err as Error).message}`);
    }
  } finally {
    receiver.close();
  }
}

/** The device flow: `show` is given the code and where to enter it; resolves once the user has approved. */
export async function deviceCodeLogin(target: LoginTarget, show: (verificationUri: string, userCode: string, complete?: string) => void): Promise<CachedToken> {
  const config = await configure(target);
  if (config.serverMetadata().device_authorization_endpoint === undefined) {
    throw new LoginError(`${target.issuer} does not offer the device flow (no device_authorization_endpoint); sign in without --device`);
  }
  const started = await oidc.initiateDeviceAuthorization(config, { scope: target.scopes.join(' '), resource: target.resource });
  show(started.verification_uri, started.user_code, started.verification_uri_complete);
  try {
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, started, { resource: target.resource });
    return toCached(target, config, tokens);
  } catch (err) {
    throw new LoginError(`the device sign-in did not complete: ${(err as Error).message}`);
  }
}

/** A fresh access token from the cached refresh token; throws LoginError when the IdP says no (sign in again). */
export async function refreshToken(cached: CachedToken): Promise<CachedToken> {
  if (cached.refreshToken === undefined || cached.clientId === undefined || cached.resource === undefined) {
    throw new LoginError('the cached token cannot be refreshed (no refresh token)');
  }
  // The issuer and its endpoint hosts were checked when the user signed in.
  const target: LoginTarget = {
    issuer: cached.issuer,
    clientId: cached.clientId,
    scopes: cached.scopes ?? [],
    resource: cached.resource,
    endpointHosts: cached.endpointHosts ?? [],
    named: true,
  };
  const config = await configure(target);
  try {
    const tokens = await oidc.refreshTokenGrant(config, cached.refreshToken, { resource: target.resource });
    return toCached(target, config, tokens, cached);
  } catch (err) {
    throw new LoginError(`the token could not be refreshed: ${(err as Error).message}`);
  }
}
