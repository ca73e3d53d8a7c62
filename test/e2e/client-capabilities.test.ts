import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import { closeClient, connectClient, edgeTransport } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents, deliveredTexts } from '../helpers/recorded.js';

/**
 * `clientCapabilities.deny`: the server is never told of a denied capability. server-everything registers its
 * sampling and elicitation tools only for clients that declare those capabilities, so what it lists shows what it was
 * told; the recording shows the initialize as it reached the server.
 */
describe('client capabilities cut by policy', () => {
  let gw: TestGateway;
  const open: [Client, Transport][] = [];

  before(async () => {
    gw = await startTestGateway({
      connections: {
        open: { stdio: everythingStdio() },
        cut: { stdio: everythingStdio(), clientCapabilities: { deny: ['sampling', 'elicitation'] } },
      },
    });
  });

  after(async () => {
    for (const [client, transport] of open) await closeClient(client, transport).catch(() => {});
    await gw?.stop();
  });

  async function toolsOf(connection: string): Promise<string[]> {
    const transport = edgeTransport('streamable-http', gw, connection);
    const { client } = await connectClient(transport);
    open.push([client, transport]);
    return (await client.listTools()).tools.map((t) => t.name);
  }

  it('a connection without the policy offers the server everything the client declared', async () => {
    const tools = await toolsOf('open');
    assert.ok(tools.includes('trigger-sampling-request') && tools.includes('trigger-elicitation-request'), tools.join(', '));
  });

  it('a denied capability never reaches the server: it does not offer the tools that need it', async () => {
    const tools = await toolsOf('cut');
    assert.ok(tools.length > 0, 'the server answered');
    assert.ok(!tools.includes('trigger-sampling-request'), 'sampling was not offered');
    assert.ok(!tools.includes('trigger-elicitation-request'), 'elicitation was not offered');
  });

  it('the recording keeps the initialize as the server received it, and the verdict that cut it', async () => {
    const cut = [...gw.gateway.sessions.all()].find((s) => s.connection === 'cut');
    assert.ok(cut, 'the session of the cut connection is open');
    const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
    const events = await allEvents(store, cut.id).finally(() => store.close());
    const forwarded = deliveredTexts(events, 'toServer').find((t) => t.includes('"method":"initialize"'));
    assert.ok(forwarded, 'the initialize was recorded');
    const params = (JSON.parse(forwarded) as { params: { capabilities: Record<string, unknown> } }).params;
    assert.ok(!('sampling' in params.capabilities) && !('elicitation' in params.capabilities), JSON.stringify(params.capabilities));
    assert.ok('roots' in params.capabilities, 'what is not denied stays');
  });
});
