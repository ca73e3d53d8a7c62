import { after, before, describe, it } from 'node:test';
import { fixturePath } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sessionHeaders, stdioFlooded, waitUntilPaused } from '../helpers/flood.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { SlowReader } from '../helpers/slow-reader.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Backpressure through a virtual server: a member's server that floods a client that does not read is paused (what
 * it sends waits in the virtual server's link to it, which its member session counts as its client's backlog), not
 * buffered for; it flows again once the client reads.
 */
describe('backpressure: a member flooding a client of a virtual server that does not read', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      limits: { clientBacklog: '256KiB', slowClientTimeout: '10m' },
      connections: { flood: { stdio: { command: process.execPath, args: [fixturePath('flood-server.js'), 'stdio'] } } },
      virtualServers: { box: { access: { groups: ['*'] }, members: [{ connection: 'flood' }] } },
    });
  });

  after(async () => {
    await gw?.stop();
  });

  it('pauses the member’s server instead of buffering, and resumes when the client reads', async () => {
    const session = await rawInitialize(gw.mcp('box'), gw.auth);
    const call = JSON.stringify({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'flood__flood', arguments: {}, _meta: { progressToken: 'p' } },
    });
    const reader = new SlowReader(gw.mcp('box'), sessionHeaders(gw, session), call, 0);
    const flooded = () => stdioFlooded(gw);
    try {
      await waitFor(() => flooded() > 0, 'the flood to start', 20_000);
      const held = await waitUntilPaused(flooded);
      reader.rate(Infinity);
      await waitFor(() => flooded() > held + (4 << 20), 'the server to be read again once the client reads', 30_000);
    } finally {
      reader.close();
      await fetch(gw.mcp('box'), { method: 'DELETE', headers: sessionHeaders(gw, session) });
    }
  });
});
