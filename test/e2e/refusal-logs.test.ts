import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { modernBody, modernHeaders, rawRequest } from '../helpers/modern.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Every refusal is one log line an operator can query the same way, wherever it was decided: `refusal: true` with the
 * principal (`unauthenticated` before a token is verified), the connection, the method and the reason.
 */
describe('refusal log lines', () => {
  let gw: TestGateway;
  const clients: Client[] = [];

  before(async () => {
    gw = await startTestGateway({
      rules: [{ name: 'no-secrets-echo', when: 'tool.name == "echo" && arguments.message == "deny-me"', action: 'deny', message: 'not that message' }],
      connections: {
        tools: {
          stdio: { ...everythingStdio(), spares: 0 },
          access: { groups: ['testers'] },
          tools: { deny: ['get-env'], pin: false },
          limits: { tools: { 'get-sum': { perSecond: 0.001, burst: 1 } } },
        },
      },
    });
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await gw.stop();
  });

  /** The one refusal line with this message that the step produced (lines before `from` are earlier steps'). */
  async function refusalLine(from: number, msg: string): Promise<Record<string, unknown>> {
    await waitFor(
      () => gw.log.lines.slice(from).some((l) => l.msg === msg),
      `a log line "${msg}"; got: ${gw.log.lines
        .slice(from)
        .map((l) => l.msg)
        .join(' | ')}`,
    );
    const line = gw.log.lines.slice(from).find((l) => l.msg === msg)!;
    assert.equal(line.refusal, true, `${msg}: marked as a refusal`);
    for (const field of ['principal', 'connection', 'method', 'reason'])
      assert.ok(typeof line[field] === 'string' && (line[field] as string).length > 0, `${msg}: ${field} in ${JSON.stringify(line)}`);
    return line;
  }

  const post = (headers: Record<string, string>, body: string) => fetch(gw.mcp('tools'), { method: 'POST', headers: { ...mcpHeaders, ...headers }, body });
  const initialize = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'refused', version: '1' } },
  });

  async function connect(): Promise<Client> {
    const client = new Client({ name: 'refusal-logs', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('tools'), { requestInit: { headers: gw.auth } }));
    clients.push(client);
    return client;
  }

  it('no token, a bad token, an outsider, a foreign Origin, malformed JSON-RPC', async () => {
    let from = gw.log.lines.length;
    assert.equal((await post({}, initialize)).status, 401);
    let line = await refusalLine(from, 'request not authenticated');
    assert.deepEqual([line.principal, line.connection, line.method], ['unauthenticated', 'tools', 'HTTP POST']);

    from = gw.log.lines.length;
    assert.equal((await post({ authorization: 'Bearer not.a.token' }, initialize)).status, 401);
    line = await refusalLine(from, 'request not authenticated');
    assert.equal(line.principal, 'unauthenticated');
    assert.match(String(line.reason), /token/i);

    from = gw.log.lines.length;
    assert.equal((await post({ authorization: `Bearer ${await gw.tokenFor('outsider')}` }, initialize)).status, 403);
    line = await refusalLine(from, 'access denied');
    assert.deepEqual([line.principal, line.connection, line.method], ['outsider', 'tools', 'HTTP POST']);

    from = gw.log.lines.length;
    assert.equal((await post({ ...gw.auth, origin: 'http://evil.example' }, initialize)).status, 403);
    line = await refusalLine(from, 'foreign host or origin refused');
    assert.deepEqual([line.principal, line.connection, line.method], ['unauthenticated', 'tools', 'HTTP POST']);
    assert.equal(line.level, 40, 'a foreign Origin is a warning: a browser page tried to reach the gateway');

    from = gw.log.lines.length;
    assert.equal((await post(gw.auth, '{"jsonrpc": "2.0", "id": 1, "method":')).status, 400);
    line = await refusalLine(from, 'invalid JSON-RPC message');
    assert.deepEqual([line.principal, line.connection, line.method], ['tester', 'tools', 'HTTP POST']);

    const session = await rawInitialize(gw.mcp('tools'), gw.auth);
    from = gw.log.lines.length;
    const invalid = await post({ ...gw.auth, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' }, '{"jsonrpc":"2.0","id":7}');
    assert.equal(invalid.status, 400);
    line = await refusalLine(from, 'invalid JSON-RPC message');
    assert.deepEqual([line.principal, line.connection], ['tester', 'tools']);

    from = gw.log.lines.length;
    const unknown = await post(
      { ...gw.auth, 'mcp-session-id': 'no-such-session', 'mcp-protocol-version': '2025-11-25' },
      '{"jsonrpc":"2.0","id":8,"method":"tools/list"}',
    );
    assert.equal(unknown.status, 404);
    line = await refusalLine(from, 'unknown session');
    assert.deepEqual([line.principal, line.connection, line.method], ['tester', 'tools', 'tools/list']);
  });

  it('a 2026-07-28 request for a method the modern edge does not serve, and its headers disagreeing with its body', async () => {
    let from = gw.log.lines.length;
    const auth = Object.entries(gw.auth) as Array<[string, string]>;
    let answer = await rawRequest(gw.mcp('tools'), 'POST', [...modernHeaders('tasks/list'), ...auth], JSON.stringify(modernBody('tasks/list')));
    assert.equal(answer.status, 404);
    let line = await refusalLine(from, 'modern request refused');
    assert.deepEqual([line.principal, line.connection, line.method], ['tester', 'tools', 'tasks/list']);

    from = gw.log.lines.length;
    const body = JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { message: 'x' } }));
    answer = await rawRequest(gw.mcp('tools'), 'POST', [...modernHeaders('tools/call', 'get-sum'), ...auth], body);
    assert.equal(answer.status, 400);
    line = await refusalLine(from, 'modern request refused');
    assert.deepEqual([line.principal, line.connection, line.method], ['tester', 'tools', 'tools/call']);
  });

  it("the API: another user's sessions", async () => {
    const from = gw.log.lines.length;
    const res = await fetch(new URL('/api/sessions?user=other', gw.url), { headers: gw.auth });
    assert.equal(res.status, 403);
    await res.text();
    const line = await refusalLine(from, 'API request refused');
    assert.deepEqual([line.principal, line.connection, line.method, line.path], ['tester', '(gateway API)', 'HTTP GET', '/api/sessions']);
    assert.match(String(line.reason), /your own sessions only/);
  });

  it('a denied tool, a guardrail deny, a rate limit', async () => {
    const client = await connect();
    let from = gw.log.lines.length;
    await assert.rejects(client.callTool({ name: 'get-env', arguments: {} }), McpError);
    let line = await refusalLine(from, 'request refused');
    assert.deepEqual([line.principal, line.connection, line.method], ['tester', 'tools', 'tools/call']);
    assert.match(String(line.reason), /get-env/);

    from = gw.log.lines.length;
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'deny-me' } }), /not that message/);
    line = await refusalLine(from, 'request refused');
    assert.deepEqual([line.principal, line.connection, line.method, line.rule], ['tester', 'tools', 'tools/call', 'no-secrets-echo']);
    assert.match(String(line.reason), /no-secrets-echo/);

    from = gw.log.lines.length;
    await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
    await assert.rejects(client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }), /Too many calls/);
    line = await refusalLine(from, 'limit reached: refusing');
    assert.deepEqual([line.principal, line.connection, line.method, line.limit], ['tester', 'tools', 'tools/call', 'connections.tools.limits.tools.get-sum']);
    assert.match(String(line.reason), /Too many calls of "get-sum"/);
  });

  it('every refusal line of the run has the four fields', () => {
    const refusals = gw.log.lines.filter((l) => l.refusal === true);
    assert.ok(refusals.length >= 13, `${refusals.length} refusal lines`);
    for (const l of refusals) for (const field of ['principal', 'connection', 'method', 'reason']) assert.equal(typeof l[field], 'string', JSON.stringify(l));
  });
});
