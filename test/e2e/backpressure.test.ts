import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { openStore } from '../../src/store/open.js';
import { connectClient, closeClient } from '../helpers/client.js';
import { fixturePath, type RunningServer, startFixtureHttp } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { floodCall, sessionHeaders, stdioFlooded, waitUntilPaused } from '../helpers/flood.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { SlowReader } from '../helpers/slow-reader.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Backpressure (issue 15): a server that sends faster than its client reads is paused, not buffered for; a client
 * that stays behind has its session ended with a clear error, recorded; other clients are served all along.
 */

/** Another client's call on the same gateway is answered while the flood is held. */
async function otherClientIsServed(gw: TestGateway): Promise<void> {
  const transport = new StreamableHTTPClientTransport(gw.mcp('flood'), { requestInit: { headers: gw.auth } });
  const { client } = await connectClient(transport, 'bystander');
  try {
    const result = await client.callTool({ name: 'echo', arguments: { text: 'still served' } }, undefined, { timeout: 20_000 });
    assert.deepEqual(result.content, [{ type: 'text', text: 'still served' }]);
  } finally {
    await closeClient(client, transport);
  }
}

for (const kind of ['stdio', 'http'] as const) {
  describe(`backpressure: a ${kind} server flooding a client that does not read`, () => {
    let gw: TestGateway;
    let server: RunningServer | undefined;
    let flooded: () => Promise<number> | number;

    before(async () => {
      if (kind === 'http') {
        server = await startFixtureHttp('flood-server.js');
        const stats = new URL('/stats', server.url);
        flooded = async () => ((await (await fetch(stats)).json()) as { flooded: number }).flooded;
      }
      const upstream =
        kind === 'stdio' ? { stdio: { command: process.execPath, args: [fixturePath('flood-server.js'), 'stdio'] } } : { http: { url: server!.url } };
      gw = await startTestGateway({ limits: { clientBacklog: '256KiB', slowClientTimeout: '10m' }, connections: { flood: upstream } });
      if (kind === 'stdio') flooded = () => stdioFlooded(gw);
    });

    after(async () => {
      await gw?.stop();
      await server?.stop();
    });

    it('pauses the server instead of buffering, serves other clients, and resumes when the client reads', async () => {
      const session = await rawInitialize(gw.mcp('flood'), gw.auth);
      const reader = new SlowReader(gw.mcp('flood'), sessionHeaders(gw, session), floodCall, 0);
      try {
        await waitFor(async () => (await flooded()) > 0, 'the flood to start', 20_000);
        const held = await waitUntilPaused(flooded);
        assert.ok(
          gw.log.lines.some((l) => l.msg === 'the client is not keeping up; reading from the server paused'),
          'the pause is logged',
        );
        await otherClientIsServed(gw);
        // The held session is not ended for being slow within slowClientTimeout, and flows again once read.
        reader.rate(Infinity);
        await waitFor(async () => (await flooded()) > held + (4 << 20), 'the server to be read again once the client reads', 30_000);
      } finally {
        reader.close();
        await fetch(gw.mcp('flood'), { method: 'DELETE', headers: sessionHeaders(gw, session) });
      }
    });
  });
}

describe('backpressure: a stream no client has open', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      limits: { clientBacklog: '256KiB', slowClientTimeout: '2s' },
      connections: { flood: { stdio: { command: process.execPath, args: [fixturePath('flood-server.js'), 'stdio'] } } },
    });
  });

  after(async () => {
    await gw?.stop();
  });

  it('does not hold up the calls the client does read, nor end the session', async () => {
    const session = await rawInitialize(gw.mcp('flood'), gw.auth);
    const call = async (id: number, name: string) => {
      const res = await fetch(gw.mcp('flood'), {
        method: 'POST',
        headers: { ...sessionHeaders(gw, session), 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { text: `call ${id}` } } }),
      });
      assert.equal(res.status, 200);
      return await res.text();
    };
    // 16 MB of notifications for the session's GET stream, which this client never opens: kept within the bound,
    // the oldest dropped, and the server not paused for them.
    await call(1, 'spam');
    for (let id = 2; id < 8; id++) {
      assert.match(await call(id, 'echo'), new RegExp(`"text":"call ${id}"`));
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(!gw.log.lines.some((l) => l.msg === 'ending the session of a client that stayed behind'));
  });
});

describe('backpressure: a legacy SSE client that does not read', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      limits: { clientBacklog: '256KiB', slowClientTimeout: '10m' },
      connections: { flood: { stdio: { command: process.execPath, args: [fixturePath('flood-server.js'), 'stdio'] } } },
    });
  });

  after(async () => {
    await gw?.stop();
  });

  it('pauses the server instead of buffering for its stream, and resumes when it reads', async () => {
    const stream = new SlowReader(gw.sse('flood'), gw.auth, undefined, Infinity);
    try {
      await waitFor(() => /event: endpoint\ndata: (\S+)/.test(stream.tail), 'the endpoint event');
      stream.rate(0);
      const endpoint = new URL(/event: endpoint\ndata: (\S+)/.exec(stream.tail)![1]!, gw.url);
      const posted = await fetch(endpoint, { method: 'POST', headers: { ...gw.auth, 'content-type': 'application/json' }, body: floodCall });
      assert.equal(posted.status, 202);
      await waitFor(() => stdioFlooded(gw) > 0, 'the flood to start', 20_000);
      const held = await waitUntilPaused(() => stdioFlooded(gw));
      stream.rate(Infinity);
      await waitFor(() => stdioFlooded(gw) > held + (4 << 20), 'the server to be read again once the client reads', 30_000);
    } finally {
      stream.close();
    }
  });
});

describe('backpressure: a client that stays behind', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      limits: { clientBacklog: '64KiB', slowClientTimeout: '2s' },
      connections: { flood: { stdio: { command: process.execPath, args: [fixturePath('flood-server.js'), 'stdio'] } } },
    });
  });

  after(async () => {
    await gw?.stop();
  });

  it('has its session ended with a clear JSON-RPC error and the reason recorded, while others are served', async () => {
    const session = await rawInitialize(gw.mcp('flood'), gw.auth);
    const reader = new SlowReader(gw.mcp('flood'), sessionHeaders(gw, session), floodCall, 0);
    try {
      await waitFor(() => gw.log.lines.some((l) => l.msg === 'ending the session of a client that stayed behind'), 'the slow session to be ended', 30_000);
      await otherClientIsServed(gw);
      // What was written before the end is bounded, so the client still gets to the error once it reads.
      reader.rate(Infinity);
      await waitFor(() => reader.complete, 'the stream of the ended session to end', 30_000);
      const last = reader.tail
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('data: '));
      assert.ok(last, 'the stream carried events');
      const error = JSON.parse(last.slice('data: '.length)) as { id: number; error?: { code: number; message: string } };
      assert.equal(error.id, 7);
      assert.equal(error.error?.code, -31010);
      assert.match(error.error!.message, /the client fell behind.*limits\.slowClientTimeout/);
    } finally {
      reader.close();
    }
    const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
    try {
      await waitFor(async () => (await store.getSession(session))?.status === 'closed', 'the session to be sealed');
      assert.match(
        (await store.getSession(session))!.closeReason ?? '',
        /^the client fell behind: it did not read what was sent; the \d+ bytes waiting for it did not go out within 2000 ms/,
      );
    } finally {
      await store.close();
    }
  });
});
