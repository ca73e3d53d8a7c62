import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/open.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { modernBody, modernHeaders, rawRequest } from '../helpers/modern.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A hostile reading of the modern edge: what a client that leaves at the wrong moment, or floods refusals, costs the
 * gateway. Each case failed before its fix.
 */

/** A 2025-era Streamable HTTP server (JSON answers) whose `resources/subscribe` answers are held until released. */
interface HoldingServer {
  url: string;
  methods: string[];
  /** Answers the held subscribes. */
  release(): void;
  stop(): Promise<void>;
}

async function startHoldingServer(): Promise<HoldingServer> {
  const methods: string[] = [];
  let held: Array<() => void> = [];
  let released = false;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const m = JSON.parse(body) as { id?: number | string; method?: string };
      if (m.method !== undefined) methods.push(m.method);
      if (m.id === undefined) return void res.writeHead(202).end();
      const answer = (result: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
      if (m.method === 'initialize')
        return answer({ protocolVersion: '2025-11-25', capabilities: { resources: { subscribe: true } }, serverInfo: { name: 'holding', version: '1' } });
      if (m.method === 'resources/subscribe' && !released) return void held.push(() => answer({}));
      answer({});
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    methods,
    release() {
      released = true;
      for (const h of held) h();
      held = [];
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The gateway's side of a TCP connection from `clientPort` is still open (the gateway has not yet seen it close). */
function gatewaySocketOpen(gatewayPort: number, clientPort: number): boolean {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.some((h) => {
    const s = h as Partial<Socket>;
    return s.localPort === gatewayPort && s.remotePort === clientPort;
  });
}

describe('a modern client that leaves while its listen stream is being set up', () => {
  let upstream: HoldingServer;
  let gw: TestGateway;

  before(async () => {
    upstream = await startHoldingServer();
    gw = await startTestGateway({ connections: { held: { http: { url: upstream.url, protocol: '2025-11-25' } } } });
  });
  after(async () => {
    await gw?.stop();
    await upstream?.stop();
  });

  it('leaves no listener behind: its subscription is undone and the pooled session can be reaped', async () => {
    const url = gw.mcp('held');
    const body = JSON.stringify(modernBody('subscriptions/listen', { notifications: { resourceSubscriptions: ['test://a'] } }, 7));
    const flat = [['host', url.host], ...modernHeaders('subscriptions/listen'), ['authorization', `Bearer ${gw.token}`]].flat();
    const req = request(url, { method: 'POST', headers: flat as unknown as Record<string, string> });
    req.on('error', () => {});
    req.end(body);
    await waitFor(() => upstream.methods.includes('resources/subscribe'), 'the gateway subscribes upstream');
    const clientPort = req.socket!.localPort!;
    req.destroy();
    await waitFor(() => !gatewaySocketOpen(gw.gateway.port, clientPort), 'the gateway sees the client leave');
    upstream.release();
    await waitFor(() => upstream.methods.includes('resources/unsubscribe'), 'the subscription made for the departed client is undone');
    const pool = gw.gateway.modernPool;
    assert.equal(pool.size, 1);
    assert.equal(pool.reapIdle(Date.now() + 3_600_000), 1, 'no listen stream keeps the pooled session alive');
  });
});

describe('a caller that floods the modern edge with refused requests', () => {
  it('is paced by its request rate: past it the refusals are 429 and nothing more is recorded', async () => {
    const gw = await startTestGateway({
      limits: { principal: { requests: { perSecond: 0.001, burst: 3 } } },
      connections: { ev: { stdio: everythingStdio() } },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        // A header that disagrees with the body: refused before any session, and recorded.
        const body = JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { message: `flood-${i}` } }, i + 1));
        const answer = await rawRequest(gw.mcp('ev'), 'POST', [...modernHeaders('tools/call', 'get-sum'), ['authorization', `Bearer ${gw.token}`]], body);
        statuses.push(answer.status);
        if (answer.status === 429) assert.equal(answer.json?.id, i + 1, 'the 429 carries the request id');
      }
      assert.deepEqual(statuses, [400, 400, 400, 429, 429, 429]);
      const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
      try {
        const refused = (await store.listSessions({ connection: 'ev', limit: 100 })).filter((s) => s.edge === 'modern');
        assert.equal(refused.length, 3, 'only the refusals within the rate are recorded');
      } finally {
        await store.close();
      }
    } finally {
      await gw.stop();
    }
  });
});
