import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EmptyResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { type RunningV2Server, startV2HttpServer, v2StdioCommand } from '../fixtures/v2-server.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * A 2026-07-28 server behind the gateway keeps the gateway's policy (a denied tool, masking), and what reaches it
 * carries headers generated from the body: whatever odd Mcp-* headers a client sends are never passed on.
 */

const plantedToken = `ghp_${'k3Y'.repeat(12)}`;

async function connect(gw: TestGateway, connection: string, headers: Record<string, string> = {}, capabilities = {}): Promise<Client> {
  const client = new Client({ name: 'policy-client', version: '1.0.0' }, { capabilities });
  await client.connect(
    new StreamableHTTPClientTransport(gw.mcp(connection), { requestInit: { headers: { Authorization: `Bearer ${gw.token}`, ...headers } } }),
  );
  return client;
}

function text(result: unknown): string {
  return (result as { content: Array<{ text: string }> }).content[0]?.text ?? '';
}

function calls(server: RunningV2Server, tool: string): Array<{ headers: Record<string, unknown>; body: { params: Record<string, unknown> } }> {
  return server.seen
    .map((s) => ({ headers: s.headers, body: JSON.parse(s.body) as { method: string; params: Record<string, unknown> } }))
    .filter((s) => s.body.method === 'tools/call' && s.body.params.name === tool);
}

describe('a 2026-07-28 upstream under policy', () => {
  let server: RunningV2Server;
  let gw: TestGateway;

  before(async () => {
    server = await startV2HttpServer({ legacy: 'reject' });
    gw = await startTestGateway({
      connections: {
        modern: { http: { url: server.url }, tools: { deny: ['slow'] } },
        pool: { stdio: { ...v2StdioCommand({ legacy: 'reject' }), processes: 2 } },
        pinned: { stdio: { ...everythingStdio(), protocol: '2026-07-28' } },
        legacy: { stdio: everythingStdio() },
      },
    });
  });

  after(async () => {
    await gw.stop();
    await server.stop();
  });

  it('regenerates Mcp-Method, Mcp-Name and Mcp-Param-* from the body, even before any tools/list and whatever the client sent', async () => {
    const odd = { 'Mcp-Method': 'tools/list', 'Mcp-Name': 'echo', 'Mcp-Param-Region': 'nowhere', 'Mcp-Param-Extra': 'x' };
    const client = await connect(gw, 'modern', odd);
    try {
      // No tools/list on this connection yet: the server refuses the missing Mcp-Param-Region with -32020 and the
      // gateway learns the tool's header parameters, then sends the call again.
      const result = await client.callTool({ name: 'region-query', arguments: { region: 'Zürich', query: 'q' } });
      assert.equal(text(result), 'region=Zürich query=q');
      const seen = calls(server, 'region-query');
      assert.equal(seen.length, 2, 'refused once for the missing header, then sent again');
      assert.equal(seen[0]!.headers['mcp-param-region'], undefined);
      const last = seen.at(-1)!;
      assert.equal(last.headers['mcp-method'], 'tools/call');
      assert.equal(last.headers['mcp-name'], 'region-query');
      assert.equal(last.headers['mcp-protocol-version'], '2026-07-28');
      assert.equal(last.headers['mcp-param-region'], `=?base64?${Buffer.from('Zürich').toString('base64')}?=`, 'non-ASCII travels base64');
      assert.equal(last.headers['mcp-param-extra'], undefined);
      for (const s of server.seen) {
        assert.notEqual(s.headers['mcp-param-region'], 'nowhere');
        assert.notEqual(s.headers['mcp-param-extra'], 'x');
      }
      const meta = last.body.params._meta as Record<string, unknown>;
      assert.deepEqual(meta['io.modelcontextprotocol/clientInfo'], { name: 'policy-client', version: '1.0.0' });
      assert.equal(meta['io.modelcontextprotocol/protocolVersion'], '2026-07-28');
    } finally {
      await client.close();
    }
  });

  it('hides and refuses a denied tool, and masks what the server answers', async () => {
    const client = await connect(gw, 'modern');
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(tools.includes('echo') && !tools.includes('slow'), `slow is denied: ${tools.join(', ')}`);
      const before = server.events.length;
      const refused = await client.callTool({ name: 'slow', arguments: { ms: 1 } }).then(
        (r) => (r.isError ? text(r) : 'answered'),
        (e: Error) => e.message,
      );
      assert.notEqual(refused, 'answered');
      assert.equal(server.events.length, before, 'the denied call never reached the server');
      const echoed = text(await client.callTool({ name: 'echo', arguments: { text: `token ${plantedToken}` } }));
      assert.ok(echoed.startsWith('echo: token '), echoed);
      assert.ok(!echoed.includes(plantedToken), `masked: ${echoed}`);
    } finally {
      await client.close();
    }
  });

  it("passes a typed error from the server's 4xx answer on as itself (-32601 with HTTP 404)", async () => {
    const client = await connect(gw, 'modern');
    try {
      await assert.rejects(client.request({ method: 'nothing/here', params: {} }, EmptyResultSchema), (e: Error & { code?: number }) => {
        assert.equal(e.code, -32601, e.message);
        return true;
      });
      const last = server.seen.at(-1)!;
      assert.equal(last.headers['mcp-method'], 'nothing/here');
    } finally {
      await client.close();
    }
  });

  it('refuses an input round that asks what the client did not declare, with -32021', async () => {
    const client = await connect(gw, 'modern');
    try {
      await assert.rejects(client.callTool({ name: 'ask', arguments: {} }), (e: Error & { code?: number }) => {
        assert.equal(e.code, -32021);
        assert.match(e.message, /elicitation/);
        return true;
      });
    } finally {
      await client.close();
    }
  });

  it('shares a bounded pool of stdio processes between sessions, and replaces one that dies', async () => {
    const a = await connect(gw, 'pool');
    const b = await connect(gw, 'pool');
    try {
      const first = text(await a.callTool({ name: 'pid', arguments: {} }));
      assert.equal(text(await b.callTool({ name: 'pid', arguments: {} })), first, 'an idle process serves the next session');
      const abort = new AbortController();
      const slow = a.callTool({ name: 'slow', arguments: { ms: 60_000 } }, undefined, { signal: abort.signal });
      // While the first process is busy, another starts (the pool holds two): the sessions do not wait on each other.
      let second = first;
      for (let i = 0; i < 50 && second === first; i++) second = text(await b.callTool({ name: 'pid', arguments: {} }));
      assert.notEqual(second, first);
      abort.abort();
      await assert.rejects(slow);
      const pids = new Set<string>();
      for (let i = 0; i < 6; i++) pids.add(text(await b.callTool({ name: 'pid', arguments: {} })));
      assert.ok(
        [...pids].every((p) => p === first || p === second),
        'no third process',
      );
      // A process that dies fails its call; the next call is served by a live or a new process.
      const died = await a.callTool({ name: 'die', arguments: {} }).then(
        () => 'answered',
        (e: Error) => e.message,
      );
      assert.notEqual(died, 'answered');
      assert.match(text(await a.callTool({ name: 'pid', arguments: {} })), /^[0-9]+$/);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('auto finds a legacy server legacy; protocol: 2026-07-28 on one fails with an error that says what to set', async () => {
    const client = await connect(gw, 'legacy');
    try {
      assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'old' } })), 'Echo: old');
    } finally {
      await client.close();
    }
    await assert.rejects(connect(gw, 'pinned'), (e: Error) => {
      assert.match(e.message, /protocol: 2026-07-28.*set protocol: auto or 2025-11-25/s);
      return true;
    });
  });
});
