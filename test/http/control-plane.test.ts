import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { AccessRequestsApi } from '../../src/api/access-requests.js';
import { ReviewsApi } from '../../src/api/reviews.js';
import type { Identity } from '../../src/core/identity.js';
import type { Authenticated, Authenticator } from '../../src/edge/authenticate.js';
import { loopbackHosts } from '../../src/edge/origin.js';
import { accessRequestsModule } from '../../src/features/access-requests.js';
import { reviewsModule } from '../../src/features/reviews.js';
import { controlPlane, type ControlPlaneOptions } from '../../src/http/control-plane.js';
import { AccessRequestError, type AccessRequests } from '../../src/identity/access-requests.js';
import { AuthError } from '../../src/identity/auth-error.js';
import type { GatewayMetrics } from '../../src/metrics/gateway-metrics.js';
import { ReviewError, type Reviews } from '../../src/reviews/reviews.js';
import type { SessionRegistry } from '../../src/session/registry.js';

/**
 * The control plane alone (no gateway, no store): its routes, middleware and the one place where an error becomes a
 * reply, over real HTTP. The services behind the APIs are small stand-ins that answer or throw what a test needs.
 */

const alice: Identity = { subject: 'alice', issuer: 'https://idp.test', groups: [] };
const localKey = 'local-key-for-the-control-plane-test';

/** Knows one bearer token ("alice"); "boom" makes it fail as a bug would (not an HttpError). */
const authenticator: Authenticator = {
  authenticate: () => Promise.reject(new Error('not used by the control plane')),
  authenticateGateway: async (req: IncomingMessage): Promise<Authenticated> => {
    const auth = req.headers.authorization;
    if (auth === 'Bearer alice') return { identity: alice };
    if (auth === 'Bearer boom') throw new Error('a bug in the authenticator');
    throw new AuthError(401, 'invalid_token', 'the token is not valid');
  },
};

interface Harness {
  url: string;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** The control plane with the reviews and access-request APIs as their feature modules mount them (absent: off). */
async function start(parts: Partial<ControlPlaneOptions> & { reviews?: ReviewsApi; accessRequests?: AccessRequestsApi } = {}): Promise<Harness> {
  const { reviews, accessRequests, ...rest } = parts;
  const apis = [
    { mount: accessRequestsModule.api!, routes: accessRequests?.routes() },
    { mount: reviewsModule.api!, routes: reviews?.routes() },
  ];
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  let base = '';
  const listener = controlPlane({
    registry: { size: 0, connection: () => undefined } as unknown as SessionRegistry,
    hostPolicy: { allowedHosts: loopbackHosts, allowedOrigins: [] },
    log,
    api: { keys: { localKey } },
    ready: () => undefined,
    authenticator,
    metrics: { scrape: async () => ({ contentType: 'text/plain', body: 'up 1\n' }) } as unknown as GatewayMetrics,
    roles: { auditors: [], admins: [] },
    issuers: [],
    publicUrls: { for: () => base, origins: () => [base], all: () => [base] } as unknown as ControlPlaneOptions['publicUrls'],
    apis,
    ...rest,
  });
  const server: Server = createServer((req, res) => void listener(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: base, logs, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function call(h: Harness, path: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: unknown }> {
  const res = await fetch(`${h.url}${path}`, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

const reviewsThatFind = (): Reviews => ({ list: async () => [] }) as unknown as Reviews;

test('an HttpError thrown by a route is replied in one form: its status, { error }, never cached, with its headers', async () => {
  const h = await start({ reviews: new ReviewsApi(reviewsThatFind()) });
  try {
    const wrongMethod = await call(h, '/api/reviews', { method: 'DELETE', headers: { authorization: 'Bearer alice' } });
    assert.equal(wrongMethod.status, 405);
    assert.deepEqual(wrongMethod.body, { error: 'use GET' });
    assert.equal(wrongMethod.headers.get('cache-control'), 'no-store');
    assert.equal(wrongMethod.headers.get('content-type'), 'application/json');

    const badStatus = await call(h, '/api/reviews?status=nope', { headers: { authorization: 'Bearer alice' } });
    assert.equal(badStatus.status, 400);
    assert.match((badStatus.body as { error: string }).error, /^status expects one of pending/);

    const listed = await call(h, '/api/reviews/', { headers: { authorization: 'Bearer alice' } });
    assert.deepEqual([listed.status, listed.body], [200, { reviews: [] }], 'a trailing slash is the list, as before');
  } finally {
    await h.close();
  }
});

test('path parameters come from the router, decoded strictly: a malformed %-escape is a 400, an unknown path a 404', async () => {
  const seen: string[] = [];
  const reviews = { get: async (id: string) => (seen.push(id), Promise.reject(new ReviewError(404, `no review ${JSON.stringify(id)}`))) } as unknown as Reviews;
  const h = await start({ reviews: new ReviewsApi(reviews) });
  try {
    const auth = { authorization: 'Bearer alice' };
    assert.deepEqual((await call(h, '/api/reviews/rv%2F1', { headers: auth })).body, { error: 'no review "rv/1"' });
    assert.deepEqual(seen, ['rv/1'], 'an escaped slash stays inside the one parameter');
    const malformed = await call(h, '/api/reviews/rv%ZZ', { headers: auth });
    assert.deepEqual([malformed.status, malformed.body], [400, { error: 'the path has a malformed %-escape' }]);
    const unknown = await call(h, '/api/reviews/rv_1/ponder', { method: 'POST', headers: auth });
    assert.deepEqual([unknown.status, unknown.body], [404, { error: 'no API at /api/reviews/rv_1/ponder' }]);
    const get = await call(h, '/api/reviews/rv_1/approve', { headers: auth });
    assert.deepEqual([get.status, get.body], [405, { error: 'use POST' }]);
  } finally {
    await h.close();
  }
});

test('authentication runs before any route: no credential, a bad token, and the challenge that says where to sign in', async () => {
  const h = await start({ reviews: new ReviewsApi(reviewsThatFind()) });
  try {
    const bad = await call(h, '/api/reviews/rv%ZZ', { headers: { authorization: 'Bearer forged' } });
    assert.equal(bad.status, 401, 'refused before the path is even read');
    assert.match(bad.headers.get('www-authenticate') ?? '', /^Bearer .*resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource"/);
    assert.ok(h.logs.some((l) => l.msg === 'API request not authenticated' && l.status === 401));

    const sessions = await call(h, '/api/sessions');
    assert.equal(sessions.status, 401);
    assert.equal(sessions.headers.get('www-authenticate'), 'Bearer realm="portcullis-api"');
    const off = await call(h, '/api/sessions', { headers: { authorization: `Bearer ${localKey}` } });
    assert.deepEqual(
      [off.status, off.body, off.headers.get('retry-after')],
      [503, { error: 'recording is off (recording.mode: off): there are no recordings to serve' }, null],
    );
    const nowhere = await call(h, '/api/nowhere', { headers: { authorization: `Bearer ${localKey}` } });
    assert.deepEqual([nowhere.status, nowhere.body], [404, { error: 'no API at /api/nowhere; see /api/sessions' }]);
  } finally {
    await h.close();
  }
});

test("a person API's store that cannot write now says when to retry; an API without a store says why, without a retry hint", async () => {
  const requests = { list: () => Promise.reject(new AccessRequestError(503, 'the store is unavailable')) } as unknown as AccessRequests;
  const h = await start({ accessRequests: new AccessRequestsApi(requests) });
  try {
    const unavailable = await call(h, '/api/access', { headers: { authorization: 'Bearer alice' } });
    assert.deepEqual([unavailable.status, unavailable.headers.get('retry-after')], [503, '10']);
    const noStore = await call(h, '/api/reviews/rv_1', { headers: { authorization: 'Bearer alice' } });
    assert.deepEqual(
      [noStore.status, noStore.body, noStore.headers.get('retry-after')],
      [503, { error: 'reviews need the recording store (recording.mode is off)' }, null],
    );
  } finally {
    await h.close();
  }
});

test('anything but an HttpError is a bug: logged once as "request failed", replied 500 as a JSON-RPC error', async () => {
  const h = await start({ reviews: new ReviewsApi(reviewsThatFind()) });
  try {
    const res = await call(h, '/api/reviews', { headers: { authorization: 'Bearer boom' } });
    assert.equal(res.status, 500);
    assert.deepEqual(res.body, { jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Internal error in the gateway' } });
    const failed = h.logs.filter((l) => l.msg === 'request failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.path, '/api/reviews');
  } finally {
    await h.close();
  }
});

test('public metadata and machine-only metrics keep their own forms; an unknown path is the MCP 404', async () => {
  const h = await start();
  try {
    const meta = await call(h, '/.well-known/oauth-protected-resource', { headers: { origin: 'https://anywhere.example' } });
    assert.equal(meta.status, 200);
    assert.equal(meta.headers.get('access-control-allow-origin'), '*');
    const preflight = await fetch(`${h.url}/.well-known/oauth-protected-resource/mcp/x`, { method: 'OPTIONS' });
    assert.equal(preflight.status, 204);
    const post = await call(h, '/.well-known/oauth-protected-resource', { method: 'POST' });
    assert.deepEqual([post.status, post.body, post.headers.get('allow'), post.headers.get('cache-control')], [405, { error: 'use GET' }, 'GET', null]);
    const none = await call(h, '/.well-known/oauth-protected-resource/mcp/nope');
    assert.deepEqual([none.status, none.body], [404, { error: 'there is no connection named "nope"' }]);

    const anonymous = await call(h, '/metrics');
    assert.deepEqual([anonymous.status, anonymous.headers.get('www-authenticate')], [401, 'Bearer realm="portcullis-api"']);
    const scrape = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${localKey}` } });
    assert.deepEqual([scrape.status, await scrape.text()], [200, 'up 1\n']);

    const lost = await call(h, '/nowhere');
    assert.equal(lost.status, 404);
    assert.deepEqual(lost.body, {
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: 'Not found: /nowhere; MCP endpoints are /mcp/<connection> and /sse/<connection>' },
    });
    assert.deepEqual((await call(h, '/healthz')).body, { status: 'ok' });
  } finally {
    await h.close();
  }
});

/** One raw HTTP/1.x exchange (what a client library would refuse to send), its status line and body. */
async function rawRequest(h: Harness, text: string): Promise<{ statusLine: string; body: string }> {
  const { port } = new URL(h.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.end(text);
  let reply = '';
  for await (const chunk of socket) reply += (chunk as Buffer).toString();
  return { statusLine: reply.split('\r\n')[0]!, body: reply.slice(reply.indexOf('\r\n\r\n') + 4) };
}

test('a health check without a Host header is answered; a Host that is no host name is a 400 before any route', async () => {
  const h = await start();
  try {
    const bare = await rawRequest(h, 'GET /healthz HTTP/1.0\r\n\r\n');
    assert.equal(bare.statusLine, 'HTTP/1.1 200 OK');
    assert.deepEqual(JSON.parse(bare.body), { status: 'ok' });
    const garbage = await rawRequest(h, 'GET /api/sessions HTTP/1.1\r\nHost: a b/c\r\nConnection: close\r\n\r\n');
    assert.equal(garbage.statusLine, 'HTTP/1.1 400 Bad Request');
    assert.match((JSON.parse(garbage.body) as { error: string }).error, /^Bad Request: /);
  } finally {
    await h.close();
  }
});
