import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type RunningServer, startEverything } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * What reaches an HTTP upstream: the connection's configured headers (secrets resolved from references),
 * and nothing of the client's own, above all not its Authorization header.
 */

/** A pass-through proxy in front of server-everything that keeps every request's headers. */
function headerRecorder(target: URL): Promise<{ server: Server; url: string; seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    const upstream = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`, seen })),
  );
}

describe('headers sent upstream', () => {
  const secret = 'sk-test-4f9a8b7c6d5e4f3a2b1c';
  let everything: RunningServer;
  let recorder: Awaited<ReturnType<typeof headerRecorder>>;
  let gw: TestGateway;

  before(async () => {
    everything = await startEverything('streamableHttp');
    recorder = await headerRecorder(new URL(everything.url));
    process.env.PORTCULLIS_TEST_UPSTREAM_TOKEN = secret;
    gw = await startTestGateway({
      connections: {
        remote: {
          http: {
            url: recorder.url,
            headers: { Authorization: 'Bearer ${env:PORTCULLIS_TEST_UPSTREAM_TOKEN}', 'X-Team': 'platform' },
          },
        },
      },
    });
  });

  after(async () => {
    await gw.stop();
    recorder.server.close();
    await everything.stop();
    delete process.env.PORTCULLIS_TEST_UPSTREAM_TOKEN;
  });

  it("injects the configured headers and never forwards the client's Authorization or other headers", async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('remote'), {
      requestInit: { headers: { Authorization: `Bearer ${gw.token}`, 'X-Client-Secret': 'client-only' } },
    });
    const client = new Client({ name: 'headers-test', version: '1.0.0' });
    await client.connect(transport);
    await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
    await transport.terminateSession();
    await client.close();

    assert.ok(recorder.seen.length >= 3, 'initialize, initialized, tools/call at least');
    for (const h of recorder.seen) {
      assert.equal(h.authorization, `Bearer ${secret}`);
      assert.equal(h['x-team'], 'platform');
      assert.equal(h['x-client-secret'], undefined);
    }
    assert.ok(!JSON.stringify(recorder.seen).includes(gw.token), "the client's own token never reaches the upstream");
  });

  it('never writes the secret value into a log line', () => {
    assert.ok(gw.log.lines.length > 0);
    assert.ok(!gw.log.text.includes(secret), 'secret absent from logs');
  });
});
