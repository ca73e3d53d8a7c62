import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode } from '../../src/protocol/jsonrpc.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startTestIdp, type TestIdp } from '../helpers/idp.js';
import { mcpHeaders } from '../helpers/raw-http.js';
import { allEvents } from '../helpers/recorded.js';

/** Access by group: who may open a connection, and who sees and uses which tools, prompts and resources. */

describe('access policy with dev identity users', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      identity: { dev: { users: { ada: ['eng', 'sre'], bob: ['eng'], eve: ['sales'] } } },
      connections: {
        everything: {
          stdio: everythingStdio(),
          access: {
            groups: ['eng'],
            tools: { 'get-*': ['sre'], 'trigger-*': ['sre'] },
            prompts: { 'args-prompt': ['sre'] },
            resources: { 'demo://resource/static/document/*': ['sre'] },
          },
        },
      },
    });
  });
  after(() => gw?.stop());

  async function clientFor(user: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), {
      requestInit: { headers: { authorization: `Bearer ${await gw.tokenFor(user)}` } },
    });
    const client = new Client({ name: `access-${user}`, version: '1.0.0' });
    await client.connect(transport);
    return { client, transport };
  }

  it('a member of a narrower group sees every tool, prompt and resource', async () => {
    const { client, transport } = await clientFor('ada');
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('get-sum') && tools.includes('echo'), tools.join(', '));
    const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
    assert.ok(prompts.includes('args-prompt'));
    const resources = (await client.listResources()).resources.map((r) => r.uri);
    assert.ok(resources.some((u) => u.startsWith('demo://resource/static/document/')));
    await transport.terminateSession();
    await client.close();
  });

  it('a member of the connection group only: lists show only what they may use, and using the rest is refused and recorded', async () => {
    const { client, transport } = await clientFor('bob');
    const sessionId = transport.sessionId!;
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('echo'));
    assert.deepEqual(
      tools.filter((t) => t.startsWith('get-') || t.startsWith('trigger-')),
      [],
    );
    assert.ok(!(await client.listPrompts()).prompts.some((p) => p.name === 'args-prompt'));
    assert.ok(!(await client.listResources()).resources.some((r) => r.uri.startsWith('demo://resource/static/document/')));
    await assert.rejects(client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }), (err: Error & { code?: number }) => {
      assert.equal(err.code, ErrorCode.Denied);
      assert.match(err.message, /tool 'get-sum' needs membership of sre/);
      return true;
    });
    await assert.rejects(client.getPrompt({ name: 'args-prompt', arguments: { city: 'Oslo' } }), /prompt 'args-prompt' needs membership of sre/);
    await assert.rejects(client.readResource({ uri: 'demo://resource/static/document/architecture.md' }), /needs membership of sre/);
    await assert.rejects(
      client.complete({ ref: { type: 'ref/prompt', name: 'args-prompt' }, argument: { name: 'city', value: 'O' } }),
      /prompt 'args-prompt' needs membership of sre/,
    );
    assert.match(JSON.stringify(await client.callTool({ name: 'echo', arguments: { message: 'allowed' } })), /Echo: allowed/);
    await transport.terminateSession();
    await client.close();

    const events = await allEvents(gw.gateway.recorder!.store, sessionId);
    const verdicts = events.filter((e) => e.kind === 'verdict').map((e) => JSON.parse(e.payload) as { stage: string; action: string; reason?: string });
    assert.ok(verdicts.some((v) => v.stage === 'authorize' && v.action === 'answer' && /get-sum/.test(v.reason ?? '')));
    assert.ok(
      verdicts.some((v) => v.stage === 'authorize' && v.action === 'rewrite'),
      'the filtered list is recorded as a rewrite',
    );
  });

  it('someone outside the connection group gets 403 insufficient_scope, and the attempt is recorded', async () => {
    const res = await fetch(gw.mcp('everything'), {
      method: 'POST',
      headers: { ...mcpHeaders, authorization: `Bearer ${await gw.tokenFor('eve')}` },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'eve', version: '1' } },
      }),
    });
    assert.equal(res.status, 403);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    assert.match(await res.text(), /needs membership of eng/);
    const rows = await gw.gateway.recorder!.store.listSessions({ subject: 'eve', limit: 5 });
    assert.equal(rows.length, 1);
    assert.match(rows[0]!.closeReason ?? '', /^access denied: connection 'everything' needs membership of eng/);
  });

  it('the legacy SSE edge takes the same token and binds its session to the caller', async () => {
    const token = await gw.tokenFor('bob');
    const controller = new AbortController();
    const stream = await fetch(gw.sse('everything'), { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` }, signal: controller.signal });
    assert.equal(stream.status, 200);
    const reader = stream.body!.getReader();
    let text = '';
    while (!/sessionId=[^\s]+/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    const endpoint = new URL(/data: (\S+)/.exec(text)![1]!, gw.url);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const other = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await gw.tokenFor('ada')}` },
      body,
    });
    assert.equal(other.status, 404, 'another identity cannot post into the session');
    const none = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(none.status, 401);
    const own = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
    assert.equal(own.status, 202);
    controller.abort();
  });

  it('serves protected resource metadata for each connection (RFC 9728), with no IdP listed for the dev identity', async () => {
    const res = await fetch(new URL('/.well-known/oauth-protected-resource/mcp/everything', gw.url));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const doc = (await res.json()) as Record<string, unknown>;
    assert.equal(doc.resource, `${gw.url}/mcp/everything`);
    assert.deepEqual(doc.bearer_methods_supported, ['header']);
    assert.equal(doc.authorization_servers, undefined);
    assert.equal((await fetch(new URL('/.well-known/oauth-protected-resource/mcp/nope', gw.url))).status, 404);
  });
});

describe('a real access token from the IdP, for the connection as its resource (RFC 8707)', () => {
  let idp: TestIdp;
  let gw: TestGateway;

  before(async () => {
    idp = await startTestIdp();
    gw = await startTestGateway({
      identity: { issuers: [{ issuer: idp.issuer, clientId: 'portcullis-cli' }] },
      connections: {
        everything: { stdio: everythingStdio(), access: { groups: ['services'] } },
        other: { stdio: everythingStdio(), access: { groups: ['*'] } },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await idp?.stop();
  });

  it('the metadata names the IdP as the authorization server', async () => {
    const doc = (await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp/everything', gw.url))).json()) as Record<string, unknown>;
    assert.deepEqual(doc.authorization_servers, [idp.issuer]);
    assert.ok((doc.scopes_supported as string[]).includes('openid'));
  });

  it('is accepted on its own connection, with identity and groups from its claims', async () => {
    const token = await idp.clientCredentialsToken(`${gw.url}/mcp/everything`);
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'service', version: '1.0.0' });
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    await client.ping();
    await transport.terminateSession();
    await client.close();
    const row = await gw.gateway.recorder!.store.getSession(sessionId);
    assert.equal(row?.subject, 'service');
    assert.deepEqual(row?.groups, ['services']);
  });

  it('is refused on another connection: its audience is the first one', async () => {
    const token = await idp.clientCredentialsToken(`${gw.url}/mcp/everything`);
    const res = await fetch(gw.mcp('other'), {
      method: 'POST',
      headers: { ...mcpHeaders, authorization: `Bearer ${token}` },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    assert.equal(res.status, 401);
    assert.match(await res.text(), /not meant for this connection/);
  });
});

describe('several issuers, each with its own groups claim and role map', () => {
  let a: TestIdp;
  let b: TestIdp;
  let gw: TestGateway;

  before(async () => {
    a = await startTestIdp();
    b = await startTestIdp();
    gw = await startTestGateway({
      identity: {
        issuers: [
          { issuer: a.issuer, audiences: ['portcullis'] },
          { issuer: b.issuer, audiences: ['portcullis'], groupsClaim: 'realm_access.roles', roles: { eng: ['b-engineers'] } },
        ],
      },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
    });
  });
  after(async () => {
    await gw?.stop();
    await a?.stop();
    await b?.stop();
  });

  const open = async (token: string) =>
    fetch(gw.mcp('everything'), {
      method: 'POST',
      headers: { ...mcpHeaders, authorization: `Bearer ${token}` },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });

  it("accepts each issuer's tokens and maps the second one's roles to Portcullis groups", async () => {
    assert.equal((await open(await a.sign({ sub: 'from-a', groups: ['eng'] }))).status, 200);
    const fromB = await open(await b.sign({ sub: 'from-b', groups: undefined, realm_access: { roles: ['b-engineers', 'b-other'] } }));
    assert.equal(fromB.status, 200);
    const rows = await gw.gateway.recorder!.store.listSessions({ subject: 'from-b', limit: 5 });
    assert.deepEqual(rows[0]?.groups, ['eng'], 'only the mapped group counts');
  });

  it('an unmapped IdP group grants nothing, even when it is named like a Portcullis group', async () => {
    const res = await open(await b.sign({ sub: 'sly', groups: undefined, realm_access: { roles: ['eng'] } }));
    assert.equal(res.status, 403);
  });

  it("a token signed by one issuer's key but naming the other issuer is refused", async () => {
    const now = Math.floor(Date.now() / 1000);
    const forged = await a.sign({ iss: b.issuer, sub: 'forger', exp: now + 300, realm_access: { roles: ['b-engineers'] } });
    const res = await open(forged);
    assert.equal(res.status, 401);
    assert.match(await res.text(), /no signing key .* matches|signature is not valid/);
  });
});

describe("per-tool access follows the caller's groups now, not those they had when the session opened", () => {
  let idp: TestIdp;
  let gw: TestGateway;

  before(async () => {
    idp = await startTestIdp();
    gw = await startTestGateway({
      identity: { issuers: [{ issuer: idp.issuer, audiences: ['portcullis'] }] },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'], tools: { 'get-sum': ['sre'] } } } },
    });
  });
  after(async () => {
    await gw?.stop();
    await idp?.stop();
  });

  it('a refreshed token with fewer groups loses a tool mid-session', async () => {
    let token = await idp.sign({ sub: 'ada', groups: ['eng', 'sre'] });
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), {
      fetch: (url, init) => {
        const headers = new Headers(init?.headers);
        headers.set('authorization', `Bearer ${token}`);
        return fetch(url, { ...init, headers });
      },
    });
    const client = new Client({ name: 'groups-change', version: '1.0.0' });
    await client.connect(transport);
    assert.match(JSON.stringify(await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), /3/);
    token = await idp.sign({ sub: 'ada', groups: ['eng'] });
    await assert.rejects(client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }), /needs membership of sre/);
    assert.ok(!(await client.listTools()).tools.some((t) => t.name === 'get-sum'));
    await transport.terminateSession();
    await client.close();
  });
});
