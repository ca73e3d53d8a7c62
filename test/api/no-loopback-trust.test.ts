import assert from 'node:assert/strict';
import { chmodSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadOrCreateLocalApiKey, localApiKeyPath, readLocalApiKey } from '../../src/crypto/local-api-key.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startTestIdp, type TestIdp } from '../helpers/idp.js';
import { rawInitialize } from '../helpers/raw-http.js';

/**
 * Nothing is trusted for arriving on loopback: a TLS proxy on the gateway's host (as the README describes) makes
 * every remote caller a loopback one. Without api.token, /api/sessions and /metrics answer a bearer credential
 * only (a person's token, or the local API key in the data directory), never an anonymous request.
 */

/** A reverse proxy on the same host, as a TLS terminator would be: it forwards whatever the remote caller sent. */
async function sameHostProxy(target: string): Promise<{ url: string; stop(): Promise<void> }> {
  const to = new URL(target);
  const server: Server = createServer((req, res) => {
    const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('no trust for loopback: /api/sessions and /metrics with OIDC and no api.token', () => {
  let idp: TestIdp;
  let gw: TestGateway;
  let proxy: { url: string; stop(): Promise<void> };
  let adaSession: string;
  let bobSession: string;

  before(async () => {
    idp = await startTestIdp();
    gw = await startTestGateway({
      identity: { issuers: [{ issuer: idp.issuer, audiences: ['portcullis'], clientId: 'portcullis-cli' }] },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['*'] } } },
    });
    proxy = await sameHostProxy(gw.url);
    for (const who of ['ada', 'bob'] as const) {
      const auth = { authorization: `Bearer ${await idp.sign({ sub: who, groups: [] })}` };
      const id = await rawInitialize(gw.mcp('everything'), auth);
      await fetch(gw.mcp('everything'), { method: 'DELETE', headers: { ...auth, 'mcp-session-id': id } });
      if (who === 'ada') adaSession = id;
      else bobSession = id;
    }
  });
  after(async () => {
    await proxy?.stop();
    await gw?.stop();
    await idp?.stop();
  });

  it('refuses an anonymous loopback request with 401, for the list, one session, its events and its export', async () => {
    for (const path of ['/api/sessions', `/api/sessions/${adaSession}`, `/api/sessions/${adaSession}/events`, `/api/sessions/${adaSession}/export`]) {
      const res = await fetch(new URL(path, gw.url));
      assert.equal(res.status, 401, path);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="portcullis-api"');
      const body = await res.text();
      assert.match(body, /needs a bearer token/);
      assert.ok(!body.includes('"events"') && !body.includes('"sessions"'), 'nothing of the recordings');
    }
  });

  it('refuses a remote caller behind a TLS proxy on the same host', async () => {
    const res = await fetch(new URL('/api/sessions', proxy.url));
    assert.equal(res.status, 401);
    const body = await res.text();
    assert.ok(!body.includes(adaSession) && !body.includes(bobSession));
    const metrics = await fetch(new URL('/metrics', proxy.url));
    assert.equal(metrics.status, 401);
    assert.doesNotMatch(await metrics.text(), /portcullis_/);
  });

  it('gives a signed-in non-auditor their own sessions only', async () => {
    const bob = { authorization: `Bearer ${await idp.sign({ sub: 'bob', groups: [] })}` };
    const list = (await (await fetch(new URL('/api/sessions', gw.url), { headers: bob })).json()) as { sessions: Array<{ id: string }> };
    assert.deepEqual(
      list.sessions.map((s) => s.id),
      [bobSession],
    );
    assert.equal((await fetch(new URL(`/api/sessions/${adaSession}/events`, gw.url), { headers: bob })).status, 404);
    const metrics = await fetch(new URL('/metrics', gw.url), { headers: bob });
    assert.equal(metrics.status, 401, "a person's token is not a machine credential");
    await metrics.text();
  });

  it('gives the holder of the local API key every session and the metrics', async () => {
    const list = (await (await fetch(new URL('/api/sessions', gw.url), { headers: gw.apiAuth })).json()) as { sessions: Array<{ id: string }> };
    assert.deepEqual(new Set(list.sessions.map((s) => s.id)), new Set([adaSession, bobSession]));
    const metrics = await fetch(new URL('/metrics', gw.url), { headers: gw.apiAuth });
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^portcullis_sessions_opened_total\{connection="everything"\} 2$/m);
  });

  it('keeps the local API key in the data directory, readable by the gateway user only, and out of the log', async () => {
    const key = readLocalApiKey(gw.dataDir)!;
    assert.equal(statSync(localApiKeyPath(gw.dataDir)).mode & 0o777, 0o600);
    const wrong = await fetch(new URL('/api/sessions', gw.url), { headers: { authorization: `Bearer ${key.slice(0, -1)}${key.endsWith('x') ? 'y' : 'x'}` } });
    assert.equal(wrong.status, 401);
    await wrong.text();
    assert.ok(!gw.log.text.includes(key), 'the key never reaches the log');
  });
});

describe('no trust for loopback: the dev identity (the quick start)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ connections: { everything: { stdio: everythingStdio() } } });
  });
  after(() => gw?.stop());

  it('refuses an anonymous /metrics and /api/sessions', async () => {
    const metrics = await fetch(new URL('/metrics', gw.url));
    assert.equal(metrics.status, 401);
    assert.match(await metrics.text(), /needs a bearer token/);
    const sessions = await fetch(new URL('/api/sessions', gw.url));
    assert.equal(sessions.status, 401);
    await sessions.text();
    assert.equal((await fetch(new URL('/metrics', gw.url), { headers: gw.apiAuth })).status, 200);
  });

  it('reads the same key at the next start, and refuses a key file others may read', () => {
    const key = readLocalApiKey(gw.dataDir);
    assert.equal(loadOrCreateLocalApiKey(gw.dataDir), key);
    chmodSync(localApiKeyPath(gw.dataDir), 0o644);
    try {
      assert.throws(() => loadOrCreateLocalApiKey(gw.dataDir), /may be read by other users; chmod 600 it/);
    } finally {
      chmodSync(localApiKeyPath(gw.dataDir), 0o600);
    }
  });
});
