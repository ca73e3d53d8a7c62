import assert from 'node:assert/strict';
import { Agent, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { noCredentials } from '../../src/scrub/credential-scrubber.js';
import { ModernHttpTransport } from '../../src/upstream/modern-http.js';

/**
 * limits.maxMessageSize on a 2026-07-28 HTTP upstream: an answer over the limit (a JSON body, an SSE event sent in
 * many chunks, a 4xx error body) fails its call with a reason, and nothing throws out of the stream's handlers.
 */
describe('ModernHttpTransport and limits.maxMessageSize', () => {
  let server: Server;
  let base: string;
  const agent = new Agent({ keepAlive: true });
  const limit = 4096;
  const big = 'x'.repeat(64 * 1024);

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/json')
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { big } }));
        if (req.url === '/error')
          return void res
            .writeHead(400, { 'content-type': 'application/json' })
            .end(JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: big } }));
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // One event, its data written in many small chunks, then a valid answer that must not be taken.
        res.write('event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"big":"');
        let i = 0;
        const more = () => {
          if (i++ < 64) return void res.write('x'.repeat(1024), () => setImmediate(more));
          res.end(`"}}\n\nevent: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n`);
        };
        more();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  for (const path of ['/json', '/sse', '/error']) {
    it(`${path}: the call fails with a reason, no message is delivered`, async () => {
      const transport = new ModernHttpTransport(new URL(base + path), {}, agent, limit, noCredentials, () => undefined);
      const delivered: unknown[] = [];
      const reason = await new Promise<string>((resolve) => {
        transport.call({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 't' } }, { message: (m) => delivered.push(m), failed: resolve });
      });
      assert.match(reason, path === '/sse' ? /max buffer size of 4096/ : /larger than 4096 bytes \(limits\.maxMessageSize\)/);
      assert.deepEqual(delivered, []);
    });
  }
});
