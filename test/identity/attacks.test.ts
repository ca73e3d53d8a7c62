import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startTestIdp, type TestIdp } from '../helpers/idp.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { allEvents } from '../helpers/recorded.js';

/**
 * The attack suite: every way a token can be wrong, each its own test, against a gateway that trusts a real
 * OpenID provider (oidc-provider) through discovery and its JWKS. Each must be refused with 401 (400 for a token
 * in the URL) and a reason, and the gateway must go on serving.
 */

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'attack', version: '1' } },
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('token attacks against a gateway trusting a real IdP', () => {
  let idp: TestIdp;
  let gw: TestGateway;

  before(async () => {
    idp = await startTestIdp();
    gw = await startTestGateway(
      {
        identity: { issuers: [{ issuer: idp.issuer, audiences: ['portcullis'] }], clockSkew: '30s' },
        connections: {
          everything: { stdio: everythingStdio(), access: { groups: ['eng'] } },
        },
      },
      { issuerTimings: { jwksCooldownMs: 60_000 } },
    );
  });
  after(async () => {
    await gw?.stop();
    await idp?.stop();
  });

  async function attempt(token: string | undefined, path = gw.mcp('everything').href): Promise<{ status: number; challenge: string; body: string }> {
    const res = await fetch(path, {
      method: 'POST',
      headers: { ...mcpHeaders, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      body: initialize,
    });
    return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '', body: await res.text() };
  }

  async function refused(token: string, reason: RegExp): Promise<void> {
    const r = await attempt(token);
    assert.equal(r.status, 401, r.body);
    assert.match(r.challenge, /^Bearer /);
    assert.match(r.challenge, /error="invalid_token"/);
    assert.match(r.challenge, reason);
    assert.match(r.body, reason);
    // The gateway goes on serving the honest.
    assert.equal((await attempt(await idp.sign({}))).status, 200);
  }

  it('accepts a valid token signed by the IdP (the baseline every attack is measured against)', async () => {
    const r = await attempt(await idp.sign({}));
    assert.equal(r.status, 200, r.body);
  });

  it('no token: 401 with a challenge naming the protected resource metadata, and no error code', async () => {
    const r = await attempt(undefined);
    assert.equal(r.status, 401);
    assert.match(r.challenge, /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp\/everything"/);
    assert.doesNotMatch(r.challenge, /error=/);
  });

  it('alg "none" (an unsigned token)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: idp.issuer, sub: 'ada', aud: 'portcullis', exp: now + 300, groups: ['eng'] })}.`;
    await refused(token, /not a well-formed JWT|algorithm|not valid/);
  });

  it('HS256 signed with the IdP public key as the HMAC secret (algorithm confusion)', async () => {
    const { createPublicKey } = await import('node:crypto');
    const pem = createPublicKey({ key: idp.key.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ groups: ['eng'] })
      .setProtectedHeader({ alg: 'HS256', kid: idp.key.kid })
      .setIssuer(idp.issuer)
      .setSubject('ada')
      .setAudience('portcullis')
      .setExpirationTime(now + 300)
      .sign(Buffer.from(pem));
    await refused(token, /signing algorithm is not allowed/);
  });

  it('a token signed by a key the IdP never published, under its kid', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ groups: ['eng'] })
      .setProtectedHeader({ alg: 'RS256', kid: idp.key.kid })
      .setIssuer(idp.issuer)
      .setSubject('ada')
      .setAudience('portcullis')
      .setExpirationTime(now + 300)
      .sign(privateKey);
    await refused(token, /signature is not valid/);
  });

  it('an unknown kid', async () => {
    await refused(await idp.sign({}, { kid: 'no-such-key' }), /no signing key .* matches the token's kid/);
  });

  it('a path-like kid', async () => {
    await refused(await idp.sign({}, { kid: '../../../../etc/passwd' }), /no signing key .* matches the token's kid/);
  });

  it('a flood of made-up kids costs the IdP at most one JWKS fetch per cooldown', async () => {
    await attempt(await idp.sign({}));
    const before = idp.jwksFetches;
    const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => idp.sign({}, { kid: `flood-${i}` })));
    const results = await Promise.all(tokens.map((t) => attempt(t)));
    assert.ok(results.every((r) => r.status === 401));
    assert.ok(idp.jwksFetches - before <= 1, `JWKS fetched ${idp.jwksFetches - before} times for 40 unknown kids`);
  });

  it('a wrong issuer', async () => {
    await refused(await idp.sign({ iss: 'https://evil.example.com' }), /issuer 'https:\/\/evil\.example\.com' is not trusted/);
  });

  it("a token meant for another server on this machine, replayed with that server's Host header", async () => {
    const other = 'http://localhost:3000';
    const token = await idp.sign({ aud: `${other}/mcp/everything` });
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        gw.mcp('everything'),
        { method: 'POST', headers: { ...mcpHeaders, host: 'localhost:3000', authorization: `Bearer ${token}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(initialize);
    });
    assert.equal(status, 401, "the audience is the gateway's own address, never the Host a request names");
  });

  it('credentials of another scheme are no credentials (401, bare challenge); a malformed bearer header is a bad request (400)', async () => {
    const basic = await fetch(gw.mcp('everything'), { method: 'POST', headers: { ...mcpHeaders, authorization: 'Basic dXNlcjpwYXNz' }, body: initialize });
    assert.equal(basic.status, 401);
    assert.doesNotMatch(basic.headers.get('www-authenticate') ?? '', /error=/);
    const malformed = await fetch(gw.mcp('everything'), { method: 'POST', headers: { ...mcpHeaders, authorization: 'Bearer two words' }, body: initialize });
    assert.equal(malformed.status, 400);
    assert.match(malformed.headers.get('www-authenticate') ?? '', /error="invalid_request"/);
  });

  it('a wrong audience', async () => {
    await refused(await idp.sign({ aud: 'some-other-api' }), /not meant for this connection/);
  });

  it('no audience', async () => {
    await refused(await idp.sign({ aud: undefined }), /no 'aud' claim/);
  });

  it('no exp', async () => {
    await refused(await idp.sign({ exp: undefined }), /no 'exp' claim/);
  });

  it('expired beyond the clock skew', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(await idp.sign({ iat: now - 600, exp: now - 60 }), /expired/);
  });

  it('expired within the clock skew is still accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await attempt(await idp.sign({ iat: now - 600, exp: now - 10 }))).status, 200);
  });

  it('nbf in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(await idp.sign({ nbf: now + 600 }), /not valid yet/);
  });

  it('a token in the query string is refused, even alongside a valid header', async () => {
    const token = await idp.sign({});
    const url = `${gw.mcp('everything').href}?access_token=${token}`;
    const r = await attempt(token, url);
    assert.equal(r.status, 400);
    assert.match(r.body, /only in the Authorization header/);
    assert.match(r.challenge, /error="invalid_request"/);
    const bare = await fetch(url, { method: 'POST', headers: mcpHeaders, body: initialize });
    assert.equal(bare.status, 400);
  });

  it('a groups claim of the wrong type gives no groups: refused by access policy (403), and the refusal is recorded', async () => {
    for (const groups of [{ eng: true }, 42, [1, 2], ['eng', 7]]) {
      const r = await attempt(await idp.sign({ sub: 'mallory', groups }));
      assert.equal(r.status, 403, `groups ${JSON.stringify(groups)}: ${r.body}`);
      assert.match(r.challenge, /error="insufficient_scope"/);
      assert.match(r.body, /needs membership of eng/);
    }
    const refused = await gw.gateway.recorder!.store.listSessions({ subject: 'mallory', limit: 10 });
    assert.equal(refused.length, 4);
    assert.ok(refused.every((s) => s.status === 'closed' && s.denials === 1 && /^access denied/.test(s.closeReason ?? '')));
    const events = await allEvents(gw.gateway.recorder!.store, refused[0]!.id);
    assert.deepEqual(
      events.map((e) => e.kind),
      ['open', 'message', 'verdict', 'close'],
    );
    // The refused request is kept as it was sent (its body), never the token that came with it.
    assert.match(events[1]!.payload, /"method":"initialize"/);
    assert.ok(!events.some((e) => /Bearer|eyJ/.test(e.payload)), 'no token in the recording');
  });

  it("a session id presented by another user is unknown (404), and the owner's session goes on", async () => {
    const ada = { authorization: `Bearer ${await idp.sign({ sub: 'ada' })}` };
    const bob = { authorization: `Bearer ${await idp.sign({ sub: 'bob', groups: ['eng'] })}` };
    const id = await rawInitialize(gw.mcp('everything'), ada);
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' });
    const headers = { ...mcpHeaders, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
    const stolen = await fetch(gw.mcp('everything'), { method: 'POST', headers: { ...headers, ...bob }, body: ping });
    assert.equal(stolen.status, 404);
    const stolenGet = await fetch(gw.mcp('everything'), { headers: { ...bob, accept: 'text/event-stream', 'mcp-session-id': id } });
    assert.equal(stolenGet.status, 404);
    const stolenDelete = await fetch(gw.mcp('everything'), { method: 'DELETE', headers: { ...bob, 'mcp-session-id': id } });
    assert.equal(stolenDelete.status, 404);
    const own = await fetch(gw.mcp('everything'), { method: 'POST', headers: { ...headers, ...ada }, body: ping });
    assert.equal(own.status, 200);
    assert.match(await own.text(), /"result":\{\}/);
    assert.ok(gw.log.lines.some((l) => l.msg === 'session id presented by another identity'));
  });

  it('never writes a token into a log line or the recording', async () => {
    const token = await idp.sign({ sub: 'tracer' });
    assert.equal((await attempt(token)).status, 200);
    assert.equal((await attempt(`${token}x`)).status, 401);
    assert.ok(!gw.log.text.includes(token.split('.')[2]!), 'no token signature in the log');
    const sessions = await gw.gateway.recorder!.store.listSessions({ subject: 'tracer', limit: 5 });
    assert.equal(sessions.length, 1);
    const events = await allEvents(gw.gateway.recorder!.store, sessions[0]!.id);
    assert.ok(!JSON.stringify(events).includes(token.split('.')[2]!), 'no token in the recording');
  });
});

describe('key rotation at a real IdP', () => {
  let idp: TestIdp;
  let gw: TestGateway;

  before(async () => {
    idp = await startTestIdp();
    // A short cooldown, so that the new key's first token may refetch the JWKS at once.
    gw = await startTestGateway(
      {
        identity: { issuers: [{ issuer: idp.issuer, audiences: ['portcullis'] }] },
        connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
      },
      { issuerTimings: { jwksCooldownMs: 10 } },
    );
  });
  after(async () => {
    await gw?.stop();
    await idp?.stop();
  });

  const attempt = async (token: string) =>
    fetch(gw.mcp('everything'), { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${token}` }, body: initialize });

  it("a token under a new key is accepted at once, and the revoked key's tokens fail from then on", async () => {
    const oldKey = idp.key;
    assert.equal((await attempt(await idp.sign({}))).status, 200);
    const oldToken = await idp.sign({ sub: 'bob', groups: ['eng'] }, {}, oldKey);
    await idp.rotate();
    await new Promise((r) => setTimeout(r, 20));
    // The first token under the new key makes the gateway refetch the JWKS (its kid is unknown)...
    const fresh = await attempt(await idp.sign({}));
    assert.equal(fresh.status, 200, await fresh.text());
    // ...after which the old key is gone from the set.
    const r = await attempt(oldToken);
    assert.equal(r.status, 401);
    assert.match(await r.text(), /no signing key .* matches the token's kid/);
  });
});

describe('an IdP that cannot be reached', () => {
  it('answers 503 with Retry-After (the token may be good), and does not fetch again at once', async () => {
    const idp = await startTestIdp();
    const gw = await startTestGateway(
      {
        identity: { issuers: [{ issuer: idp.issuer, audiences: ['portcullis'] }] },
        connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
      },
      { issuerTimings: { jwksCooldownMs: 0, discoveryRetryMs: 60_000 } },
    );
    try {
      const attempt = async (token: string) =>
        fetch(gw.mcp('everything'), { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${token}` }, body: initialize });
      assert.equal((await attempt(await idp.sign({}))).status, 200);
      const rotated = await idp.sign({}, { kid: 'next-key' });
      await idp.stop();
      const down = await attempt(rotated);
      assert.equal(down.status, 503);
      assert.equal(down.headers.get('retry-after'), '10');
      assert.match(await down.text(), /cannot be fetched now/);
      assert.ok(gw.log.lines.filter((l) => l.msg === 'the JWKS could not be fetched').length === 1);
      assert.equal((await attempt(await idp.sign({}, { kid: 'yet-another' }))).status, 503);
      assert.ok(gw.log.lines.filter((l) => l.msg === 'the JWKS could not be fetched').length === 1, 'no second fetch within the retry time');
    } finally {
      await gw.stop();
    }
  });
});
