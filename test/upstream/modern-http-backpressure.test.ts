import assert from 'node:assert/strict';
import { Agent, createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { JsonRpcMessage } from '../../src/protocol/jsonrpc.js';
import { noCredentials } from '../../src/scrub/credential-scrubber.js';
import { ModernHttpTransport } from '../../src/upstream/modern-http.js';
import { ModernUpstream } from '../../src/upstream/modern-upstream.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Backpressure on a 2026-07-28 HTTP upstream: a session paused for its slow client stops reading its calls' answers
 * (the bytes wait in the socket, and the server on its writes), and reads on once resumed.
 */
describe('ModernUpstream over HTTP: pause and resume', () => {
  let server: Server;
  let url: URL;
  let open: ServerResponse | undefined;
  const agent = new Agent({ keepAlive: true });
  const event = (m: unknown) => `event: message\ndata: ${JSON.stringify(m)}\n\n`;

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const m = JSON.parse(body) as { id: number; method: string };
        if (m.method !== 'tools/call')
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} }));
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(event({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'first' } }));
        (res as ServerResponse & { requestId?: number }).requestId = m.id;
        open = res;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
  });

  after(async () => {
    open?.destroy();
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('holds what the server sends while paused, and delivers it after resume', async () => {
    const transport = new ModernHttpTransport(url, {}, agent, 1 << 20, noCredentials, () => undefined);
    const upstream = new ModernUpstream({
      version: '2026-07-28',
      discover: { supportedVersions: ['2026-07-28'], capabilities: { tools: {} }, serverInfo: { name: 's', version: '1' } },
      transport,
      toolHeaders: new Map(),
    });
    const out: JsonRpcMessage[] = [];
    upstream.onmessage = (m) => out.push(m);
    const send = (m: Record<string, unknown>) => upstream.send(m as unknown as JsonRpcMessage, JSON.stringify(m));
    await send({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
    });
    await send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: {} } });
    const has = (what: (m: JsonRpcMessage) => boolean) => out.some(what);
    const second = (m: JsonRpcMessage) => 'method' in m && m.params?.data === 'second';
    const answered = (m: JsonRpcMessage) => 'id' in m && m.id === 1;
    await waitFor(() => has((m) => 'method' in m && m.params?.data === 'first'), 'the first notification');

    upstream.pause();
    const socket = Object.values(agent.sockets).flat()[0]!;
    const readBefore = socket.bytesRead;
    const res = open!;
    res.write(event({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'second' } }));
    res.end(event({ jsonrpc: '2.0', id: (res as ServerResponse & { requestId?: number }).requestId, result: { content: [] } }));
    // The bytes reached the gateway's process; an unpaused stream would have delivered them by now.
    await waitFor(() => socket.bytesRead > readBefore, 'the bytes at the socket');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(has(second) || has(answered), false, 'nothing is read while paused');

    upstream.resume();
    await waitFor(() => has(second) && has(answered), 'the rest, once resumed');
    await upstream.close();
  });
});
