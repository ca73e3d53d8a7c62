import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AccessRequestRow } from '../../src/store/types.js';
import { callApi } from '../helpers/api.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { postgresSql, postgresTestStore, schemaOf, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Two replicas of one gateway on one PostgreSQL database: what is decided on one takes effect on the other through
 * LISTEN/NOTIFY. The reconciliation poll is set to a minute, so that only a notification explains an effect seen
 * within the tests' waits (which are far shorter than a minute, and never assert on a duration).
 */

const users = { alice: ['eng'], bob: ['leads'], carol: ['outsiders'] };

interface ReviewView {
  id: string;
  status: string;
  params: { arguments: Record<string, unknown> };
}

describe('replicas on one PostgreSQL store', () => {
  let ts: TestStore;
  let echo: EchoServer;
  let dataDir: string;
  let gw1: TestGateway;
  let gw2: TestGateway;
  const tokens: Record<string, string> = {};
  const clients: Client[] = [];

  const config = (instanceId: string) => ({
    dataDir,
    store: ts.url,
    recording: { instanceId },
    cluster: { reconcile: '60s' },
    identity: { dev: { users } },
    rules: [{ name: 'held', when: 'tool.name == "echo" && arguments.text.startsWith("hold")', action: 'review', approvers: ['leads'] }],
    connections: {
      echo: { http: { url: echo.url }, tools: { pin: false }, access: { groups: ['eng'], approvers: ['leads'], maxGrant: '1h' } },
    },
  });

  before(async () => {
    ts = postgresTestStore();
    echo = await startEchoServer();
    // One data directory: the replicas share the dev identity (its tokens are good on both), each has its own instance id.
    dataDir = mkdtempSync(join(tmpdir(), 'portcullis-replicas-'));
    // Replica 1 waits 2 s before reconnecting its notification connection: long enough to decide something meanwhile.
    gw1 = await startTestGateway(config('replica-1'), { reconnectMs: 2000 });
    gw2 = await startTestGateway(config('replica-2'));
    for (const user of Object.keys(users)) tokens[user] = await gw1.tokenFor(user);
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await gw1?.stop();
    await gw2?.stop();
    await echo?.stop();
    await ts?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function connect(gw: TestGateway, user: string): Promise<Client> {
    const client = new Client({ name: `replica-${user}`, version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('echo'), { requestInit: { headers: { authorization: `Bearer ${tokens[user]}` } } }));
    clients.push(client);
    return client;
  }

  const api = <T>(gw: TestGateway, user: string, method: 'GET' | 'POST', path: string, body?: unknown) =>
    callApi<T & { error?: string }>(gw.url, tokens[user]!, method, path, body);

  it('each replica knows where the other is', async () => {
    await waitFor(
      () => gw1.gateway.cluster!.membership.addressOf('replica-2') === gw2.url && gw2.gateway.cluster!.membership.addressOf('replica-1') === gw1.url,
      'each replica to know the other',
    );
    assert.equal(gw1.gateway.cluster!.membership.addressOf('no-such-replica'), undefined);
  });

  it('a call held on one replica is released by an approval given on the other', async () => {
    const alice = await connect(gw1, 'alice');
    const call = alice.callTool({ name: 'echo', arguments: { text: 'hold me' } }, undefined, { timeout: 30_000 });
    call.catch(() => {});
    let review: ReviewView | undefined;
    await waitFor(async () => {
      const r = await api<{ reviews?: ReviewView[] }>(gw2, 'bob', 'GET', '/api/reviews?status=pending');
      review = r.body.reviews?.find((v) => v.params.arguments.text === 'hold me');
      return review !== undefined;
    }, 'the held call to show on the other replica');
    const approved = await api(gw2, 'bob', 'POST', `/api/reviews/${review!.id}/approve`, { note: 'fine' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    // Within the wait (far under the minute-long poll): only the notification can have told replica 1.
    const result = (await Promise.race([
      call,
      new Promise((_, reject) => setTimeout(() => reject(new Error('the call was not released by the notification')), 20_000).unref()),
    ])) as CallToolResult;
    assert.notEqual(result.isError, true, JSON.stringify(result));
    assert.ok(echo.received.some((m) => m.method === 'tools/call' && m.params?.arguments?.text === 'hold me'));
  });

  it('a grant revoked on one replica ends its sessions on the other', async () => {
    const asked = await api<{ request?: AccessRequestRow }>(gw1, 'carol', 'POST', '/api/access', { connection: 'echo', duration: '30m', reason: 'incident' });
    assert.equal(asked.status, 201, JSON.stringify(asked.body));
    const id = asked.body.request!.id;
    assert.equal((await api(gw2, 'bob', 'POST', `/api/access/${id}/approve`)).status, 200);
    // The grant made on replica 2 admits carol on replica 1 (told, not polled).
    let sessionId = '';
    await waitFor(async () => {
      sessionId = await rawInitialize(gw1.mcp('echo'), { authorization: `Bearer ${tokens.carol}` }).catch(() => '');
      return sessionId !== '';
    }, 'the grant to admit carol on the other replica');
    assert.equal(gw1.gateway.sessions.get(sessionId)?.isOpen, true);
    assert.equal((await api(gw2, 'bob', 'POST', `/api/access/${id}/revoke`, { note: 'over' })).status, 200);
    await waitFor(() => gw1.gateway.sessions.get(sessionId)?.isOpen !== true, 'the session on the other replica to end');
  });

  it('a replica misses nothing while its notification connection is down: it reads again on reconnecting', async () => {
    const alice = await connect(gw1, 'alice');
    const call = alice.callTool({ name: 'echo', arguments: { text: 'hold across a reconnect' } }, undefined, { timeout: 30_000 });
    call.catch(() => {});
    let review: ReviewView | undefined;
    await waitFor(async () => {
      const r = await api<{ reviews?: ReviewView[] }>(gw2, 'bob', 'GET', '/api/reviews?status=pending');
      review = r.body.reviews?.find((v) => v.params.arguments.text === 'hold across a reconnect');
      return review !== undefined;
    }, 'the held call');
    // Replica 1's listening connection is cut (as a network blip or a database failover would) just before the approval.
    await postgresSql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'portcullis-listen' AND pid IN (SELECT pid FROM pg_stat_activity WHERE query LIKE $1)",
      [`LISTEN "portcullis_${schemaOf(ts.url)}"%`],
    );
    // While it is down the approval's notification reaches nobody: the read on reconnecting must find it.
    await waitFor(() => gw1.log.text.includes('the change notification connection dropped'), 'replica 1 to notice');
    assert.equal((await api(gw2, 'bob', 'POST', `/api/reviews/${review!.id}/approve`)).status, 200);
    const result = (await Promise.race([
      call,
      new Promise((_, reject) => setTimeout(() => reject(new Error('the call was not released after the reconnect')), 20_000).unref()),
    ])) as CallToolResult;
    assert.notEqual(result.isError, true, JSON.stringify(result));
  });
});
