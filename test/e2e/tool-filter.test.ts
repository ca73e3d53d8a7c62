import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode } from '../../src/protocol/jsonrpc.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** The pipeline's first real stage, end to end: per-connection tool allow/deny lists. */
describe('tool allow/deny lists through the gateway', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      connections: {
        denied: { stdio: everythingStdio(), tools: { deny: ['get-env', 'trigger-*'] } },
        allowed: { stdio: everythingStdio(), tools: { allow: ['echo', 'get-sum'] } },
        open: { stdio: everythingStdio() },
      },
    });
  });

  after(() => gw.stop());

  async function session(name: string) {
    const transport = new StreamableHTTPClientTransport(gw.mcp(name), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'filter-test', version: '1.0.0' }, { capabilities: { sampling: {} } });
    await client.connect(transport);
    return { client, close: async () => (await transport.terminateSession(), await client.close()) };
  }

  it('a deny list hides matching tools and refuses calls to them', async () => {
    const { client, close } = await session('denied');
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo'));
    assert.ok(!names.includes('get-env'));
    assert.ok(!names.some((n) => n.startsWith('trigger-')), names.join(','));
    await assert.rejects(client.callTool({ name: 'get-env', arguments: {} }), (err: unknown) => {
      assert.ok(err instanceof McpError);
      assert.equal(err.code, ErrorCode.Denied);
      assert.match(err.message, /Tool 'get-env' is not allowed on connection 'denied'/);
      return true;
    });
    assert.match(JSON.stringify(await client.callTool({ name: 'echo', arguments: { message: 'ok' } })), /Echo: ok/);
    await close();
  });

  it('an allow list shows only the listed tools', async () => {
    const { client, close } = await session('allowed');
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['echo', 'get-sum']);
    await assert.rejects(client.callTool({ name: 'get-tiny-image', arguments: {} }), /not allowed/);
    await close();
  });

  it('a connection without lists shows every tool', async () => {
    const { client, close } = await session('open');
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'get-env'));
    await close();
  });
});
