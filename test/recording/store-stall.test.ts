import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode } from '../../src/protocol/jsonrpc.js';
import { trustedKeys, verifyLedger, verifySession } from '../../src/recording/verify.js';
import type { Store } from '../../src/store/store.js';
import { startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { StallProxy } from '../helpers/stall-proxy.js';
import { postInitialize, rawInitialize } from '../helpers/raw-http.js';
import { postgresTestStore, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * PostgreSQL stalls: the connection stays open and nothing answers (a hung network or server), through a real TCP
 * proxy told to stop forwarding. Write-ahead must not hold a call while it lasts: past recording.writeTimeout the
 * call ends with the recording error (fail closed), nothing reaches the upstream unrecorded, and once the store
 * answers again the gateway recovers and the cut-off session is sealed and verifies.
 */

const writeTimeoutMs = 1500;

describe('the PostgreSQL store stalls mid-session', () => {
  let ts: TestStore;
  let proxy: StallProxy;
  let echo: EchoServer;
  let gw: TestGateway;
  let direct: Store;

  before(async () => {
    ts = postgresTestStore();
    direct = await ts.open();
    const target = new URL(ts.url);
    proxy = new StallProxy(Number(target.port || 5432), target.hostname);
    await proxy.start();
    const proxied = new URL(ts.url);
    proxied.host = `127.0.0.1:${proxy.port}`;
    echo = await startEchoServer();
    gw = await startTestGateway(
      { store: proxied.toString(), recording: { writeTimeout: `${writeTimeoutMs}ms` }, connections: { echo: { http: { url: echo.url } } } },
      { recorderTimings: { probeMs: 100, sweepMs: 60_000 } },
    );
  });
  after(async () => {
    proxy?.resume();
    await gw?.stop();
    await proxy?.stop();
    await echo?.stop();
    await direct?.close();
    await ts?.destroy();
  });

  it('an in-flight call gets the recording error within the bound, and the gateway recovers when the store answers', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('echo'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'stall-test', version: '1.0.0' });
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    const ok = await client.callTool({ name: 'echo', arguments: { message: 'before the stall' } });
    assert.deepEqual(ok.content, [{ type: 'text', text: 'Echo: before the stall' }]);

    proxy.stall();
    const started = Date.now();
    // The SDK's own timeout (20 s) is far past the bound: hitting it would be the defect.
    await assert.rejects(
      client.callTool({ name: 'echo', arguments: { message: 'during the stall' } }, undefined, { timeout: 20_000 }),
      (err: Error & { code?: number }) => {
        assert.equal(err.code, ErrorCode.RecordingUnavailable, err.message);
        assert.match(err.message, /recording store/);
        return true;
      },
    );
    const waited = Date.now() - started;
    // The bound plus slack for a loaded machine; before, the call waited as long as the stall (over 35 s).
    assert.ok(waited < writeTimeoutMs + 8000, `the call waited ${waited} ms`);
    assert.ok(!echo.received.some((m) => m.params?.arguments?.message === 'during the stall'), 'the unrecorded call never reached the upstream');
    assert.equal((await fetch(new URL('/readyz', gw.url))).status, 503);
    assert.ok(
      gw.log.lines.some((l) => /did not confirm a write within 1500 ms/.test(JSON.stringify(l))),
      'the log says why',
    );
    await client.close().catch(() => {});

    proxy.resume();
    await waitFor(async () => (await fetch(new URL('/readyz', gw.url))).status === 200, 'the gateway to be ready again', 30_000);
    const again = new Client({ name: 'stall-test', version: '1.0.0' });
    const againTransport = new StreamableHTTPClientTransport(gw.mcp('echo'), { requestInit: { headers: gw.auth } });
    await again.connect(againTransport);
    const after = await again.callTool({ name: 'echo', arguments: { message: 'after the stall' } });
    assert.deepEqual(after.content, [{ type: 'text', text: 'Echo: after the stall' }]);
    await againTransport.terminateSession();
    await again.close();

    await waitFor(async () => (await direct.getSession(sessionId))?.status === 'cut-off', 'the cut-off session to be sealed', 30_000);
    const key = gw.gateway.recorder!.key;
    const verified = await verifySession(direct, sessionId, await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]));
    assert.equal(verified.status, 'verified', JSON.stringify(verified.problems));
  });

  it('a session opening while the store stalls is refused in time; its unanswered write does not wedge the ledger', async () => {
    await waitFor(async () => (await fetch(new URL('/readyz', gw.url))).status === 200, 'the gateway to be ready');
    proxy.stall();
    const started = Date.now();
    const init = await postInitialize(gw.mcp('echo'), gw.auth, { signal: AbortSignal.timeout(20_000) });
    const body = (await init.json()) as { error?: { code: number } };
    assert.equal(body.error?.code, ErrorCode.RecordingUnavailable, JSON.stringify(body));
    assert.ok(Date.now() - started < writeTimeoutMs + 8000, `the client waited ${Date.now() - started} ms`);

    // The held write (a session row and the ledger's "opened" entry) reaches PostgreSQL when the network comes back.
    proxy.resume();
    await waitFor(async () => (await fetch(new URL('/readyz', gw.url))).status === 200, 'the gateway to be ready again', 30_000);
    // Sessions open and close again: each adds to the ledger after the entry whose fate the gateway did not hear.
    for (let i = 0; i < 2; i++) {
      const id = await rawInitialize(gw.mcp('echo'), gw.auth);
      await fetch(gw.mcp('echo'), { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': id } });
      await waitFor(async () => (await direct.getSession(id))?.status === 'closed', `session ${i} to be sealed`, 30_000);
    }
    await gw.gateway.recorder!.sweep();
    const ledger = await verifyLedger(direct, gw.gateway.recorder!.instanceId);
    assert.deepEqual(ledger.problems, []);
    const key = gw.gateway.recorder!.key;
    const trusted = await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]);
    for (const s of await direct.listSessions({ limit: 100 })) {
      if (s.status === 'open') continue;
      const r = await verifySession(direct, s.id, trusted);
      assert.equal(r.status, 'verified', `${s.id}: ${JSON.stringify(r.problems)}`);
    }
  });
});
