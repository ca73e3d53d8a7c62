import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { trustedKeys, verifySession } from '../../src/recording/verify.js';
import { childPids, everythingStdio, fixturePath, isAlive } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Sessions end when they cannot go on or their client has gone: a refused initialize, a client that leaves without
 * DELETE (neither official SDK's close() sends one). Each ends with its server process stopped and its recording sealed.
 */

/** The one process the gateway starts while `act` runs (a session's stdio server). */
async function spawnedBy<T>(act: () => Promise<T>): Promise<{ result: T | Error; pid: number }> {
  const before = new Set(childPids());
  const result = await act().catch((err: Error) => err);
  const spawned = childPids().filter((p) => !before.has(p));
  assert.equal(spawned.length, 1, `one server process started, found ${spawned.length}`);
  return { result, pid: spawned[0]! };
}

describe('sessions that end', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      connections: {
        // No warm spares: spawnedBy finds a session's own process as the one child that appeared.
        everything: { stdio: { ...everythingStdio(), spares: 0 } },
        refusing: { stdio: { command: process.execPath, args: [fixturePath('quirky-server.js'), 'stdio'], env: { QUIRKY_INITIALIZE: 'error' }, spares: 0 } },
        missing: { stdio: { command: '/nonexistent/portcullis-test-server' } },
      },
    });
  });
  after(() => gw.stop());

  const store = () => gw.gateway.recorder!.store;
  const trusted = () => trustedKeys([gw.gateway.recorder!.key]);

  it('an initialize the server refuses: the client gets the error, the session ends, its process stops, the recording is sealed', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('refusing'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'refused-client', version: '1.0.0' });
    const { result, pid } = await spawnedBy(() => client.connect(transport));
    assert.ok(result instanceof Error, 'connect fails');
    assert.match(result.message, /Unsupported protocol version: this server speaks 2026-07-28 only/);
    await waitFor(() => !isAlive(pid), 'the refusing server process to stop');
    await waitFor(() => gw.gateway.sessions.size === 0, 'the session to leave the registry');
    const [row] = await store().listSessions({ connection: 'refusing', limit: 5 });
    assert.ok(row);
    assert.equal(row.status, 'closed');
    assert.match(row.closeReason ?? '', /^initialize failed: Unsupported protocol version/);
    const v = await verifySession(store(), row.id, await trusted());
    assert.equal(v.status, 'verified', JSON.stringify(v.problems));
    // The id the error came with names a session that no longer exists.
    if (transport.sessionId !== undefined) {
      const res = await fetch(gw.mcp('refusing'), {
        method: 'POST',
        headers: { ...gw.auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': transport.sessionId },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      assert.equal(res.status, 404);
    }
    await client.close();
  });

  it('an upstream that cannot start: the client gets an error and the recording of the attempt is sealed', async () => {
    const client = new Client({ name: 'no-server', version: '1.0.0' });
    await assert.rejects(client.connect(new StreamableHTTPClientTransport(gw.mcp('missing'), { requestInit: { headers: gw.auth } })), /was not found/);
    const [row] = await store().listSessions({ connection: 'missing', limit: 5 });
    assert.ok(row);
    assert.match(row.closeReason ?? '', /upstream failed to start/);
    assert.equal((await verifySession(store(), row.id, await trusted())).status, 'verified');
    assert.equal(gw.gateway.sessions.size, 0);
  });

  it('a v1 client that closes without DELETE: its session is closed as abandoned after sessions.abandonedAfter (2 min), its server stopped', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'leaves-without-delete', version: '1.0.0' });
    const { pid } = await spawnedBy(() => client.connect(transport));
    const id = transport.sessionId!;
    await waitFor(() => gw.gateway.sessions.get(id)?.sink.connected === true, "the client's GET stream to be open");
    await client.callTool({ name: 'echo', arguments: { message: 'before leaving' } });
    // While the client holds its GET stream, no amount of quiet makes the session abandoned.
    assert.equal(gw.gateway.sessions.reapIdle(Date.now() + 10 * 60_000), 0, 'a client holding its stream is kept');
    await client.close(); // aborts the GET stream; no DELETE
    await waitFor(() => gw.gateway.sessions.get(id)?.sink.connected === false, 'the gateway to see the GET stream closed');
    assert.equal(gw.gateway.sessions.reapIdle(Date.now() + 60_000), 0, 'a minute after it left, it may still come back');
    assert.equal(gw.gateway.sessions.reapIdle(Date.now() + 2 * 60_000 + 1000), 1);
    await waitFor(() => !isAlive(pid), "the abandoned session's server to stop");
    await waitFor(() => gw.gateway.sessions.get(id) === undefined, 'the abandoned session to leave the registry');
    const row = await store().getSession(id);
    assert.match(row?.closeReason ?? '', /^abandoned: no stream open, nothing in flight and nothing from the client for 120s/);
  });

  it('a client without a stream is kept while it keeps sending: abandonment counts from its last message', async () => {
    const id = await rawInitialize(gw.mcp('everything'), gw.auth);
    const session = gw.gateway.sessions.get(id)!;
    assert.equal(session.sink.connected, false, 'a raw client opens no GET stream');
    const sentAt = Date.now();
    assert.equal(session.isAbandonedSince(sentAt - 1000), false);
    assert.equal(session.isAbandonedSince(sentAt + 1000), true);
    await session.close('test over');
  });
});

describe('sessions.abandonedAfter on its own timer', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ connections: { everything: { stdio: { ...everythingStdio(), spares: 0 } } }, sessions: { abandonedAfter: '1s' } });
  });
  after(() => gw.stop());

  it('the reaper closes the session of a v1 client that left without DELETE, and stops its server', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'leaves', version: '1.0.0' });
    const { pid } = await spawnedBy(() => client.connect(transport));
    const id = transport.sessionId!;
    await client.callTool({ name: 'echo', arguments: { message: 'hello' } });
    await client.close();
    await waitFor(() => gw.gateway.sessions.get(id) === undefined, 'the reaper to close the abandoned session');
    await waitFor(() => !isAlive(pid), 'its server process to stop');
    assert.match((await gw.gateway.recorder!.store.getSession(id))?.closeReason ?? '', /^abandoned:.*for 1s \(sessions\.abandonedAfter\)$/);
  });
});
