import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { childPids, everythingStdio, fixturePath, isAlive, type RunningServer, startFixtureHttp } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/** When the upstream dies or forgets the session, the client hears about it and can start again. */

async function connect(gw: TestGateway, connection: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(gw.mcp(connection), { requestInit: { headers: gw.auth } });
  const client = new Client({ name: 'failure-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

function text(r: unknown): string {
  return ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');
}

describe('upstream failure', () => {
  let gw: TestGateway;
  let httpServer: RunningServer;

  before(async () => {
    httpServer = await startFixtureHttp('quirky-server.js');
    gw = await startTestGateway({
      connections: {
        quirky: { stdio: { command: process.execPath, args: [fixturePath('quirky-server.js'), 'stdio'] } },
        // No warm spare: the tests below find the session's own process as the one child that appeared.
        everything: { stdio: { ...everythingStdio(), spares: 0 } },
        forgetful: { http: { url: httpServer.url } },
      },
    });
  });

  after(async () => {
    await gw.stop();
    await httpServer.stop();
  });

  it('a stdio server that exits mid-request: the pending call errors, the session ends, the next request gets 404', async () => {
    const { client, transport } = await connect(gw, 'quirky');
    const sessionId = transport.sessionId!;
    await assert.rejects(client.callTool({ name: 'crash', arguments: {} }), (err: Error) => {
      assert.match(err.message, /exited with code 3|Session ended/);
      return true;
    });
    // The pending call is answered as the close begins; the session leaves the registry when the close ends.
    await waitFor(() => gw.gateway.sessions.get(sessionId) === undefined, 'the session to be removed');
    await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'x' } }), /404|Session not found/);
    await client.close();
  });

  it('a server killed by a signal while several calls wait: every one of them gets an error', async () => {
    const before = new Set(childPids());
    const { client, transport } = await connect(gw, 'everything');
    const spawned = childPids().filter((p) => !before.has(p));
    assert.equal(spawned.length, 1, 'one server process for the session');
    const calls = [1, 2, 3].map(() =>
      client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 2 } }).then(
        () => 'answered',
        (err: Error) => err.message,
      ),
    );
    await waitFor(() => gw.gateway.sessions.get(transport.sessionId!)?.pendingRequests === 3, 'the three calls to be in flight');
    process.kill(spawned[0]!, 'SIGKILL');
    const outcomes = await Promise.all(calls);
    for (const o of outcomes) assert.match(o, /killed by SIGKILL|Session ended/);
    const res = await fetch(gw.mcp('everything'), {
      method: 'POST',
      headers: { ...gw.auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': transport.sessionId! },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }),
    });
    assert.equal(res.status, 404);
    await client.close();
  });

  it('an HTTP server that answers 400 for a session it forgot: treated as a lost session', async () => {
    const { client } = await connect(gw, 'forgetful');
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'before' } })), 'before');
    await client.callTool({ name: 'forget', arguments: {} });
    await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'after' } }), /No valid session|upstream session lost|400/);
    await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'again' } }), /404|Session not found/);
    await client.close();
    // A new session works: the client re-initializes.
    const fresh = await connect(gw, 'forgetful');
    assert.equal(text(await fresh.client.callTool({ name: 'echo', arguments: { text: 'fresh' } })), 'fresh');
    await fresh.client.close();
  });

  it('a stdio command that does not exist: initialize fails with 502 naming the problem, and nothing is left behind', async () => {
    const broken = await startTestGateway({ connections: { broken: { stdio: { command: '/nonexistent/mcp-server' } } } });
    try {
      const transport = new StreamableHTTPClientTransport(broken.mcp('broken'), { requestInit: { headers: broken.auth } });
      const client = new Client({ name: 'failure-test', version: '1.0.0' });
      await assert.rejects(client.connect(transport), /502|could not start|ENOENT|closed/);
      assert.equal(broken.gateway.sessions.size, 0);
    } finally {
      await broken.stop();
    }
  });

  it('the gateway tolerates a notification before the initialize response and relays it', async () => {
    const { client } = await connect(gw, 'quirky');
    assert.equal(client.getServerVersion()?.name, 'quirky');
    await client.close();
  });

  it('ending the session (DELETE) stops its stdio server', async () => {
    const before = new Set(childPids());
    const { client, transport } = await connect(gw, 'everything');
    const spawned = childPids().filter((p) => !before.has(p));
    assert.equal(spawned.length, 1);
    await transport.terminateSession();
    await client.close();
    await waitFor(() => !isAlive(spawned[0]!), 'the server process to be gone');
  });
});
