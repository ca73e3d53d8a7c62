import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode } from '../../src/protocol/jsonrpc.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Bad input at the HTTP edge, against a real gateway in front of server-everything: each is refused with the
 * right status and a JSON-RPC error body, leaves a log line, and the gateway keeps serving real clients.
 */

interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** node:http, for what fetch cannot send: a foreign Host, or no Accept header at all. */
function raw(url: URL, method: string, headers: Record<string, string>, body?: string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

interface ErrorBody {
  jsonrpc: string;
  id: string | number | null;
  error: { code: number; message: string };
}

function errorBody(
  status: number,
  contentType: string | null | undefined,
  text: string,
  expected: { status: number; code: number; id?: string | number | null; message?: RegExp },
): ErrorBody {
  assert.equal(status, expected.status, text);
  assert.match(String(contentType), /application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  assert.equal(body.jsonrpc, '2.0');
  assert.equal(body.id, expected.id ?? null);
  assert.equal(body.error.code, expected.code);
  assert.equal(typeof body.error.message, 'string');
  if (expected.message) assert.match(body.error.message, expected.message);
  return body;
}

async function refusedFetch(res: Response, expected: Parameters<typeof errorBody>[3]): Promise<ErrorBody> {
  return errorBody(res.status, res.headers.get('content-type'), await res.text(), expected);
}

function refusedRaw(res: RawReply, expected: Parameters<typeof errorBody>[3]): ErrorBody {
  return errorBody(res.status, res.headers['content-type'] as string | undefined, res.text, expected);
}

describe('bad input at the Streamable HTTP edge', () => {
  let gw: TestGateway;
  let endpoint: URL;
  let sessionId: string;
  let longLived: { client: Client; transport: StreamableHTTPClientTransport };
  let mark = 0;

  const limit = 4096;

  before(async () => {
    gw = await startTestGateway({
      // `other` never starts a process unless a session opens on it. No pinning: server-everything announces
      // list_changed, and the tool list the gateway would then read is larger than this test's 4 KiB limit.
      connections: { everything: { stdio: everythingStdio(), tools: { pin: false } }, other: { stdio: everythingStdio(), tools: { pin: false } } },
      limits: { maxMessageSize: '4KiB' },
    });
    endpoint = gw.mcp('everything');
    sessionId = await rawInitialize(endpoint, gw.auth);
    const transport = new StreamableHTTPClientTransport(endpoint, { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'long-lived', version: '1.0.0' });
    await client.connect(transport);
    longLived = { client, transport };
  });

  after(async () => {
    await longLived?.transport.terminateSession().catch(() => {});
    await longLived?.client.close();
    await gw?.stop();
  });

  const sessionHeaders = (id = sessionId) => ({ ...mcpHeaders, ...gw.auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' });
  const ping = (id: string | number = 1) => JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' });

  /** Marks where this test's log lines start. */
  function markLog(): void {
    mark = gw.log.lines.length;
  }

  /** The log lines written since markLog(), taken right after a refusal (before other traffic logs more). */
  function logSince(): Array<Record<string, unknown>> {
    return gw.log.lines.slice(mark);
  }

  /** Asserts one of `lines` has a message matching `msg` at `level` or above. */
  function assertLogged(lines: Array<Record<string, unknown>>, msg: RegExp, level = 30): void {
    assert.ok(
      lines.some((l) => msg.test(String(l.msg)) && Number(l.level) >= level),
      `no log line matching ${msg}; lines were:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`,
    );
  }

  /** The gateway still serves: the long-lived session answers, and a new SDK session opens, calls a tool and ends. */
  async function assertStillServing(): Promise<void> {
    await longLived.client.ping();
    const transport = new StreamableHTTPClientTransport(endpoint, { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'after-bad-input', version: '1.0.0' });
    try {
      await client.connect(transport);
      const result = await client.callTool({ name: 'echo', arguments: { message: 'still here' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: still here' }]);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  }

  it('invalid JSON: 400 and a JSON-RPC parse error', async () => {
    markLog();
    const res = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(), body: '{"jsonrpc":"2.0","id":1,' });
    await refusedFetch(res, { status: 400, code: ErrorCode.ParseError, message: /^Parse error: the body is not valid JSON/ });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /invalid JSON-RPC message/);
  });

  it('an empty body: 400 parse error', async () => {
    markLog();
    const res = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(), body: '' });
    await refusedFetch(res, { status: 400, code: ErrorCode.ParseError });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /invalid JSON-RPC message/);
  });

  it('JSON that is not JSON-RPC: 400 and -32600, answering the id when it can be read', async () => {
    markLog();
    for (const [body, id] of [
      ['{"hello":"world"}', null],
      ['[]', null],
      ['"ping"', null],
      ['{"jsonrpc":"1.0","id":3,"method":"ping"}', 3],
      ['{"jsonrpc":"2.0","id":"x","method":42}', 'x'],
      ['{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', null],
      ['[{"jsonrpc":"2.0","id":1,"method":"ping"},{"foo":1}]', null],
    ] as const) {
      const res = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(), body });
      await refusedFetch(res, { status: 400, code: ErrorCode.InvalidRequest, id, message: /^Invalid Request: / });
    }
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /invalid JSON-RPC message/);
  });

  it('invalid input before initialize opens no session', async () => {
    const before = gw.gateway.sessions.size;
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { ...mcpHeaders, ...gw.auth },
      body: '{"jsonrpc":"2.0","id":1,"method":"initialize","params":[]}',
    });
    await refusedFetch(res, { status: 400, code: ErrorCode.InvalidRequest, id: 1, message: /"params" must be an object/ });
    assert.equal(res.headers.get('mcp-session-id'), null);
    // At most as many as before: a session of an earlier test may still be closing, none may have opened.
    assert.ok(gw.gateway.sessions.size <= before, 'no session opened');
  });

  for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/json-seq', 'text/json']) {
    it(`Content-Type ${contentType}: 415`, async () => {
      markLog();
      const res = await fetch(endpoint, { method: 'POST', headers: { ...sessionHeaders(), 'content-type': contentType }, body: ping() });
      await refusedFetch(res, { status: 415, code: ErrorCode.InvalidRequest, message: /Content-Type must be application\/json/ });
      const logged = logSince();
      await assertStillServing();
      assertLogged(logged, /wrong content type/);
    });
  }

  it('no Content-Type at all: 415', async () => {
    markLog();
    const headers: Record<string, string> = { ...sessionHeaders() };
    delete headers['content-type'];
    const res = await raw(endpoint, 'POST', headers, ping());
    refusedRaw(res, { status: 415, code: ErrorCode.InvalidRequest });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /wrong content type/);
  });

  it('a Content-Type with parameters is accepted', async () => {
    const res = await fetch(endpoint, { method: 'POST', headers: { ...sessionHeaders(), 'content-type': 'application/json; charset=utf-8' }, body: ping(2) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { jsonrpc: '2.0', id: 2, result: {} });
  });

  it('no Accept header: 406', async () => {
    markLog();
    const headers: Record<string, string> = { ...sessionHeaders() };
    delete headers.accept;
    const res = await raw(endpoint, 'POST', headers, ping());
    refusedRaw(res, { status: 406, code: ErrorCode.InvalidRequest, message: /Accept must include both application\/json and text\/event-stream/ });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /unacceptable Accept/);
  });

  for (const accept of ['application/json', 'text/event-stream', 'text/html']) {
    it(`Accept ${accept} alone: 406`, async () => {
      markLog();
      const res = await fetch(endpoint, { method: 'POST', headers: { ...sessionHeaders(), accept }, body: ping() });
      await refusedFetch(res, { status: 406, code: ErrorCode.InvalidRequest });
      const logged = logSince();
      await assertStillServing();
      assertLogged(logged, /unacceptable Accept/);
    });
  }

  it('a message above limits.maxMessageSize (declared length): 413', async () => {
    markLog();
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x'.repeat(2 * limit) } } });
    const res = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(), body });
    await refusedFetch(res, { status: 413, code: ErrorCode.MessageTooLarge, message: new RegExp(`limit of ${limit} bytes \\(limits\\.maxMessageSize\\)`) });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /message too large/, 40);
  });

  it('a message above the limit without a Content-Length (chunked): 413', async () => {
    markLog();
    const chunk = new TextEncoder().encode(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"${'y'.repeat(1024)}`);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(), body, duplex: 'half' } as RequestInit & { duplex: 'half' });
    await refusedFetch(res, { status: 413, code: ErrorCode.MessageTooLarge });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /message too large/, 40);
  });

  it('a message just under the limit is relayed', async () => {
    const pad = 'z'.repeat(limit - 200);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 'under', method: 'ping', params: { _meta: { pad } } });
    assert.ok(Buffer.byteLength(body) < limit);
    const res = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(), body });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { jsonrpc: '2.0', id: 'under', result: {} });
  });

  it('a request without Mcp-Session-Id: 400', async () => {
    markLog();
    // The reply names the request it refuses whenever the body held exactly one request.
    const res = await fetch(endpoint, { method: 'POST', headers: { ...mcpHeaders, ...gw.auth }, body: ping('p-7') });
    await refusedFetch(res, { status: 400, code: ErrorCode.InvalidRequest, id: 'p-7', message: /Mcp-Session-Id header is required/ });
    const batch = await fetch(endpoint, { method: 'POST', headers: { ...mcpHeaders, ...gw.auth }, body: `[${ping(1)},${ping(2)}]` });
    await refusedFetch(batch, { status: 400, code: ErrorCode.InvalidRequest, id: null });
    const notification = await fetch(endpoint, {
      method: 'POST',
      headers: { ...mcpHeaders, ...gw.auth },
      body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    });
    await refusedFetch(notification, { status: 400, code: ErrorCode.InvalidRequest });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /without Mcp-Session-Id/);
  });

  it('an unknown session id: 404 with SessionNotFound, on POST, GET and DELETE', async () => {
    markLog();
    const unknown = 'AAAAAAAAAAAAAAAAAAAAAA';
    const post = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(unknown), body: ping(41) });
    await refusedFetch(post, { status: 404, code: ErrorCode.SessionNotFound, id: 41, message: /Session not found/ });
    const get = await fetch(endpoint, { method: 'GET', headers: { ...gw.auth, accept: 'text/event-stream', 'mcp-session-id': unknown } });
    await refusedFetch(get, { status: 404, code: ErrorCode.SessionNotFound });
    const del = await fetch(endpoint, { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': unknown } });
    await refusedFetch(del, { status: 404, code: ErrorCode.SessionNotFound });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /unknown session/);
  });

  it('a session id of another connection: 404', async () => {
    markLog();
    const res = await fetch(gw.mcp('other'), { method: 'POST', headers: sessionHeaders(), body: ping() });
    await refusedFetch(res, { status: 404, code: ErrorCode.SessionNotFound, id: 1 });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /unknown session/);
  });

  it('a session that was ended: 404', async () => {
    const ended = await rawInitialize(endpoint, gw.auth);
    const del = await fetch(endpoint, { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': ended } });
    assert.equal(del.status, 200);
    await del.text();
    markLog();
    const res = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(ended), body: ping() });
    await refusedFetch(res, { status: 404, code: ErrorCode.SessionNotFound, id: 1 });
    assertLogged(logSince(), /unknown session/);
  });

  it('an unknown connection: 404 on /mcp and /sse', async () => {
    markLog();
    const res = await fetch(gw.mcp('nope'), { method: 'POST', headers: { ...mcpHeaders, ...gw.auth }, body: ping() });
    await refusedFetch(res, { status: 404, code: ErrorCode.InvalidRequest, message: /no connection named "nope"/ });
    const sse = await fetch(gw.sse('nope'), { headers: { accept: 'text/event-stream' } });
    await refusedFetch(sse, { status: 404, code: ErrorCode.InvalidRequest });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /unknown connection/);
  });

  it('an unknown path: 404 naming the endpoints', async () => {
    const res = await fetch(new URL('/nothing-here', gw.url));
    await refusedFetch(res, { status: 404, code: ErrorCode.InvalidRequest, message: /\/mcp\/<connection>/ });
  });

  // BUG: decodeURIComponent throws on a malformed escape and the request ends as a 500 "Internal error".
  it('a connection name with a malformed %-escape: a 4xx, not a 500', async () => {
    markLog();
    const res = await fetch(new URL('/mcp/%E0%A4%A', gw.url), { method: 'POST', headers: { ...mcpHeaders, ...gw.auth }, body: ping() });
    assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
    await res.text();
    await assertStillServing();
  });

  it('a foreign Host: 403', async () => {
    markLog();
    const res = await raw(endpoint, 'POST', { ...sessionHeaders(), host: 'evil.example' }, ping());
    refusedRaw(res, { status: 403, code: ErrorCode.InvalidRequest, message: /^Forbidden: Host "evil\.example" is not allowed/ });
    const rebound = await raw(endpoint, 'POST', { ...mcpHeaders, host: `attacker.example:${new URL(gw.url).port}` }, ping());
    refusedRaw(rebound, { status: 403, code: ErrorCode.InvalidRequest });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /foreign host or origin refused/, 40);
  });

  it('a foreign Host is refused before the connection is looked up', async () => {
    const res = await raw(gw.mcp('nope'), 'POST', { ...mcpHeaders, host: 'evil.example' }, ping());
    refusedRaw(res, { status: 403, code: ErrorCode.InvalidRequest });
  });

  for (const origin of ['http://evil.example', 'null', 'https://localhost.evil.example']) {
    it(`a foreign Origin ${origin}: 403`, async () => {
      markLog();
      const res = await fetch(endpoint, { method: 'POST', headers: { ...sessionHeaders(), origin }, body: ping() });
      await refusedFetch(res, { status: 403, code: ErrorCode.InvalidRequest, message: /^Forbidden: Origin / });
      const logged = logSince();
      await assertStillServing();
      assertLogged(logged, /foreign host or origin refused/, 40);
    });
  }

  it("a page on another loopback port is refused (a local dev server is another site); the gateway's own origin is accepted", async () => {
    for (const origin of ['http://localhost:3000', 'http://localhost:6274', 'http://127.0.0.1:1']) {
      const res = await fetch(endpoint, { method: 'POST', headers: { ...sessionHeaders(), origin }, body: ping() });
      await refusedFetch(res, { status: 403, code: ErrorCode.InvalidRequest, message: /^Forbidden: Origin .* is not allowed \(http\.allowedOrigins\)/ });
    }
    const res = await fetch(endpoint, { method: 'POST', headers: { ...sessionHeaders(), origin: new URL(gw.url).origin }, body: ping(3) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { jsonrpc: '2.0', id: 3, result: {} });
  });

  it('an unsupported MCP-Protocol-Version: 400 naming the supported ones', async () => {
    markLog();
    const res = await fetch(endpoint, { method: 'POST', headers: { ...sessionHeaders(), 'mcp-protocol-version': '1999-01-01' }, body: ping(9) });
    await refusedFetch(res, {
      status: 400,
      code: ErrorCode.InvalidRequest,
      id: 9,
      message: /unsupported MCP-Protocol-Version "1999-01-01"; supported: .*2025-06-18/,
    });
    const get = await fetch(endpoint, { headers: { ...gw.auth, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': 'latest' } });
    await refusedFetch(get, { status: 400, code: ErrorCode.InvalidRequest });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /unsupported protocol version/);
  });

  for (const method of ['PUT', 'PATCH']) {
    it(`${method}: 405 with Allow`, async () => {
      markLog();
      const res = await fetch(endpoint, { method, headers: sessionHeaders(), body: ping() });
      assert.equal(res.headers.get('allow'), 'GET, POST, DELETE');
      await refusedFetch(res, { status: 405, code: ErrorCode.InvalidRequest, message: new RegExp(`Method ${method} is not allowed`) });
      const logged = logSince();
      await assertStillServing();
      assertLogged(logged, /method|not allowed/i); // BUG: a 405 leaves no log line.
    });
  }

  it('GET without Accept text/event-stream: 406', async () => {
    markLog();
    const res = await fetch(endpoint, { headers: { ...gw.auth, accept: 'application/json', 'mcp-session-id': sessionId } });
    await refusedFetch(res, { status: 406, code: ErrorCode.InvalidRequest, message: /text\/event-stream/ });
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /accept/i); // BUG: this 406 leaves no log line.
  });

  it('initialize inside a batch: 400, and no session opens', async () => {
    markLog();
    const before = gw.gateway.sessions.size;
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    };
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { ...mcpHeaders, ...gw.auth },
      body: JSON.stringify([init, { jsonrpc: '2.0', id: 2, method: 'ping' }]),
    });
    await refusedFetch(res, { status: 400, code: ErrorCode.InvalidRequest, message: /initialize must be sent on its own/ });
    assert.ok(gw.gateway.sessions.size <= before, 'no session opened');
    const logged = logSince();
    await assertStillServing();
    assertLogged(logged, /batch|initialize/i); // BUG: this 400 leaves no log line.
  });

  it('a request id already in flight on the session: 409', async () => {
    const long = JSON.stringify({
      jsonrpc: '2.0',
      id: 'dup',
      method: 'tools/call',
      params: { name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 1 } },
    });
    const first = fetch(endpoint, { method: 'POST', headers: sessionHeaders(), body: long });
    // The second goes once the first is in flight, not after a guess at how long that takes.
    await waitFor(() => (gw.gateway.sessions.get(sessionId)?.pendingRequests ?? 0) > 0, 'the first call to be in flight');
    const second = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(), body: ping('dup') });
    await refusedFetch(second, { status: 409, code: ErrorCode.InvalidRequest, id: 'dup', message: /already in flight/ });
    const res = await first;
    assert.equal(res.status, 200);
    await res.text();
  });

  // BUG: only ids already pending are checked, so a batch that repeats an id is relayed and its client gets one
  // answer for two requests.
  it('a batch that repeats a request id is refused', async () => {
    const res = await fetch(endpoint, { method: 'POST', headers: sessionHeaders(), body: JSON.stringify([JSON.parse(ping(7)), JSON.parse(ping(7))]) });
    assert.ok(res.status === 400 || res.status === 409, `status ${res.status}: ${await res.clone().text()}`);
    await res.text();
    await assertStillServing();
  });

  it('/healthz: 200 ok, whatever the Host', async () => {
    const res = await fetch(new URL('/healthz', gw.url));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(await res.json(), { status: 'ok' });
    const foreign = await raw(new URL('/healthz', gw.url), 'GET', { host: 'lb.internal' });
    assert.equal(foreign.status, 200);
  });

  it('/readyz: 200 ready with the number of live sessions', async () => {
    const before = gw.gateway.sessions.size;
    const res = await fetch(new URL('/readyz', gw.url));
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; sessions: number };
    assert.equal(body.status, 'ready');
    // A session of an earlier test may finish closing meanwhile: the count is one the gateway had in between.
    assert.ok(body.sessions <= before && body.sessions >= gw.gateway.sessions.size, `${body.sessions} sessions, ${before} before`);
    assert.ok(body.sessions >= 2, 'the raw and the long-lived sessions');
  });
});

describe('/readyz while draining', () => {
  let gw: TestGateway;
  after(() => gw?.stop());

  it('answers 503 draining, and new MCP requests 503 with Retry-After, while a call is still running', async () => {
    gw = await startTestGateway({ connections: { everything: { stdio: everythingStdio() } }, shutdown: { drainTimeout: '5s' } });
    const endpoint = gw.mcp('everything');
    const sessionId = await rawInitialize(endpoint, gw.auth);
    const headers = { ...mcpHeaders, ...gw.auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    // A call that keeps the drain waiting.
    const running = fetch(endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'long',
        method: 'tools/call',
        params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } },
      }),
    }).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 200));

    // A connection that is busy (its request is half sent) stays open through stop(); later requests pipeline on it.
    const port = Number(new URL(gw.url).port);
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const post = (body: string) =>
      `POST /mcp/everything HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nAuthorization: Bearer ${gw.token}\r\nMcp-Session-Id: ${sessionId}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const first = post(ping);
    socket.write(first.slice(0, -5));
    await new Promise((r) => setTimeout(r, 100));

    const stopped = gw.stop();
    await new Promise((r) => setTimeout(r, 100));
    socket.write(`${first.slice(-5)}GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n${post(ping)}`);
    const deadline = Date.now() + 5000;
    while ((received.match(/HTTP\/1\.1 /g) ?? []).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();

    const replies = received.split(/(?=HTTP\/1\.1 )/);
    assert.equal(replies.length, 3, received);
    assert.match(replies[0]!, /^HTTP\/1\.1 200 /, 'the request already being read is served');
    assert.match(replies[1]!, /^HTTP\/1\.1 503 /);
    assert.match(replies[1]!, /\{"status":"draining","sessions":1\}/);
    assert.match(replies[2]!, /^HTTP\/1\.1 503 /);
    assert.match(replies[2]!, /retry-after: 5/i);
    assert.match(replies[2]!, /shutting down/);

    assert.match(await running, /Long running operation completed/, 'the running call finished before the session closed');
    await stopped;
  });
});
