import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { closeClient, connectClient } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Under `upstreamSessions: pooled`, `limits.stdioProcesses` counts server processes, not the client sessions that share
 * one: with a cap of one process, three sessions of one principal share it; another principal, who would need a second
 * process, is refused naming the limit, and is served once the first process has closed.
 */

describe('pooled stdio connections count processes against limits.stdioProcesses', () => {
  let gw: TestGateway;
  const open: Array<{ client: Client; transport: StreamableHTTPClientTransport }> = [];

  async function connect(user: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), {
      requestInit: { headers: { authorization: `Bearer ${await gw.tokenFor(user)}` } },
    });
    const { client } = await connectClient(transport, `limits-${user}`);
    const c = { client, transport };
    open.push(c);
    return c;
  }

  before(async () => {
    gw = await startTestGateway({
      sessions: { modernIdleTimeout: '1s' },
      connections: { everything: { stdio: everythingStdio(), upstreamSessions: 'pooled', limits: { stdioProcesses: 1 } } },
    });
  });
  after(async () => {
    for (const c of open) await closeClient(c.client, c.transport).catch(() => {});
    await gw?.stop();
  });

  it('three client sessions of one principal share the one process the limit allows', async () => {
    const sessions = [await connect('tester'), await connect('tester'), await connect('tester')];
    for (const [i, s] of sessions.entries()) {
      const r = (await s.client.callTool({ name: 'echo', arguments: { message: `session ${i}` } })) as CallToolResult;
      assert.deepEqual(r.content, [{ type: 'text', text: `Echo: session ${i}` }]);
    }
    assert.equal(gw.gateway.sharedUpstreams.size, 1);
    assert.equal(gw.gateway.limits.processes('everything'), 1, 'one process counted, not three sessions');
  });

  it('refuses a session that needs a second process, naming the limit; serves it once the first process has closed', async () => {
    await assert.rejects(connect('other'), /connections\.everything\.limits\.stdioProcesses: 1/);
    for (const c of open.splice(0)) await closeClient(c.client, c.transport);
    // Unused for sessions.modernIdleTimeout, the pooled session closes, and its process with it.
    await waitFor(() => gw.gateway.limits.processes('everything') === 0, 'the process released');
    const other = await connect('other');
    const r = (await other.client.callTool({ name: 'echo', arguments: { message: 'my turn' } })) as CallToolResult;
    assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: my turn' }]);
    assert.equal(gw.gateway.limits.processes('everything'), 1);
  });
});
