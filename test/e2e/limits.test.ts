import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Limits (docs/security.md, Limits) over real HTTP, against a real stdio server: a principal over a limit is
 * refused (429 + Retry-After before a session exists, the JSON-RPC error -31029 inside one), the refusal is recorded
 * and logged once per burst, and another principal's calls at the same time succeed.
 */

const rateLimited = -31029;

/**
 * A stdio MCP server (CommonJS, for `node -e`): `echo` and `add` answer at once; `wait` answers when the client sends
 * notifications/roots/list_changed (so a test holds a request in flight for as long as it needs, without timing).
 */
const server = `
const rl = require('node:readline').createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
const waiting = [];
const tool = (name) => ({ name, inputSchema: { type: 'object' } });
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method === 'initialize') send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'limits', version: '1' } } });
  else if (m.method === 'tools/list') send({ jsonrpc: '2.0', id: m.id, result: { tools: [tool('echo'), tool('add'), tool('wait')] } });
  else if (m.method === 'tools/call' && m.params.name === 'wait') waiting.push(m.id);
  else if (m.method === 'tools/call') send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: m.params.name + ' done' }] } });
  else if (m.method === 'notifications/roots/list_changed') for (const id of waiting.splice(0)) send({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'waited' }] } });
  else if (m.id !== undefined) send({ jsonrpc: '2.0', id: m.id, result: {} });
});
`;

const connection = (limits: Record<string, unknown> = {}) => ({ stdio: { command: process.execPath, args: ['-e', server] }, tools: { pin: false }, limits });

async function gateway(limits: Record<string, unknown>, connectionLimits: Record<string, unknown> = {}): Promise<TestGateway> {
  return startTestGateway({ connections: { tools: connection(connectionLimits) }, limits });
}

const initializeBody = {
  jsonrpc: '2.0',
  id: 'init',
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

/** An initialize over raw HTTP: the response as it came. */
function initialize(gw: TestGateway, token: string): Promise<Response> {
  return fetch(gw.mcp('tools'), {
    method: 'POST',
    headers: { ...mcpHeaders, authorization: `Bearer ${token}` },
    body: JSON.stringify(initializeBody),
    signal: AbortSignal.timeout(20_000),
  });
}

/** Posts one message on a session; the JSON-RPC answer of a request (JSON, or the first SSE data line), or undefined. */
async function post(
  gw: TestGateway,
  token: string,
  sessionId: string,
  body: unknown,
): Promise<{
  status: number;
  message?: { result?: unknown; error?: { code: number; message: string; data?: { limit?: string; retryAfterSeconds?: number } } };
}> {
  const res = await fetch(gw.mcp('tools'), {
    method: 'POST',
    headers: { ...mcpHeaders, authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  if (text === '') return { status: res.status };
  const json = res.headers.get('content-type')?.startsWith('text/event-stream')
    ? text
        .split('\n')
        .find((l) => l.startsWith('data: {'))!
        .slice(6)
    : text;
  return { status: res.status, message: JSON.parse(json) };
}

const callTool = (id: number | string, name: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

/** The official SDK client as `user`: its calls are what "unaffected" means. */
async function sdkClient(gw: TestGateway, user: string): Promise<{ client: Client; close(): Promise<void> }> {
  const transport = new StreamableHTTPClientTransport(gw.mcp('tools'), { requestInit: { headers: { authorization: `Bearer ${await gw.tokenFor(user)}` } } });
  const client = new Client({ name: user, version: '1' });
  await client.connect(transport);
  return {
    client,
    close: async () => {
      await transport.terminateSession().catch(() => {});
      await client.close();
    },
  };
}

async function assertEchoWorks(gw: TestGateway, user: string, calls = 3): Promise<void> {
  const other = await sdkClient(gw, user);
  try {
    for (let i = 0; i < calls; i++) assert.match(JSON.stringify(await other.client.callTool({ name: 'echo', arguments: {} })), /echo done/);
  } finally {
    await other.close();
  }
}

const limitLogLines = (gw: TestGateway, limit: string) => gw.log.lines.filter((l) => String(l.msg).startsWith('limit reached: refusing') && l.limit === limit);

describe('limits: sessions', () => {
  let gw: TestGateway;
  before(async () => {
    // Reclaiming idle sessions off: this test holds idle sessions and expects the limit to refuse.
    gw = await gateway({ principal: { sessions: 2 }, reclaimIdleAfter: 'off' }, { stdioProcesses: 3 });
  });
  after(() => gw?.stop());

  it('a principal over limits.principal.sessions gets 429 with Retry-After; the refusal is recorded and logged once; others open and call', async () => {
    const mine = [await rawInitialize(gw.mcp('tools'), gw.auth), await rawInitialize(gw.mcp('tools'), gw.auth)];
    for (let i = 0; i < 3; i++) {
      const res = await initialize(gw, gw.token);
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '10');
      const body = (await res.json()) as { id: unknown; error: { code: number; message: string } };
      assert.equal(body.id, 'init');
      assert.equal(body.error.code, rateLimited);
      assert.match(body.error.message, /limits\.principal\.sessions: 2/);
    }
    const sse = await fetch(gw.sse('tools'), { headers: { accept: 'text/event-stream', ...gw.auth }, signal: AbortSignal.timeout(20_000) });
    assert.equal(sse.status, 429, 'the legacy SSE edge refuses before its stream opens');
    assert.ok(Number(sse.headers.get('retry-after')) > 0);
    await sse.body?.cancel();

    await assertEchoWorks(gw, 'other');

    const store = gw.gateway.recorder!.store;
    const refused = (await store.listSessions({ subject: 'tester', limit: 20 })).filter((r) => /^refused: /.test(r.closeReason ?? ''));
    assert.equal(refused.length, 1, 'the first refusal of the burst is recorded');
    assert.match(refused[0]!.closeReason!, /limits\.principal\.sessions/);
    const verdicts = (await allEvents(store, refused[0]!.id))
      .filter((e) => e.kind === 'verdict')
      .map((e) => JSON.parse(e.payload) as { stage: string; reason: string });
    assert.deepEqual(
      verdicts.map((v) => v.stage),
      ['limits'],
    );
    assert.equal(limitLogLines(gw, 'limits.principal.sessions').length, 1, 'logged once for the burst');
    assert.ok(!gw.log.lines.some((l) => l.msg === 'session could not open'), 'no log line per refusal');

    // A session that ends gives its place back.
    const del = await fetch(gw.mcp('tools'), { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': mine[0]!, 'mcp-protocol-version': '2025-11-25' } });
    assert.equal(del.status, 200);
    await waitFor(() => gw.gateway.limits.usage.sessions === 1, 'the ended session to give its place back');
    const again = await initialize(gw, gw.token);
    assert.equal(again.status, 200);
    await again.text();
  });
});

describe('limits: stdio processes', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ principal: { stdioProcesses: 1 }, reclaimIdleAfter: 'off' }, { stdioProcesses: 2 });
  });
  after(() => gw?.stop());

  it('per principal and per connection, whoever asks; an ended session frees its process', async () => {
    const first = await rawInitialize(gw.mcp('tools'), gw.auth);
    const mine = await initialize(gw, gw.token);
    assert.equal(mine.status, 429);
    assert.match(((await mine.json()) as { error: { message: string } }).error.message, /limits\.principal\.stdioProcesses: 1/);
    await rawInitialize(gw.mcp('tools'), { authorization: `Bearer ${await gw.tokenFor('other')}` });
    const res = await initialize(gw, await gw.tokenFor('outsider'));
    assert.equal(res.status, 429);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /connections\.tools\.limits\.stdioProcesses: 2/);
    assert.equal([...gw.gateway.sessions.all()].length, 2, 'no third server process was started');
    await fetch(gw.mcp('tools'), { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': first, 'mcp-protocol-version': '2025-11-25' } });
    await waitFor(() => gw.gateway.limits.usage.sessions === 1, 'the ended session to give its process back');
    const later = await initialize(gw, await gw.tokenFor('outsider'));
    assert.equal(later.status, 200);
    await later.text();
  });
});

describe('limits: idle sessions make room', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ principal: { stdioProcesses: 2 } });
  });
  after(() => gw?.stop());

  /** A session with a call the server holds until released: busy, so never reclaimed. */
  async function busySession(): Promise<{ id: string; release(): Promise<void> }> {
    const id = await rawInitialize(gw.mcp('tools'), gw.auth);
    const answered = post(gw, gw.token, id, callTool(7, 'wait'));
    await waitFor(() => gw.gateway.sessions.get(id)?.pendingRequests === 1, 'the held call to reach the server');
    return {
      id,
      release: async () => {
        await post(gw, gw.token, id, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
        assert.match(JSON.stringify((await answered).message?.result), /waited/);
      },
    };
  }

  it('at limits.principal.stdioProcesses the least recently used idle session is closed for a new one; busy ones never', async () => {
    const busy = await busySession();
    const idle = await rawInitialize(gw.mcp('tools'), gw.auth);
    // Quiet for longer than limits.reclaimIdleAfter (1s by default).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const fresh = await initialize(gw, gw.token);
    assert.equal(fresh.status, 200, 'the idle session made room');
    await fresh.text();
    const store = gw.gateway.recorder!.store;
    await waitFor(async () => (await store.getSession(idle))?.status === 'closed', 'the reclaimed session to be sealed');
    assert.match((await store.getSession(idle))!.closeReason!, /^reclaimed: idle, and its place under limits\.principal\.stdioProcesses was needed/);
    assert.ok(gw.gateway.sessions.get(busy.id)?.isOpen, 'the busy session goes on');

    // Both places now held by sessions with a call in flight: the limit refuses, whatever the time.
    const newest = fresh.headers.get('mcp-session-id')!;
    const answered = post(gw, gw.token, newest, callTool(8, 'wait'));
    await waitFor(() => gw.gateway.sessions.get(newest)?.pendingRequests === 1, 'the second held call');
    const refused = await initialize(gw, gw.token);
    assert.equal(refused.status, 429);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /limits\.principal\.stdioProcesses: 2/);
    await busy.release();
    await post(gw, gw.token, newest, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
    assert.match(JSON.stringify((await answered).message?.result), /waited/);
  });
});

describe('limits: the defaults against a flood of sessions', () => {
  let gw: TestGateway;
  let echo: EchoServer;
  before(async () => {
    echo = await startEchoServer();
    // The defaults, but for reclaiming idle sessions: on a slow machine the flood's first sessions could turn idle
    // before its last ones arrive, and make room for them (the next test shows that).
    gw = await startTestGateway({ connections: { remote: { http: { url: echo.url }, tools: { pin: false } } }, limits: { reclaimIdleAfter: 'off' } });
  });
  after(async () => {
    await gw?.stop();
    await echo?.stop();
  });

  it('one principal opening 100 sessions at once gets most refused with 429; another opens and calls meanwhile', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await fetch(gw.mcp('remote'), {
          method: 'POST',
          headers: { ...mcpHeaders, ...gw.auth },
          body: JSON.stringify(initializeBody),
          signal: AbortSignal.timeout(30_000),
        });
        await res.text();
        return res.status;
      }),
    );
    const opened = attempts.filter((s) => s === 200).length;
    assert.equal(opened + attempts.filter((s) => s === 429).length, 100, `only 200 or 429: ${attempts.join(',')}`);
    assert.ok(opened >= 1 && opened <= 64, `opened ${opened}, at most limits.principal.sessions`);
    const other = await rawInitialize(gw.mcp('remote'), { authorization: `Bearer ${await gw.tokenFor('other')}` });
    const res = await fetch(gw.mcp('remote'), {
      method: 'POST',
      headers: { ...mcpHeaders, authorization: `Bearer ${await gw.tokenFor('other')}`, 'mcp-session-id': other, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify(callTool(1, 'echo')),
    });
    assert.match(await res.text(), /Echo: /);
  });
});

describe('limits: request rate', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ principal: { requests: { perSecond: 0.001, burst: 4 } } });
  });
  after(() => gw?.stop());

  it('over limits.principal.requests: the JSON-RPC error inside the session, recorded; then 429 before the session while the burst lasts; another principal calls on', async () => {
    const token = await gw.tokenFor('tester');
    const session = await rawInitialize(gw.mcp('tools'), gw.auth);
    for (let i = 1; i <= 4; i++)
      assert.deepEqual((await post(gw, token, session, callTool(i, 'echo'))).message?.result, { content: [{ type: 'text', text: 'echo done' }] });
    const refused = await post(gw, token, session, callTool(5, 'echo'));
    assert.equal(refused.status, 200);
    assert.equal(refused.message?.error?.code, rateLimited);
    assert.equal(refused.message?.error?.data?.limit, 'limits.principal.requests');
    assert.ok((refused.message?.error?.data?.retryAfterSeconds ?? 0) >= 1);
    // The client keeps sending: refused at the edge, before its session parses or records anything.
    for (const id of [6, 7]) {
      const res = await fetch(gw.mcp('tools'), {
        method: 'POST',
        headers: { ...mcpHeaders, authorization: `Bearer ${token}`, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify(callTool(id, 'echo')),
      });
      assert.equal(res.status, 429);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      const body = (await res.json()) as { id: unknown; error: { code: number; message: string } };
      assert.equal(body.id, id);
      assert.equal(body.error.code, rateLimited);
      assert.match(body.error.message, /limits\.principal\.requests/);
    }
    assert.equal((await post(gw, token, session, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' })).status, 202, 'notifications still pass');

    await assertEchoWorks(gw, 'other');

    const events = await allEvents(gw.gateway.recorder!.store, session);
    const verdicts = events
      .filter((e) => e.kind === 'verdict')
      .map((e) => JSON.parse(e.payload) as { stage: string; messageId?: unknown; details?: { limit?: string } });
    assert.deepEqual(
      verdicts.filter((v) => v.stage === 'limits').map((v) => [v.messageId, v.details?.limit]),
      [[5, 'limits.principal.requests']],
      'the first refusal of the burst is recorded; the ones refused at the edge are counted',
    );
    assert.ok(!events.some((e) => e.payload.includes('"id":6')), 'a request refused at the edge never reached the session');
    assert.equal(limitLogLines(gw, 'limits.principal.requests').length, 1);
  });
});

describe('limits: on the legacy SSE stream', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ principal: { requests: { perSecond: 0.001, burst: 2 } } });
  });
  after(() => gw?.stop());

  it('a request over the rate gets the JSON-RPC error on the stream; the session goes on for another principal', async () => {
    const transport = new SSEClientTransport(gw.sse('tools'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'legacy', version: '1' });
    await client.connect(transport);
    try {
      for (let i = 0; i < 2; i++) assert.match(JSON.stringify(await client.callTool({ name: 'echo', arguments: {} })), /echo done/);
      await assert.rejects(client.callTool({ name: 'echo', arguments: {} }), (err: Error & { code?: number }) => {
        assert.equal(err.code, rateLimited);
        assert.match(err.message, /limits\.principal\.requests/);
        return true;
      });
      // Still over it: the next POST is refused before the stream carries anything.
      await assert.rejects(client.callTool({ name: 'echo', arguments: {} }), /429|Too Many Requests/);
    } finally {
      await client.close();
    }
    await assertEchoWorks(gw, 'other', 2);
  });
});

describe('limits: requests in flight', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ principal: { requestsInFlight: 1 } });
  });
  after(() => gw?.stop());

  it('over limits.principal.requestsInFlight: refused while one waits, admitted once it is answered or cancelled', async () => {
    const token = await gw.tokenFor('outsider');
    const session = await rawInitialize(gw.mcp('tools'), { authorization: `Bearer ${token}` });
    const waiting = post(gw, token, session, callTool('w1', 'wait'));
    await waitFor(() => gw.gateway.limits.usage.requestsInFlight === 1, 'the wait call to be in flight');
    const refused = await post(gw, token, session, callTool('e1', 'echo'));
    assert.equal(refused.message?.error?.code, rateLimited);
    assert.equal(refused.message?.error?.data?.limit, 'limits.principal.requestsInFlight');
    const verdicts = (await allEvents(gw.gateway.recorder!.store, session))
      .filter((e) => e.kind === 'verdict')
      .map((e) => JSON.parse(e.payload) as { stage: string; messageId?: unknown });
    assert.deepEqual(
      verdicts.filter((v) => v.stage === 'limits').map((v) => v.messageId),
      ['e1'],
      'the refusal is recorded',
    );
    assert.equal((await post(gw, token, session, callTool('e1b', 'echo'))).status, 429, 'while the burst lasts and the call still waits: refused at the edge');
    await assertEchoWorks(gw, 'other');
    assert.equal((await post(gw, token, session, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' })).status, 202);
    assert.match(JSON.stringify((await waiting).message?.result), /waited/);
    await waitFor(() => gw.gateway.limits.usage.requestsInFlight === 0, 'the answered call to leave');
    assert.match(JSON.stringify((await post(gw, token, session, callTool('e2', 'echo'))).message?.result), /echo done/);

    // A cancelled request is over for its client too.
    const controller = new AbortController();
    const cancelled = fetch(gw.mcp('tools'), {
      method: 'POST',
      headers: { ...mcpHeaders, authorization: `Bearer ${token}`, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify(callTool('w2', 'wait')),
      signal: controller.signal,
    }).catch(() => undefined);
    await waitFor(() => gw.gateway.limits.usage.requestsInFlight === 1, 'the second wait call to be in flight');
    await post(gw, token, session, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'w2', reason: 'test' } });
    controller.abort();
    await cancelled;
    assert.match(JSON.stringify((await post(gw, token, session, callTool('e3', 'echo'))).message?.result), /echo done/);
  });
});

describe('limits: per tool', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({}, { tools: { add: { perSecond: 0.001, burst: 1 } } });
  });
  after(() => gw?.stop());

  it('per tool: connections.<name>.limits.tools paces the matching tool; other tools go on', async () => {
    const token = await gw.tokenFor('other');
    const session = await rawInitialize(gw.mcp('tools'), { authorization: `Bearer ${token}` });
    assert.match(JSON.stringify((await post(gw, token, session, callTool(1, 'add'))).message?.result), /add done/);
    const refused = await post(gw, token, session, callTool(2, 'add'));
    assert.equal(refused.message?.error?.code, rateLimited);
    assert.equal(refused.message?.error?.data?.limit, 'connections.tools.limits.tools.add');
    const verdicts = (await allEvents(gw.gateway.recorder!.store, session))
      .filter((e) => e.kind === 'verdict')
      .map((e) => JSON.parse(e.payload) as { stage: string; messageId?: unknown });
    assert.deepEqual(
      verdicts.filter((v) => v.stage === 'limits').map((v) => v.messageId),
      [2],
      'the refusal is recorded',
    );
    assert.match(JSON.stringify((await post(gw, token, session, callTool(3, 'echo'))).message?.result), /echo done/);
    const tester = await rawInitialize(gw.mcp('tools'), gw.auth);
    assert.match(JSON.stringify((await post(gw, gw.token, tester, callTool(1, 'add'))).message?.result), /add done/, 'another principal has its own allowance');
  });
});

describe('limits: unauthenticated requests', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ unauthenticated: { perAddress: { perSecond: 0.001, burst: 5 } } });
  });
  after(() => gw?.stop());

  it('bad tokens from one address: 401 until its allowance is spent, then 429 before any verification; a verified token goes on', async () => {
    // Verified once: known from then on.
    const session = await rawInitialize(gw.mcp('tools'), gw.auth);
    // The tester's own token with its signature's last byte changed: certainly invalid.
    const [head, payload, signature] = gw.token.split('.') as [string, string, string];
    const bad = `${head}.${payload}.${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await initialize(gw, bad);
      statuses.push(res.status);
      if (res.status === 429) {
        assert.ok(Number(res.headers.get('retry-after')) >= 1);
        assert.equal(((await res.json()) as { error: { code: number } }).error.code, rateLimited);
      } else await res.text();
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    const noToken = await fetch(gw.mcp('tools'), { method: 'POST', headers: mcpHeaders, body: JSON.stringify(initializeBody) });
    assert.equal(noToken.status, 429);
    await noToken.text();
    // The API's bearer-token sign-in sits behind the same gate, and says so the same way.
    for (const path of ['/api/sessions', '/api/reviews']) {
      const api = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${bad}` } });
      assert.equal(api.status, 429, path);
      assert.ok(Number(api.headers.get('retry-after')) >= 1, `${path} says when to retry`);
      await api.text();
    }
    assert.equal(gw.log.lines.filter((l) => l.msg === 'request not authenticated').length, 5, 'only the first five were verified (and logged)');
    assert.equal(limitLogLines(gw, 'limits.unauthenticated.perAddress').length, 1);
    // The signed-in user on the same address is not locked out.
    assert.match(JSON.stringify((await post(gw, gw.token, session, callTool(1, 'echo'))).message?.result), /echo done/);
  });
});
