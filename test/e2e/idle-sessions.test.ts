import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { childPids, everythingStdio, isAlive } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/** Clients vanish without DELETE; their sessions (and stdio servers) must not live forever. */
describe('idle sessions', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      connections: { everything: { stdio: { ...everythingStdio(), spares: 0 } } },
      sessions: { idleTimeout: '10m', abandonedAfter: 'off' },
    });
  });
  after(() => gw.stop());

  it('reaps a session with no traffic and no open stream after the idle timeout, and stops its server', async () => {
    const before = new Set(childPids());
    const sessionId = await rawInitialize(gw.mcp('everything'), gw.auth);
    const server = childPids().find((p) => !before.has(p))!;
    assert.ok(gw.gateway.sessions.get(sessionId));
    assert.equal(gw.gateway.sessions.reapIdle(Date.now() + 5 * 60_000), 0, 'not idle long enough yet');
    assert.equal(gw.gateway.sessions.reapIdle(Date.now() + 11 * 60_000), 1);
    // reapIdle only starts the close (seal, stop the server, leave the registry): wait for each end state.
    await waitFor(() => !isAlive(server), "the idle session's server to stop");
    await waitFor(() => gw.gateway.sessions.get(sessionId) === undefined, 'the idle session to leave the registry');
  });

  it('keeps a session whose client holds its GET stream open', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'idle-test', version: '1.0.0' });
    await client.connect(transport);
    // The SDK client opens the standalone GET stream after initialization.
    await waitFor(() => gw.gateway.sessions.get(transport.sessionId!)?.sink.connected === true, "the client's GET stream to be open");
    assert.equal(gw.gateway.sessions.reapIdle(Date.now() + 60 * 60_000), 0);
    await transport.terminateSession();
    await client.close();
  });
});
