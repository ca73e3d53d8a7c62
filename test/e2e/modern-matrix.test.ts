import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import { everythingStdio } from '../helpers/everything.js';
import { allEvents, deliveredTexts, receivedTexts } from '../helpers/recorded.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { envelope, modernBody, modernHeaders, modernVersion, type RawAnswer, rawRequest, startV2Server, type V2Server } from '../helpers/modern.js';

/**
 * The raw HTTP matrix of MCP 2026-07-28 requests: each case goes to a v2 SDK server (modern-only, and in its default
 * mode that also serves 2025-era requests) and to the gateway, and the gateway must answer as the SDK server does:
 * the same HTTP status and the same JSON-RPC error code (or a result where it has one).
 */

interface Case {
  name: string;
  httpMethod?: string;
  headers: Array<[string, string]>;
  body?: string;
  /** Which reference servers the case is compared with: a 2025-era request is served statelessly by the SDK's default mode and by the gateway's sessions, differently by design. */
  compare?: Array<'reject' | 'stateless'>;
  /** What both must answer. */
  expect: { status: number; code?: number };
}

const b64 = (s: string) => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;
const call = (name: string, id = 1) => JSON.stringify(modernBody('tools/call', { name, arguments: { message: 'hi' } }, id));
const without = (headers: Array<[string, string]>, name: string) => headers.filter(([k]) => k !== name);

const cases: Case[] = [
  { name: 'a valid tools/list', headers: modernHeaders('tools/list'), body: JSON.stringify(modernBody('tools/list')), expect: { status: 200 } },
  { name: 'a valid tools/call', headers: modernHeaders('tools/call', 'echo'), body: call('echo'), expect: { status: 200 } },
  { name: 'Mcp-Name in the base64 form', headers: modernHeaders('tools/call', b64('echo')), body: call('echo'), expect: { status: 200 } },
  {
    name: 'version header disagrees with _meta',
    headers: [...without(modernHeaders('tools/list'), 'mcp-protocol-version'), ['mcp-protocol-version', '2025-11-25']],
    body: JSON.stringify(modernBody('tools/list')),
    expect: { status: 400, code: -32020 },
  },
  {
    name: 'Mcp-Method disagrees with method',
    headers: modernHeaders('tools/call', 'echo'),
    body: JSON.stringify(modernBody('tools/list')),
    expect: { status: 400, code: -32020 },
  },
  { name: 'Mcp-Name disagrees with params.name', headers: modernHeaders('tools/call', 'get-sum'), body: call('echo'), expect: { status: 400, code: -32020 } },
  { name: 'Mcp-Name base64 of another name', headers: modernHeaders('tools/call', b64('get-sum')), body: call('echo'), expect: { status: 400, code: -32020 } },
  {
    name: 'Mcp-Name undecodable base64',
    headers: modernHeaders('tools/call', '=?base64?not*base64?='),
    body: call('echo'),
    expect: { status: 400, code: -32020 },
  },
  { name: 'Mcp-Name missing on tools/call', headers: modernHeaders('tools/call'), body: call('echo'), expect: { status: 400, code: -32020 } },
  {
    name: 'Mcp-Name repeated',
    headers: [...modernHeaders('tools/call', 'echo'), ['mcp-name', 'echo']],
    body: call('echo'),
    expect: { status: 400, code: -32020 },
  },
  {
    name: 'Mcp-Method repeated',
    headers: [...modernHeaders('tools/list'), ['mcp-method', 'tools/list']],
    body: JSON.stringify(modernBody('tools/list')),
    expect: { status: 400, code: -32020 },
  },
  {
    name: 'Mcp-Name disagrees with prompts/get name',
    headers: modernHeaders('prompts/get', 'other'),
    body: JSON.stringify(modernBody('prompts/get', { name: 'greet' })),
    expect: { status: 400, code: -32020 },
  },
  {
    name: 'Mcp-Name disagrees with resources/read uri',
    headers: modernHeaders('resources/read', 'demo://b'),
    body: JSON.stringify(modernBody('resources/read', { uri: 'demo://a' })),
    expect: { status: 400, code: -32020 },
  },
  {
    name: 'Mcp-Method missing',
    headers: without(modernHeaders('tools/list'), 'mcp-method'),
    body: JSON.stringify(modernBody('tools/list')),
    expect: { status: 400, code: -32020 },
  },
  {
    name: 'MCP-Protocol-Version missing (envelope present)',
    headers: without(modernHeaders('tools/list'), 'mcp-protocol-version'),
    body: JSON.stringify(modernBody('tools/list')),
    expect: { status: 400, code: -32020 },
  },
  {
    name: 'envelope without clientCapabilities',
    headers: modernHeaders('tools/list'),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': modernVersion } } }),
    expect: { status: 400, code: -32602 },
  },
  {
    name: 'envelope with a clientInfo of the wrong shape',
    headers: modernHeaders('tools/list'),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope({ 'io.modelcontextprotocol/clientInfo': 'me' }) } }),
    expect: { status: 400, code: -32602 },
  },
  {
    name: 'modern header, no _meta at all',
    headers: modernHeaders('tools/list'),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    expect: { status: 400, code: -32602 },
  },
  {
    name: 'an unknown future version',
    headers: [...without(modernHeaders('tools/list'), 'mcp-protocol-version'), ['mcp-protocol-version', '2031-01-01']],
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/list',
      params: { _meta: envelope({ 'io.modelcontextprotocol/protocolVersion': '2031-01-01' }) },
    }),
    expect: { status: 400, code: -32022 },
  },
  {
    name: 'a 2025 version inside the envelope',
    headers: [...without(modernHeaders('tools/list'), 'mcp-protocol-version'), ['mcp-protocol-version', '2025-11-25']],
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/list',
      params: { _meta: envelope({ 'io.modelcontextprotocol/protocolVersion': '2025-11-25' }) },
    }),
    expect: { status: 400, code: -32022 },
  },
  { name: 'ping (not a 2026-07-28 request)', headers: modernHeaders('ping'), body: JSON.stringify(modernBody('ping')), expect: { status: 404, code: -32601 } },
  {
    name: 'logging/setLevel (removed in 2026-07-28)',
    headers: modernHeaders('logging/setLevel'),
    body: JSON.stringify(modernBody('logging/setLevel', { level: 'info' })),
    expect: { status: 404, code: -32601 },
  },
  {
    name: 'resources/subscribe (removed in 2026-07-28)',
    headers: modernHeaders('resources/subscribe'),
    body: JSON.stringify(modernBody('resources/subscribe', { uri: 'demo://a' })),
    expect: { status: 404, code: -32601 },
  },
  { name: 'an unknown method', headers: modernHeaders('foo/bar'), body: JSON.stringify(modernBody('foo/bar')), expect: { status: 404, code: -32601 } },
  {
    name: 'a batch holding a modern request',
    headers: modernHeaders('tools/list'),
    body: JSON.stringify([modernBody('tools/list', {}, 1), modernBody('tools/list', {}, 2)]),
    expect: { status: 400, code: -32600 },
  },
  { name: 'an empty batch', headers: modernHeaders('tools/list'), body: '[]', expect: { status: 400, code: -32600 } },
  {
    name: 'initialize with a modern version header',
    headers: modernHeaders('initialize'),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    }),
    expect: { status: 400, code: -32020 },
  },
  { name: 'a body that is not JSON', headers: modernHeaders('tools/list'), body: '{"jsonrpc":', expect: { status: 400, code: -32700 } },
  { name: 'not a JSON-RPC message', headers: modernHeaders('tools/list'), body: '{"hello":1}', expect: { status: 400, code: -32600 } },
  {
    name: 'a modern notification',
    headers: modernHeaders('notifications/cancelled'),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 9, _meta: envelope() } }),
    expect: { status: 202 },
  },
  { name: 'GET without a session', httpMethod: 'GET', headers: [['accept', 'application/json, text/event-stream']], expect: { status: 405, code: -32000 } },
  {
    name: 'DELETE without a session',
    httpMethod: 'DELETE',
    headers: [['accept', 'application/json, text/event-stream']],
    expect: { status: 405, code: -32000 },
  },
  {
    name: 'a client-sent response',
    headers: modernHeaders('tools/list'),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} }),
    compare: ['reject'],
    expect: { status: 400, code: -32600 },
  },
  {
    name: 'a batch of 2025-era requests',
    headers: modernHeaders('tools/list'),
    body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }]),
    compare: ['reject'],
    expect: { status: 400, code: -32600 },
  },
];

function summary(a: RawAnswer): string {
  return `${a.status} ${a.json?.error?.code ?? (a.json?.result !== undefined ? 'result' : '-')}`;
}

describe('the modern edge answers the raw matrix as a v2 SDK server does', () => {
  let gw: TestGateway;
  const reference: Partial<Record<'reject' | 'stateless', V2Server>> = {};

  before(async () => {
    gw = await startTestGateway({ connections: { ev: { stdio: everythingStdio() } } });
    reference.reject = await startV2Server('reject');
    reference.stateless = await startV2Server('stateless');
  });
  after(async () => {
    await gw?.stop();
    await reference.reject?.stop();
    await reference.stateless?.stop();
  });

  for (const c of cases) {
    it(c.name, async () => {
      const gateway = await rawRequest(gw.mcp('ev'), c.httpMethod ?? 'POST', [...c.headers, ['authorization', gw.auth.authorization!]], c.body);
      assert.equal(gateway.status, c.expect.status, `gateway: ${gateway.body}`);
      assert.equal(gateway.json?.error?.code, c.expect.code, `gateway: ${gateway.body}`);
      if (c.expect.code !== undefined && c.body !== undefined && !c.body.startsWith('[') && c.expect.code !== -32700) {
        // Error replies carry the request's id whenever it could be read.
        const id = (JSON.parse(c.body) as { id?: unknown }).id;
        if (id !== undefined && c.expect.code !== -32600) assert.equal(gateway.json?.id, id, `the id comes back: ${gateway.body}`);
      }
      for (const mode of c.compare ?? (['reject', 'stateless'] as const)) {
        const sdk = await rawRequest(reference[mode]!.url, c.httpMethod ?? 'POST', c.headers, c.body);
        assert.equal(summary(gateway), summary(sdk), `gateway vs v2 SDK server (${mode}): ${gateway.body} | ${sdk.body}`);
      }
    });
  }

  it('records each refusal with the request text and the reason', async () => {
    const body = JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { message: 'recorded-refusal-marker' } }, 77));
    const answer = await rawRequest(gw.mcp('ev'), 'POST', [...modernHeaders('tools/call', 'get-sum'), ['authorization', gw.auth.authorization!]], body);
    assert.equal(answer.status, 400);
    const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
    try {
      const sessions = await store.listSessions({ connection: 'ev', limit: 500 });
      const refused = sessions.filter((s) => s.edge === 'modern' && (s.closeReason ?? '').includes('Mcp-Name'));
      assert.ok(refused.length >= 1, 'a refused modern request is a recorded session of its own');
      const events = await allEvents(store, refused[0]!.id);
      assert.ok(
        receivedTexts(events, 'toServer').some((t) => t.includes('recorded-refusal-marker')),
        'the refused request text is kept',
      );
      assert.ok(
        events.some((e) => e.kind === 'verdict' && e.payload.includes('-32020') === false && e.payload.includes('Mcp-Name')),
        'with the reason',
      );
      assert.ok(
        deliveredTexts(events, 'toClient').some((t) => t.includes('-32020')),
        'and the answer',
      );
    } finally {
      await store.close();
    }
  });

  it('records a large refused request by its size and digest only, never its body', async () => {
    const big = `large-refusal-marker-${'x'.repeat(100 * 1024)}`;
    const body = JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { message: big } }, 78));
    const answer = await rawRequest(gw.mcp('ev'), 'POST', [...modernHeaders('tools/call', 'get-sum'), ['authorization', gw.auth.authorization!]], body);
    assert.equal(answer.status, 400);
    const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
    try {
      const sessions = await store.listSessions({ connection: 'ev', limit: 500 });
      const refused = [];
      for (const s of sessions.filter((s) => s.edge === 'modern' && (s.closeReason ?? '').includes('Mcp-Name'))) {
        const events = await allEvents(store, s.id);
        if (events.some((e) => e.kind === 'verdict' && e.payload.includes(`${Buffer.byteLength(body)}-byte body is not kept; sha256:`))) refused.push(events);
      }
      assert.equal(refused.length, 1, 'the refusal names the body by its size and digest');
      assert.ok(!refused[0]!.some((e) => e.payload.includes('large-refusal-marker')), 'the body itself is not recorded');
    } finally {
      await store.close();
    }
  });
});
