import type { IncomingMessage } from 'node:http';
import type { ConnectionConfig } from '../config/schema.js';
import { AuthError } from '../identity/auth-error.js';
import { audienceMatches, type TokenVerifier } from '../identity/verifier.js';
import type { PublicUrls } from './public-urls.js';
import type { Identity } from '../core/identity.js';

/**
 * Bearer authentication for the MCP endpoints, as the MCP authorization spec asks of a resource server: the
 * token only from the Authorization header, checked by the verifier, and meant for this connection (its
 * resource URL, RFC 8707, or an audience its issuer is trusted with). A failure becomes a 401 whose
 * WWW-Authenticate names the protected resource metadata (RFC 9728), so a client can find the IdP itself.
 */

export interface Authenticated {
  identity: Identity;
  /** Why the groups claim gave no groups although present, for the recording. */
  groupsProblem?: string;
}

/** An authenticated caller whom access policy lets use the connection, and why (for the recording). */
export interface Caller {
  identity: Identity;
  access: string;
  /** The just-in-time grant that lets the caller in, when no group does. */
  grant?: string;
  /** Where the client is, when the request came over the hop (the socket's peer is then the replica it reached). */
  remoteAddress?: string;
}

/** Takes a request and says who sent it, or throws AuthError. */
export interface Authenticator {
  /** A request to a connection: the token must be meant for it (or for the gateway). */
  authenticate(req: IncomingMessage, url: URL, connection: ConnectionConfig): Promise<Authenticated>;
  /** A request to the gateway itself (/api/access): the token must be meant for the gateway. */
  authenticateGateway(req: IncomingMessage, url: URL): Promise<Authenticated>;
}

/**
 * The resource identifiers a token for a connection may name: its Streamable HTTP and legacy SSE endpoints (what
 * an MCP client asks for), and the gateway as a whole (what `portcullis login` asks for, one sign-in for every
 * connection; access is still decided per connection by group).
 */
export function resourceUrls(base: string, connection: string): string[] {
  const name = encodeURIComponent(connection);
  return [`${base}/mcp/${name}`, `${base}/sse/${name}`, base];
}

/** Where a connection's protected resource metadata is (RFC 9728 §3.1: the well-known prefix before the path). */
export function metadataUrl(base: string, edge: 'mcp' | 'sse', connection: string): string {
  return `${base}/.well-known/oauth-protected-resource/${edge}/${encodeURIComponent(connection)}`;
}

/** A WWW-Authenticate challenge; quotes and backslashes cannot appear in its quoted strings. */
export function bearerChallenge(metadata: string, err?: AuthError, scope?: string): string {
  const q = (s: string) => `"${s.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?')}"`;
  const parts = [`realm=${q('portcullis')}`, `resource_metadata=${q(metadata)}`];
  if (err?.code !== undefined) parts.push(`error=${q(err.code)}`, `error_description=${q(err.message)}`);
  if (scope !== undefined) parts.push(`scope=${q(scope)}`);
  return `Bearer ${parts.join(', ')}`;
}

export class BearerAuthenticator implements Authenticator {
  constructor(
    private readonly verifier: TokenVerifier,
    private readonly urls: PublicUrls,
  ) {}

  /** Each connection's resource identifiers, worked out once. */
  readonly #resources = new Map<string, string[]>();

  authenticate(req: IncomingMessage, url: URL, connection: ConnectionConfig): Promise<Authenticated> {
    let resources = this.#resources.get(connection.name);
    if (resources === undefined) this.#resources.set(connection.name, (resources = this.urls.all().flatMap((base) => resourceUrls(base, connection.name))));
    return this.#authenticate(req, url, resources, 'neither the connection, the gateway,');
  }

  authenticateGateway(req: IncomingMessage, url: URL): Promise<Authenticated> {
    const bases = this.urls.all();
    return this.#authenticate(req, url, bases, `not the gateway (${bases[0]})`);
  }

  async #authenticate(req: IncomingMessage, url: URL, resources: string[], expected: string): Promise<Authenticated> {
    if (url.searchParams.has('access_token')) {
      throw new AuthError(400, 'invalid_request', 'a token is accepted only in the Authorization header, never in the URL');
    }
    const header = req.headers.authorization;
    // No credentials, or credentials of another scheme: a bare challenge (RFC 6750 §3.1).
    if (header === undefined || !/^Bearer(\s|$)/i.test(header)) {
      throw new AuthError(401, undefined, 'this connection needs a bearer token in the Authorization header');
    }
    const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    if (m === null) throw new AuthError(400, 'invalid_request', 'the Authorization header must be "Bearer <token>"');
    const token = await this.verifier.verify(m[1]!);
    if (!audienceMatches(token, resources)) {
      throw new AuthError(401, 'invalid_token', `the token is not meant for this connection: its audience is ${expected} nor one its issuer is trusted with`);
    }
    return { identity: token.identity, ...(token.groupsProblem ? { groupsProblem: token.groupsProblem } : {}) };
  }
}
