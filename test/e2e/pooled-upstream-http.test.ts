import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { type CallToolResult, ElicitRequestSchema, ElicitResultSchema } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod/v4';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `upstreamSessions: pooled` with a Streamable HTTP server: 2025-era client sessions (the v1 SDK client) of one principal
 * share one upstream session of a real SDK server, each answered its own; and a server that withdraws its own request
 * to a client (notifications/cancelled for its elicitation) reaches the client it asked, and no other client of the link.
 */

function text(result: unknown): string {
  return ((result as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

/** A v1 SDK server over stateful Streamable HTTP: `echo`, and `ask-then-withdraw`, which asks its client and withdraws the question. */
async function startWithdrawingServer(): Promise<{ url: string; sessions: () => number; stop(): Promise<void> }> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  let opened = 0;
  const build = () => {
    const server = new McpServer({ name: 'withdrawing', version: '1.0.0' });
    server.registerTool('echo', { description: 'Echoes', inputSchema: { message: z.string() } }, async ({ message }) => ({
      content: [{ type: 'text', text: `Echo: ${message}` }],
    }));
    server.registerTool('ask-then-withdraw', { description: 'Asks its client, then withdraws the question' }, async (extra) => {
      const withdraw = new AbortController();
      const asked = extra.sendRequest(
        { method: 'elicitation/create', params: { message: 'Your name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } } },
        ElicitResultSchema,
        { signal: withdraw.signal },
      );
      // Withdrawn after it was sent: the request and its cancellation travel in that order on the call's stream.
      setImmediate(() => withdraw.abort('the server no longer needs the answer'));
      const outcome = await asked.then(
        () => 'answered',
        () => 'withdrawn',
      );
      return { content: [{ type: 'text', text: outcome }] };
    });
    return server;
  };
  const http: HttpServer = createServer(async (req, res) => {
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? transports.get(id) : undefined;
    if (transport === undefined) {
      if (id !== undefined) {
        res.writeHead(404).end();
        return;
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => {
          opened++;
          transports.set(sid, transport!);
        },
      });
      await build().connect(transport);
    }
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    sessions: () => opened,
    stop: async () => {
      for (const t of transports.values()) await t.close().catch(() => {});
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

describe('pooled upstream sessions over Streamable HTTP', () => {
  let gw: TestGateway;
  let upstream: Awaited<ReturnType<typeof startWithdrawingServer>>;
  const clients: Array<{ client: Client; transport: StreamableHTTPClientTransport }> = [];
  /** What each client's elicitation handler saw: asked, and whether the server withdrew the question. */
  const seen = new Map<Client, { asked: number; withdrawn: number }>();

  async function connect(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const client = new Client({ name: 'pooled-http', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
    const mine = { asked: 0, withdrawn: 0 };
    seen.set(client, mine);
    // A person who has not answered yet: the handler waits, and hears of a withdrawal through its signal.
    client.setRequestHandler(ElicitRequestSchema, (_req, extra) => {
      mine.asked++;
      return new Promise(() => extra.signal.addEventListener('abort', () => mine.withdrawn++));
    });
    const transport = new StreamableHTTPClientTransport(gw.mcp('remote'), { requestInit: { headers: gw.auth } });
    await client.connect(transport);
    const c = { client, transport };
    clients.push(c);
    return c;
  }

  before(async () => {
    upstream = await startWithdrawingServer();
    gw = await startTestGateway({
      sessions: { modernIdleTimeout: '1s' },
      connections: { remote: { http: { url: upstream.url }, upstreamSessions: 'pooled', tools: { pin: false } } },
    });
  });
  after(async () => {
    for (const c of clients) {
      await c.transport.terminateSession().catch(() => {});
      await c.client.close().catch(() => {});
    }
    await gw?.stop();
    await upstream?.stop();
  });

  it('serves two client sessions of one principal from one upstream session, each its own answers', async () => {
    const a = await connect();
    const b = await connect();
    assert.notEqual(a.transport.sessionId, b.transport.sessionId);
    assert.equal(a.client.getServerVersion()?.name, 'withdrawing');
    const [ea, eb] = await Promise.all([
      a.client.callTool({ name: 'echo', arguments: { message: 'from a' } }),
      b.client.callTool({ name: 'echo', arguments: { message: 'from b' } }),
    ]);
    assert.equal(text(ea), 'Echo: from a');
    assert.equal(text(eb), 'Echo: from b');
    assert.equal(gw.gateway.sharedUpstreams.size, 1, 'one pooled upstream session');
    assert.equal(upstream.sessions(), 1, 'the server saw one session for both clients');
  });

  it("a server's withdrawal of its own request reaches the client it asked, and no other", async () => {
    const [a, b] = clients;
    const withdrawn = await a!.client.callTool({ name: 'ask-then-withdraw', arguments: {} });
    assert.equal(text(withdrawn), 'withdrawn');
    await waitFor(() => seen.get(a!.client)!.withdrawn === 1, "a's handler told of the withdrawal");
    assert.equal(seen.get(a!.client)!.asked, 1);
    assert.deepEqual(seen.get(b!.client), { asked: 0, withdrawn: 0 }, 'b was neither asked nor told');
    // The recordings say the same: the cancellation was delivered in a's session only.
    const store = gw.gateway.recorder!.store;
    const cancelledTo = async (sessionId: string) =>
      (await allEvents(store, sessionId)).filter(
        (e) => e.kind === 'message' && e.direction === 'toClient' && e.boundary !== 'received' && e.payload.includes('"notifications/cancelled"'),
      ).length;
    await waitFor(async () => (await cancelledTo(a!.transport.sessionId!)) === 1, "the cancellation recorded in a's session");
    assert.equal(await cancelledTo(b!.transport.sessionId!), 0);
    // b is still served on the same link.
    assert.equal(text(await b!.client.callTool({ name: 'echo', arguments: { message: 'still here' } })), 'Echo: still here');
    assert.equal(upstream.sessions(), 1);
  });
});
