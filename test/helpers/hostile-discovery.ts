import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP server on a loopback port that serves whatever JSON a test sets per path: a hostile IdP's discovery
 * document that points its endpoints elsewhere, a hostile gateway's protected resource metadata, or a canary that
 * only counts who came (the address nobody chose). Every request is kept, so a test can assert none arrived.
 */
export interface ScriptedServer {
  url: string;
  /** host:port, as a URL's `host` has it. */
  host: string;
  /** The JSON served at each path (200); anything else is a 404. */
  routes: Map<string, unknown>;
  requests: Array<{ method: string; path: string; authorization?: string }>;
  stop(): Promise<void>;
}

export async function startScriptedServer(): Promise<ScriptedServer> {
  const routes = new Map<string, unknown>();
  const requests: ScriptedServer['requests'] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ method: req.method ?? '', path, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    req.resume();
    const body = routes.get(path);
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    routes,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An OpenID discovery document for `issuer`, its endpoints on the issuer unless `overrides` sends them elsewhere. */
export function discoveryDocument(issuer: string, overrides: Record<string, string> = {}): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: `${issuer}/jwks`,
    authorization_endpoint: `${issuer}/auth`,
    token_endpoint: `${issuer}/token`,
    device_authorization_endpoint: `${issuer}/device/auth`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    code_challenge_methods_supported: ['S256'],
    grant_types_supported: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
    ...overrides,
  };
}
