import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { callApi } from '../helpers/api.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { modernBody, modernHeaders, rawRequest } from '../helpers/modern.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { postgresTestStore, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Replicas leaving: a SIGTERM'd one drains (not ready at once but serving on for the drain delay, what is in flight
 * finishes, then it leaves the membership); a kill -9'd one is noticed by a survivor after cluster.goneAfter, which seals its open recordings as
 * cut off and ends its held reviews as interrupted. And two live gateways never share an instance id.
 */

const users = { alice: ['eng'], bob: ['leads'] };

interface ReviewView {
  id: string;
  status: string;
  params: { arguments: Record<string, unknown> };
}

describe('replicas leaving', () => {
  let ts: TestStore;
  let echo: EchoServer;
  let dataDir: string;
  let survivor: TestGateway;
  const tokens: Record<string, string> = {};
  const clients: Client[] = [];

  const config = (instanceId: string) => ({
    dataDir,
    store: ts.url,
    recording: { instanceId },
    cluster: { goneAfter: '2s', reconcile: '60s' },
    identity: { dev: { users } },
    rules: [{ name: 'held', when: 'tool.name == "echo" && arguments.text.startsWith("hold")', action: 'review', approvers: ['leads'] }],
    connections: { echo: { http: { url: echo.url }, tools: { pin: false }, access: { groups: ['eng'] } } },
  });

  before(async () => {
    ts = postgresTestStore();
    echo = await startEchoServer();
    dataDir = mkdtempSync(join(tmpdir(), 'portcullis-failover-'));
    survivor = await startTestGateway(config('survivor'));
    for (const user of Object.keys(users)) tokens[user] = await survivor.tokenFor(user);
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await survivor?.stop();
    await echo?.stop();
    await ts?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function holdOn(url: string, text: string): Promise<{ call: Promise<CallToolResult>; review: ReviewView }> {
    const client = new Client({ name: 'failover', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp/echo', url), { requestInit: { headers: { authorization: `Bearer ${tokens.alice}` } } }),
    );
    clients.push(client);
    const call = client.callTool({ name: 'echo', arguments: { text } }, undefined, { timeout: 60_000 }) as Promise<CallToolResult>;
    call.catch(() => {});
    let review: ReviewView | undefined;
    await waitFor(async () => {
      const r = await callApi<{ reviews?: ReviewView[] }>(survivor.url, tokens.bob!, 'GET', '/api/reviews?status=pending');
      review = r.body.reviews?.find((v) => v.params.arguments.text === text);
      return review !== undefined;
    }, `the held call '${text}'`);
    return { call, review: review! };
  }

  it('refuses to start a second gateway with the instance id of a live one, naming the key and the fix', async () => {
    await assert.rejects(startTestGateway(config('survivor')), (err: Error) => {
      assert.match(err.message, /another gateway is running with instance id 'survivor'/);
      assert.match(err.message, /recording\.instanceId/);
      return true;
    });
    assert.equal(survivor.gateway.cluster!.membership.state, 'serving', 'the live one is undisturbed');
  });

  it('SIGTERM drains: not ready at once while serving on for the drain delay, the call in flight finishes, then it leaves', async () => {
    const base = config('draining');
    const draining = await startTestGateway({
      ...base,
      // Longer than the test: it ends the delay itself, with a second stop (as a second signal would).
      shutdown: { drainDelay: '10m' },
      connections: { ...base.connections, everything: { stdio: { ...everythingStdio(), spares: 0 }, access: { groups: ['eng'] } } },
    });
    try {
      const auth = { authorization: `Bearer ${tokens.alice}` };
      const client = new Client({ name: 'drain', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(draining.mcp('everything'), { requestInit: { headers: auth } }));
      clients.push(client);
      let progressed = false;
      const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 6 } }, undefined, {
        onprogress: () => (progressed = true),
        timeout: 30_000,
      });
      await waitFor(() => progressed, 'the call to be in flight');
      const stopped = draining.gateway.stop({ drainDelay: true });
      await waitFor(async () => (await survivor.gateway.recorder!.store.member('draining'))?.state === 'draining', 'the replica to say it drains');
      const ready = await rawRequest(new URL('/readyz', draining.url), 'GET', []);
      assert.equal(ready.status, 503, 'a load balancer stops sending to it');
      assert.equal((JSON.parse(ready.body) as { status: string }).status, 'draining');
      assert.equal(ready.headers.connection, 'close', 'no connection is left idle for the port closing');

      // One the load balancer still sends before it has noticed: a new legacy session, and a modern request.
      const late = new Client({ name: 'late', version: '1.0.0' });
      await late.connect(new StreamableHTTPClientTransport(draining.mcp('echo'), { requestInit: { headers: auth } }));
      clients.push(late);
      assert.match(JSON.stringify(await late.callTool({ name: 'echo', arguments: { text: 'late', message: 'late' } })), /late/);
      const modern = await rawRequest(
        draining.mcp('echo'),
        'POST',
        [...modernHeaders('tools/call', 'echo'), ['authorization', auth.authorization]],
        JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { text: 'modern', message: 'modern' } })),
      );
      assert.equal(modern.status, 200, modern.body);
      assert.match(JSON.stringify(modern.json?.result), /modern/);
      assert.equal((await survivor.gateway.recorder!.store.member('draining'))?.state, 'draining', 'still in the membership');

      void draining.gateway.stop();
      assert.match(JSON.stringify(await call), /completed/, 'the call in flight finished');
      await stopped;
      assert.equal((await survivor.gateway.recorder!.store.member('draining'))?.state, 'gone');
      await waitFor(async () => {
        await survivor.gateway.cluster!.membership.refresh();
        return survivor.gateway.cluster!.membership.addressOf('draining') === undefined;
      }, 'the survivor to stop routing to it');
    } finally {
      await draining.stop();
    }
  });

  it('kill -9: a survivor seals the dead replica’s open sessions as cut off and interrupts its held reviews', async () => {
    const port = await freePort();
    const file = join(dataDir, 'doomed.yaml');
    writeFileSync(file, stringify({ ...config('doomed'), listen: `127.0.0.1:${port}`, log: { level: 'warn' } }));
    const doomed = new GatewayProcess(file);
    try {
      await doomed.ready();
      const url = `http://127.0.0.1:${port}`;
      const sessionId = await rawInitialize(new URL('/mcp/echo', url), { authorization: `Bearer ${tokens.alice}` });
      const store = survivor.gateway.recorder!.store;
      await waitFor(async () => (await store.getSession(sessionId))?.status === 'open', 'the session to be recorded');
      const { review } = await holdOn(url, 'hold until killed');
      await doomed.stop('SIGKILL');
      await waitFor(async () => (await store.getSession(sessionId))?.status === 'cut-off', 'the dead replica’s session to be sealed as cut off', 30_000);
      assert.match(
        (await store.getSession(sessionId))!.closeReason ?? '',
        /gateway instance doomed stopped without closing the session; recovered by survivor/,
      );
      await waitFor(async () => (await store.getReview(review.id))?.status === 'interrupted', 'its held review to be interrupted', 30_000);
      assert.match((await store.getReview(review.id))!.decisionNote ?? '', /gateway instance doomed stopped while the call was held/);
      assert.equal(survivor.gateway.cluster!.membership.addressOf('doomed'), undefined);
    } finally {
      await doomed.stop('SIGKILL');
    }
  });
});
