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
import { callApi } from '../helpers/api.js';

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
      connections: { ev: { stdio: everythingStdio(), access: { groups: ['testers'] } } },
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
      // A caller without access to the connection: each attempt is a 403, recorded only within its request rate.
      const outsider = await gw.tokenFor('outsider');
      for (let i = 0; i < 6; i++) {
        const body = JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { message: `outsider-${i}` } }, i + 1));
        const answer = await rawRequest(gw.mcp('ev'), 'POST', [...modernHeaders('tools/call', 'echo'), ['authorization', `Bearer ${outsider}`]], body);
        assert.equal(answer.status, 403);
      }
      const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
      try {
        const refused = (await store.listSessions({ connection: 'ev', limit: 100 })).filter((s) => s.edge === 'modern');
        assert.equal(refused.filter((s) => s.subject === 'tester').length, 3, 'only the refusals within the rate are recorded');
        assert.equal(refused.filter((s) => s.subject === 'outsider').length, 3, 'so are refused attempts of a caller without access');
      } finally {
        await store.close();
      }
    } finally {
      await gw.stop();
    }
  });
});

/**
 * A 2025-era Streamable HTTP server whose tool `ask` asks the client (elicitation/create) on the call's SSE stream,
 * then answers the call when the test says so, without ever cancelling what it asked (some servers give up so).
 */
interface AskingServer {
  url: string;
  /** The client responses it received (to its elicitation), by id. */
  responses: Array<{ id?: unknown; error?: unknown; result?: unknown }>;
  /** Answers the pending call without waiting for the elicitation's answer. */
  finish(): void;
  stop(): Promise<void>;
}

async function startAskingServer(): Promise<AskingServer> {
  const responses: AskingServer['responses'] = [];
  let finish: () => void = () => {};
  const server: Server = createServer((req, res) => {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const m = JSON.parse(body) as { id?: number | string; method?: string; error?: unknown; result?: unknown };
      if (m.method === undefined) responses.push(m);
      if (m.id === undefined || m.method === undefined) return void res.writeHead(202).end();
      const answer = (result: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
      if (m.method === 'initialize')
        return answer({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'asking', version: '1' } });
      if (m.method === 'tools/list') return answer({ tools: [{ name: 'ask', inputSchema: { type: 'object' } }] });
      if (m.method !== 'tools/call') return answer({});
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const ask = {
        jsonrpc: '2.0',
        id: 'ask-1',
        method: 'elicitation/create',
        params: { mode: 'form', message: 'Your name?', requestedSchema: { type: 'object', properties: {} } },
      };
      const args = (m as { params?: { arguments?: { atOnce?: boolean } } }).params?.arguments;
      const done = `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'gave up asking' }] } })}\n\n`;
      // One write: the server asks, and gives up on the answer at once.
      if (args?.atOnce === true) return void res.end(`event: message\ndata: ${JSON.stringify(ask)}\n\n${done}`);
      res.write(`event: message\ndata: ${JSON.stringify(ask)}\n\n`);
      finish = () =>
        res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'gave up asking' }] } })}\n\n`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    responses,
    finish: () => finish(),
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('a call that ends while its MRTR round is open', () => {
  let upstream: AskingServer;
  let gw: TestGateway;

  before(async () => {
    upstream = await startAskingServer();
    gw = await startTestGateway({ connections: { asks: { http: { url: upstream.url, protocol: '2025-11-25' } } } });
  });
  after(async () => {
    await gw?.stop();
    await upstream?.stop();
  });

  it("answers the server's unanswered request, so nothing stays pending on the pooled session", async () => {
    const caps = { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } };
    const body = JSON.stringify(modernBody('tools/call', { name: 'ask', arguments: {}, _meta: caps }, 5));
    const answer = await rawRequest(gw.mcp('asks'), 'POST', [...modernHeaders('tools/call', 'ask'), ['authorization', `Bearer ${gw.token}`]], body);
    assert.equal((answer.json?.result as { resultType?: string } | undefined)?.resultType, 'input_required', answer.body);
    upstream.finish();
    await waitFor(() => upstream.responses.length === 1, 'the gateway answers the elicitation the round still held');
    assert.equal(upstream.responses[0]!.id, 'ask-1');
    assert.ok(upstream.responses[0]!.error !== undefined, 'with an error: nobody answered it');
    await waitFor(() => [...gw.gateway.sessions.all()].every((s) => s.pendingRequests === 0), 'nothing pending');
    assert.equal(gw.gateway.modernPool.reapIdle(Date.now() + 3_600_000), 1, 'the pooled session can be reaped');
  });

  it("gives the round's retry the result the server sent while the client was away answering", async () => {
    const answer = await askCall(6, {});
    const round = answer.json?.result as { resultType?: string; requestState?: string } | undefined;
    assert.equal(round?.resultType, 'input_required', answer.body);
    const before = upstream.responses.length;
    upstream.finish();
    await waitFor(() => upstream.responses.length === before + 1, 'the server stopped waiting for its answer');
    const retried = await askCall(7, {}, { inputResponses: { 'r1-1': { action: 'decline' } }, requestState: round!.requestState });
    assert.equal(retried.json?.id, 7, retried.body);
    assert.match(JSON.stringify(retried.json?.result), /gave up asking/, 'the result, not a refusal of a round that ended');
  });

  it('delivers the result of a call the server answered while its round was being opened', async () => {
    // The server asks and answers in one write. Whether the gateway delivers the result at once or has opened the
    // round first (its state is sealed asynchronously), the client ends with the result: at once, or on its retry.
    const answer = await askCall(8, { atOnce: true });
    const round = answer.json?.result as { resultType?: string; requestState?: string } | undefined;
    const final =
      round?.resultType === 'input_required'
        ? await askCall(9, { atOnce: true }, { inputResponses: { 'r1-1': { action: 'decline' } }, requestState: round.requestState })
        : answer;
    assert.match(JSON.stringify(final.json?.result), /gave up asking/, `the result, not a round nobody can answer: ${final.body}`);
  });

  /** A tools/call of the asking server's tool, with `extra` params (a round's retry), as a raw 2026-07-28 POST. */
  function askCall(id: number, args: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    const caps = { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } };
    const body = JSON.stringify(modernBody('tools/call', { name: 'ask', arguments: args, ...extra, _meta: caps }, id));
    return rawRequest(gw.mcp('asks'), 'POST', [...modernHeaders('tools/call', 'ask'), ['authorization', `Bearer ${gw.token}`]], body);
  }
});

describe('a reviewed call that went on to an MRTR round', () => {
  it("is not taken over by the identical request sent again: the round stays its first client's to answer", async () => {
    const gw = await startTestGateway(
      {
        identity: { dev: { users: { tester: ['testers'], approver: ['approvers'] } } },
        rules: [{ name: 'review-ask', when: 'tool.name == "trigger-elicitation-request"', action: 'review', approvers: ['approvers'] }],
        connections: { ev: { stdio: everythingStdio(), tools: { pin: false } } },
      },
      { reviewPollMs: 100 },
    );
    const again = new AbortController();
    try {
      const approver = await gw.tokenFor('approver');
      const pending = async () =>
        (await callApi<{ reviews?: Array<{ id: string }> }>(gw.url, approver, 'GET', '/api/reviews?status=pending')).body.reviews ?? [];
      const caps = { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } };
      const params = { name: 'trigger-elicitation-request', arguments: {} };
      const headers = [...modernHeaders('tools/call', params.name), ['authorization', `Bearer ${gw.token}`]] as Array<[string, string]>;
      const first = rawRequest(gw.mcp('ev'), 'POST', headers, JSON.stringify(modernBody('tools/call', { ...params, _meta: caps }, 1)));
      await waitFor(async () => (await pending()).length === 1, 'the call is held for review');
      await callApi(gw.url, approver, 'POST', `/api/reviews/${(await pending())[0]!.id}/approve`, { note: 'ok' });
      const round = (await first).json?.result as { resultType: string; inputRequests: Record<string, unknown>; requestState: string };
      assert.equal(round.resultType, 'input_required');
      // The identical request again, without the state: a call of its own, not an attachment to the round's exchange.
      await fetch(gw.mcp('ev'), {
        method: 'POST',
        headers: Object.fromEntries(headers),
        body: JSON.stringify(modernBody('tools/call', { ...params, _meta: caps }, 2)),
        signal: again.signal,
      });
      const key = Object.keys(round.inputRequests)[0]!;
      const retried = await rawRequest(
        gw.mcp('ev'),
        'POST',
        headers,
        JSON.stringify(
          modernBody(
            'tools/call',
            { ...params, inputResponses: { [key]: { action: 'accept', content: { name: 'Ada Lovelace' } } }, requestState: round.requestState, _meta: caps },
            3,
          ),
        ),
      );
      assert.equal(retried.status, 200, retried.body);
      assert.match(JSON.stringify(retried.json?.result), /Ada Lovelace/);
    } finally {
      again.abort();
      await gw.stop();
    }
  });
});

describe('two requests of one principal sharing a pooled session', () => {
  it('each hears only its own progress, though both chose the same progress token', async () => {
    const gw = await startTestGateway({ sessions: { modernPoolSize: 1 }, connections: { ev: { stdio: everythingStdio() } } });
    try {
      const headers = [...modernHeaders('tools/call', 'trigger-long-running-operation'), ['authorization', `Bearer ${gw.token}`]] as Array<[string, string]>;
      const send = (id: number) =>
        rawRequest(
          gw.mcp('ev'),
          'POST',
          headers,
          JSON.stringify(
            modernBody('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 }, _meta: { progressToken: 'same' } }, id),
          ),
        );
      // A first request opens the one pooled session, so that the two below certainly share it.
      await send(9);
      const answers = await Promise.all([send(1), send(2)]);
      assert.equal(gw.gateway.modernPool.size, 1);
      for (const [i, a] of answers.entries()) {
        assert.equal(a.json?.id, i + 1, a.body);
        const progress = a.body.split('\n').filter((l) => l.startsWith('data:') && l.includes('notifications/progress'));
        assert.equal(progress.length, 4, `request ${i + 1} hears its own four steps: ${a.body}`);
        assert.ok(
          progress.every((l) => l.includes('"progressToken":"same"')),
          'under the token it chose',
        );
      }
    } finally {
      await gw.stop();
    }
  });
});

describe('a second client waiting on a reviewed call whose round then expires', () => {
  it('is told the call ended, rather than left waiting forever', async () => {
    const gw = await startTestGateway(
      {
        identity: { dev: { users: { tester: ['testers'], approver: ['approvers'] } } },
        sessions: { inputTimeout: '1s' },
        rules: [{ name: 'review-ask', when: 'tool.name == "trigger-elicitation-request"', action: 'review', approvers: ['approvers'] }],
        connections: { ev: { stdio: everythingStdio(), tools: { pin: false } } },
      },
      { reviewPollMs: 100 },
    );
    try {
      const approver = await gw.tokenFor('approver');
      const pending = async () =>
        (await callApi<{ reviews?: Array<{ id: string }> }>(gw.url, approver, 'GET', '/api/reviews?status=pending')).body.reviews ?? [];
      const caps = { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } };
      const params = { name: 'trigger-elicitation-request', arguments: {}, _meta: caps };
      const headers = [...modernHeaders('tools/call', params.name), ['authorization', `Bearer ${gw.token}`]] as Array<[string, string]>;
      const first = rawRequest(gw.mcp('ev'), 'POST', headers, JSON.stringify(modernBody('tools/call', params, 1)));
      await waitFor(async () => (await pending()).length === 1, 'the call is held for review');
      // Its headers come once it waits on the same review (an SSE stream).
      const second = await fetch(gw.mcp('ev'), {
        method: 'POST',
        headers: Object.fromEntries(headers),
        body: JSON.stringify(modernBody('tools/call', params, 2)),
      });
      assert.equal(second.headers.get('content-type'), 'text/event-stream');
      assert.equal((await pending()).length, 1, 'no second review');
      await callApi(gw.url, approver, 'POST', `/api/reviews/${(await pending())[0]!.id}/approve`, { note: 'ok' });
      assert.equal(((await first).json?.result as { resultType?: string } | undefined)?.resultType, 'input_required');
      // Nobody answers the round: it expires after inputTimeout, and the waiting client hears of it.
      const timeout = new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 10_000).unref());
      const answer = await Promise.race([second.text(), timeout]);
      assert.notEqual(answer, 'still waiting', 'the second client is answered');
      assert.match(answer, /"id":2,"error":\{[^}]*expired/);
    } finally {
      await gw.stop();
    }
  });
});
