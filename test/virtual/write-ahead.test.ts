import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { EchoServer } from '../helpers/echo-server.js';
import type { TestGateway } from '../helpers/gateway.js';
import { deliveredTexts } from '../helpers/recorded.js';
import { type StoreOutage, startStoreOutage } from '../helpers/store-outage.js';
import type { LockableTestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A virtual server's session hands its messages to its in-process member sessions without waiting for its own
 * recording to be durable (src/exchange/server-forwarding.ts), and the member sessions hand theirs back likewise: only
 * the member session's write-ahead stands between a call and the member's server. It still fails closed: with the
 * store down, a call through the virtual server never reaches the server, and what is recorded never claims it did.
 */
describe('a virtual server under write-ahead recording, when the store fails', () => {
  let outage: StoreOutage | undefined;
  let ts: LockableTestStore;
  let gw: TestGateway;
  let echo: EchoServer;

  before(async () => {
    outage = await startStoreOutage((echo) => ({
      connections: { echo: { http: { url: echo.url, protocol: '2025-11-25' } } },
      virtualServers: { box: { access: { groups: ['*'] }, members: [{ connection: 'echo' }] } },
    }));
    ({ store: ts, gw, echo } = outage);
  });
  after(() => outage?.stop());

  it('forwards nothing unrecorded to the member’s server', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('box'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'virtual-wal', version: '1.0.0' });
    await client.connect(transport);
    const virtualId = transport.sessionId!;
    const ok = await client.callTool({ name: 'echo__echo', arguments: { message: 'before the fault' } });
    assert.deepEqual(ok.content, [{ type: 'text', text: 'Echo: before the fault' }]);

    // Another process holds the database's write lock: no commit succeeds.
    ts.lock();
    await assert.rejects(client.callTool({ name: 'echo__echo', arguments: { message: 'during the fault' } }));
    assert.ok(!echo.received.some((m) => m.params?.arguments?.message === 'during the fault'), 'the unrecorded call never reached the server');
    await client.close().catch(() => {});

    ts.unlock();
    const store = gw.gateway.recorder!.store;
    await waitFor(async () => (await store.getSession(virtualId))?.status === 'cut-off', 'the virtual session to be sealed as cut off');
    const members = (await store.listSessions({ connection: 'echo', limit: 10 })).filter((s) => s.edge === 'virtual');
    assert.equal(members.length, 1);
    await waitFor(async () => (await store.getSession(members[0]!.id))?.status === 'cut-off', 'the member session to be sealed as cut off');
    const forwarded = deliveredTexts(await store.events(members[0]!.id, -1, 1000), 'toServer');
    assert.ok(forwarded.some((p) => p.includes('before the fault')));
    assert.ok(!forwarded.some((p) => p.includes('during the fault')), 'the member’s recording does not claim the call went out');
  });
});
