import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { untrustedPath, untrustedPrefix } from '../../src/core/untrusted-text.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders } from '../helpers/raw-http.js';

/**
 * A client that puts its token in the URL path instead of the Authorization header: the gateway answers 404 as for
 * any unknown name, but neither its log nor its answer holds more than a short prefix of it (the JWT's header), never
 * its payload or signature.
 */

describe('a token in the URL path', () => {
  let gw: TestGateway;
  let jwt: string;
  let secretParts: string[];

  before(async () => {
    gw = await startTestGateway({ connections: { everything: { stdio: everythingStdio() } } });
    jwt = gw.token;
    const [, payload, signature] = jwt.split('.');
    // Any 12 characters of the payload or the signature would be a leak (the header's prefix is allowed).
    secretParts = [payload!.slice(0, 12), payload!.slice(-12), signature!.slice(0, 12), signature!.slice(-12)];
  });
  after(() => gw?.stop());

  const leaks = (text: string) => secretParts.filter((p) => text.includes(p));

  it('as a connection name: 404, and only a short prefix in the log and the answer', async () => {
    const before = gw.log.lines.length;
    for (const url of [gw.mcp(jwt), gw.sse(jwt), new URL(`/mcp/${jwt}%`, gw.url)]) {
      const res = await fetch(url, { method: 'POST', headers: { ...mcpHeaders, ...gw.auth }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
      assert.ok(res.status === 404 || res.status === 400, `status ${res.status}`);
      const text = await res.text();
      assert.deepEqual(leaks(text), [], `the answer reflects the token: ${text}`);
    }
    const logged = gw.log.lines.slice(before);
    const unknown = logged.find((l) => l.msg === 'unknown connection');
    assert.ok(unknown, 'the unknown name is logged');
    assert.equal(unknown.connection, `${jwt.slice(0, 16)}…(${jwt.length} chars)`);
    assert.deepEqual(leaks(JSON.stringify(logged)), [], 'the log holds no more than the prefix');
  });

  it('anywhere else in the path: the 404s of the router, the metadata and the API reflect no token', async () => {
    const before = gw.log.lines.length;
    const paths: Array<[string, Record<string, string>]> = [
      [`/${jwt}`, {}],
      [`/nothing/${jwt}/more`, {}],
      [`/.well-known/oauth-protected-resource/mcp/${jwt}`, {}],
      [`/api/${jwt}`, gw.apiAuth],
      [`/api/sessions/${jwt}`, {}],
      [`/api/sessions/${jwt}`, gw.apiAuth],
      [`/api/sessions/x/${jwt}/y`, gw.apiAuth],
      [`/api/reviews/${jwt}/x/y`, gw.auth],
      [`/api/reviews/${jwt}`, { authorization: 'Bearer not-a-token' }],
    ];
    for (const [path, headers] of paths) {
      const res = await fetch(new URL(path, gw.url), { headers });
      assert.ok(res.status === 404 || res.status === 401, `${path}: status ${res.status}`);
      const text = await res.text();
      assert.deepEqual(leaks(text), [], `${path}: the answer reflects the token: ${text}`);
    }
    assert.deepEqual(leaks(JSON.stringify(gw.log.lines.slice(before))), []);
  });

  it('a malformed %-escape in a session id: 400, not an internal error', async () => {
    const res = await fetch(new URL('/api/sessions/%zz', gw.url), { headers: gw.apiAuth });
    assert.equal(res.status, 400, await res.clone().text());
    assert.match(((await res.json()) as { error: string }).error, /malformed %-escape/);
  });

  it('cuts names and paths to printable prefixes', () => {
    assert.equal(untrustedPrefix('everything'), 'everything');
    assert.equal(untrustedPrefix('a\nb"c<d>'), 'a?b?c?d?');
    assert.equal(untrustedPrefix('x'.repeat(40)), `${'x'.repeat(16)}…(40 chars)`);
    assert.equal(untrustedPath('/mcp/everything'), '/mcp/everything');
    assert.equal(untrustedPath(`/a/${'y'.repeat(30)}/b/c/d/e`), `/a/${'y'.repeat(16)}…/b/c/…`);
  });
});
