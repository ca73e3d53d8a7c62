import assert from 'node:assert/strict';
import { Agent, createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { noCredentials } from '../../src/scrub/credential-scrubber.js';
import { ModernHttpTransport } from '../../src/upstream/modern-http.js';

/**
 * The `server/discover` probe of an HTTP connection (protocol: auto) against servers that never give a verdict: one
 * that never answers, one that opens an SSE stream and keeps it alive without a response, one that answers 200 with
 * garbage. The probe ends with an error (not a cached verdict) instead of holding every session of the connection.
 */
describe('ModernHttpTransport.discover against a server that gives no verdict', () => {
  let server: Server;
  let base: string;
  const held: ServerResponse[] = [];
  const agent = new Agent({ keepAlive: true });

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      if (req.url === '/silent') return void held.push(res);
      if (req.url === '/garbage') return void res.writeHead(200, { 'content-type': 'application/json' }).end('<html>hello</html>');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': keep-alive\n\n');
      const beat = setInterval(() => res.write(': keep-alive\n\n'), 50);
      res.once('close', () => clearInterval(beat));
      held.push(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const res of held) res.destroy();
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const transport = (path: string) => new ModernHttpTransport(new URL(base + path), {}, agent, 1 << 20, noCredentials, () => undefined);

  for (const path of ['/silent', '/sse-without-answer']) {
    it(`${path}: the probe gives up with an error after its deadline`, async () => {
      const started = Date.now();
      await assert.rejects(transport(path).discover(300), /server\/discover: no answer within 300 ms/);
      assert.ok(Date.now() - started < 5_000);
    });
  }

  it('200 with a body that is no JSON-RPC: an error that says which setting to use', async () => {
    await assert.rejects(transport('/garbage').discover(5_000), /set protocol: 2025-11-25/);
  });
});
