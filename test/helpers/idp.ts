import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type JWK, type JWTPayload, SignJWT } from 'jose';
import Provider from 'oidc-provider';

/**
 * A real OpenID provider (`oidc-provider`) on a loopback port, for the identity tests: discovery, JWKS,
 * token endpoint (client credentials with resource indicators, so access tokens are JWTs whose `aud` is the
 * requested resource), device flow and dynamic registration. Its signing key is the test's, so tests can
 * also craft tokens signed "by the IdP" with any claims, and counts every JWKS fetch.
 */

export interface SigningKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

export function newRsaKey(kid = `k-${randomBytes(4).toString('hex')}`): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateJwk = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256', use: 'sig' };
  const publicJwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateJwk, publicJwk };
}

/** The secret of the test IdP's console client, `portcullis-console`. */
export const consoleClientSecret = 'console-secret-for-tests';

/** Users of the test IdP and their groups (a claim in every token issued for them). */
export const idpUsers: Record<string, string[]> = { ada: ['eng', 'sre'], bob: ['eng'], eve: [] };

export interface TestIdp {
  issuer: string;
  key: SigningKey;
  /** How many times the JWKS was fetched. */
  jwksFetches: number;
  /** A JWT signed with the IdP's current key: default claims (iss, sub ada, aud, exp in 5 min) merged with `claims`. */
  /** `undefined` for a claim leaves it out (tests of tokens that lack one). */
  sign(claims: { [K in keyof JWTPayload]: JWTPayload[K] | undefined }, header?: Record<string, unknown>, key?: SigningKey): Promise<string>;
  /** A real access token from the token endpoint (client credentials), for `resource`. */
  clientCredentialsToken(resource: string): Promise<string>;
  /** Replaces the signing key: the IdP restarts on the same port publishing only the new key. */
  rotate(): Promise<SigningKey>;
  stop(): Promise<void>;
}

function providerFor(issuer: string, key: SigningKey): Provider {
  return new Provider(issuer, {
    clients: [
      {
        client_id: 'portcullis-cli',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback', 'http://127.0.0.1/auth/callback'],
      },
      // The web console's client: confidential, its redirect on a loopback gateway (any port, as RFC 8252 has it).
      {
        client_id: 'portcullis-console',
        client_secret: consoleClientSecret,
        application_type: 'native',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/auth/callback'],
      },
      { client_id: 'service', client_secret: 'service-secret-for-tests', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    ],
    jwks: { keys: [key.privateJwk] },
    cookies: { keys: ['portcullis-test-idp-cookie-key'] },
    scopes: ['openid', 'profile', 'email', 'offline_access', 'mcp'],
    claims: { openid: ['sub'], email: ['email'], profile: ['name'] },
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: `${id}@example.test`, name: id }) }),
    extraTokenClaims: (_ctx, token) => {
      const subject = (token as { accountId?: string }).accountId;
      return { groups: subject === undefined ? ['services'] : (idpUsers[subject] ?? []) };
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({
          scope: 'mcp openid',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 3600,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });
}

export async function startTestIdp(): Promise<TestIdp> {
  let key = newRsaKey();
  let server: Server;
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const provider = providerFor(issuer, key);
      provider.use(async (ctx, next) => {
        if (ctx.path === '/jwks') idp.jwksFetches++;
        await next();
      });
      const s = createServer(provider.callback());
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve(s));
    });
  // The issuer must be known before the provider is made: take a free port first.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const issuer = `http://127.0.0.1:${port}`;

  const idp: TestIdp = {
    issuer,
    key,
    jwksFetches: 0,
    sign: async (claims, header = {}, signWith = key) => {
      const now = Math.floor(Date.now() / 1000);
      // A claim given as undefined is left out.
      const merged: Record<string, unknown> = { iss: issuer, sub: 'ada', aud: 'portcullis', iat: now, exp: now + 300, groups: idpUsers.ada, ...claims };
      const payload: JWTPayload = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined));
      return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: signWith.kid, ...header }).sign(signWith.privateJwk);
    },
    clientCredentialsToken: async (resource) => {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from('service:service-secret-for-tests').toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'mcp' }),
      });
      const body = (await res.json()) as { access_token?: string };
      if (!res.ok || body.access_token === undefined) throw new Error(`token endpoint: HTTP ${res.status} ${JSON.stringify(body)}`);
      return body.access_token;
    },
    rotate: async () => {
      key = newRsaKey();
      idp.key = key;
      await new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      });
      server = await listen(port);
      return key;
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  server = await listen(port);
  return idp;
}

/** A tiny cookie jar: enough for oidc-provider's interaction cookies in one sequential sign-in. */
class CookieJar {
  readonly #cookies = new Map<string, string>();

  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      this.#cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
  }

  get header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

function decodeHtml(s: string): string {
  return s
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#x2F;/g, '/')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}

/**
 * What a person does in the browser at the IdP, done with fetch: follows redirects, and on each page with a
 * form (oidc-provider's development login, consent and device-code pages) fills in the user and submits. Ends
 * when the IdP redirects somewhere else (the CLI's loopback callback: that URL is returned, not visited) or shows
 * a page with no form (the device flow's "done" page: undefined is returned).
 */
export async function signInAsUser(start: string, user: string, issuer: string): Promise<URL | undefined> {
  const jar = new CookieJar();
  let url = new URL(start);
  let init: RequestInit = {};
  for (let step = 0; step < 20; step++) {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: jar.header } });
    jar.take(res);
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      const next = new URL(res.headers.get('location')!, url);
      if (next.origin !== new URL(issuer).origin) return next;
      url = next;
      init = {};
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`the IdP answered HTTP ${res.status} at ${url.pathname}: ${html.slice(0, 300)}`);
    const form = /<form([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
    const action = form === null || !/method="post"/i.test(form[1]!) ? undefined : /action="([^"]+)"/.exec(form[1]!)?.[1];
    if (form === null || action === undefined) return undefined;
    const fields = new URLSearchParams();
    for (const input of form[2]!.matchAll(/<input[^>]*>/gi)) {
      const name = /name="([^"]+)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
      if (name === undefined) continue;
      if (name === 'login') fields.set(name, user);
      else if (name === 'password') fields.set(name, 'any password will do');
      else if (/type="(hidden|text)"/.test(input[0]) || !/type=/.test(input[0])) fields.set(name, decodeHtml(value));
    }
    for (const button of form[2]!.matchAll(/<button[^>]*name="([^"]+)"[^>]*value="([^"]*)"[^>]*>/gi)) {
      if (!fields.has(button[1]!)) fields.set(button[1]!, decodeHtml(button[2]!));
    }
    url = new URL(decodeHtml(action), url);
    init = { method: 'POST', body: fields, headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
  throw new Error('the sign-in did not finish in 20 steps');
}
