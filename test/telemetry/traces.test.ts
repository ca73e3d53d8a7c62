import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { callApi } from '../helpers/api.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectV2 } from '../helpers/modern.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { waitFor } from '../helpers/wait.js';

/**
 * OpenTelemetry traces received by an OTLP/HTTP (JSON) collector in the test: the span tree of a call held for review
 * and approved, the client's W3C trace continued (the HTTP header of a 2025-era client, `_meta.traceparent` of a
 * 2026-07-28 client), the gateway's upstream span propagated to an HTTP server, no argument values in attributes, and
 * nothing exported at sampling 0.
 */

const users = { alice: ['eng'], bob: ['leads'] };
const holdRule = { name: 'held', when: 'tool.name == "echo" && arguments.message.startsWith("hold")', action: 'review', approvers: ['leads'] };
const denyRule = { name: 'no-drops', when: 'tool.name == "echo" && arguments.message.startsWith("drop")', action: 'deny' };
/** An argument value that must never show up in a span. */
const secret = 'hold sk-live-4f9c2e7a1b';

function tracedConfig(echo: EchoServer, otlp: OtlpReceiver, sampling: number): Record<string, unknown> {
  return {
    identity: { dev: { users } },
    telemetry: { otlp: { endpoint: otlp.url }, sampling, serviceName: 'portcullis-test' },
    rules: [holdRule, denyRule],
    connections: { echo: { http: { url: echo.url, protocol: '2025-11-25' }, access: { groups: ['eng'] } } },
  };
}

const hex = (n: number) => Array.from({ length: n }, (_, i) => '0123456789abcdef'[(i * 7 + n) % 16]).join('');

async function connectV1(gw: TestGateway, token: string, traceparent?: string): Promise<Client> {
  const client = new Client({ name: 'traced-v1', version: '1.0.0' });
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(traceparent === undefined ? {} : { traceparent }) };
  await client.connect(new StreamableHTTPClientTransport(gw.mcp('echo'), { requestInit: { headers } }));
  return client;
}

function childrenOf(spans: ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId);
}

describe('traces over OTLP/HTTP', () => {
  let echo: EchoServer;
  let otlp: OtlpReceiver;
  let gw: TestGateway;
  const tokens: Record<string, string> = {};
  const clients: { close(): Promise<void> }[] = [];

  before(async () => {
    echo = await startEchoServer();
    otlp = await startOtlpReceiver();
    gw = await startTestGateway(tracedConfig(echo, otlp, 1), { reviewPollMs: 100, telemetryExportMs: 50 });
    for (const user of Object.keys(users)) tokens[user] = await gw.tokenFor(user);
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await gw?.stop();
    await otlp?.stop();
    await echo?.stop();
  });

  it('shows a held and approved call as one span tree in the client trace, propagated to the HTTP upstream', async () => {
    const traceId = hex(32);
    const clientSpan = hex(16);
    const alice = await connectV1(gw, tokens.alice!, `00-${traceId}-${clientSpan}-01`);
    clients.push(alice);
    const call = alice.callTool({ name: 'echo', arguments: { message: secret } }, undefined, { timeout: 60_000 }) as Promise<CallToolResult>;
    let reviewId: string | undefined;
    await waitFor(async () => {
      const r = await callApi<{ reviews?: { id: string }[] }>(gw.url, tokens.bob!, 'GET', '/api/reviews?status=pending');
      reviewId = r.body.reviews?.[0]?.id;
      return reviewId !== undefined;
    }, 'the call to wait for a review');
    assert.equal((await callApi(gw.url, tokens.bob!, 'POST', `/api/reviews/${reviewId}/approve`, {})).status, 200);
    const result = await call;
    assert.match(JSON.stringify(result.content), /Echo: hold/);

    let root: ReceivedSpan | undefined;
    await waitFor(() => {
      root = otlp.spans.find((s) => s.traceId === traceId && s.name === 'tools/call echo');
      return root !== undefined && childrenOf(otlp.spans, root).some((c) => c.name === 'upstream');
    }, 'the call span and its children to be exported');
    const span = root!;
    assert.equal(span.parentSpanId, clientSpan, "the client's span is the parent of the gateway's");
    assert.equal(span.kind, 2, 'a server span');
    assert.equal(span.service, 'portcullis-test');
    assert.equal(span.attributes['mcp.method'], 'tools/call');
    assert.equal(span.attributes['mcp.tool'], 'echo');
    assert.equal(span.attributes['portcullis.connection'], 'echo');
    assert.equal(span.attributes['mcp.protocol.era'], 'legacy');
    assert.equal(span.attributes['portcullis.verdict'], 'approved');
    assert.equal(span.attributes['portcullis.outcome'], 'result');
    assert.equal(typeof span.attributes['enduser.id'], 'string');

    const children = childrenOf(otlp.spans, span);
    const names = children.map((c) => c.name);
    for (const name of ['guard', 'review', 'record', 'upstream']) assert.ok(names.includes(name), `a ${name} span among ${names.join(', ')}`);
    const review = children.find((c) => c.name === 'review')!;
    assert.equal(review.attributes['portcullis.rule'], 'held');
    assert.equal(review.attributes['portcullis.decision'], 'approved');
    assert.equal(children.find((c) => c.name === 'guard')!.attributes['portcullis.stage.action'], 'hold');

    // The server was called in the gateway's upstream span, continuing the client's trace.
    const upstream = children.find((c) => c.name === 'upstream')!;
    const at = echo.received.findIndex((m) => m.method === 'tools/call');
    assert.equal(echo.traceparents[at], `00-${traceId}-${upstream.spanId}-01`);

    // No argument value in any attribute (recordArguments is off).
    for (const s of otlp.spans) assert.ok(!JSON.stringify(s.attributes).includes('sk-live'), `no argument value in the attributes of ${s.name}`);
  });

  it("continues a 2026-07-28 client's trace from its request _meta", async () => {
    const traceId = hex(31) + 'a';
    const clientSpan = '00f067aa0ba902b7';
    const client: V2Client = await connectV2(gw.mcp('echo'), { authorization: `Bearer ${tokens.alice}` }, { pin: '2026-07-28' });
    clients.push(client);
    await client.callTool({ name: 'echo', arguments: { message: 'modern' }, _meta: { traceparent: `00-${traceId}-${clientSpan}-01` } });
    let root: ReceivedSpan | undefined;
    await waitFor(() => {
      root = otlp.spans.find((s) => s.traceId === traceId && s.name === 'tools/call echo');
      return root !== undefined && childrenOf(otlp.spans, root).some((c) => c.name === 'upstream');
    }, 'the modern call span to be exported');
    assert.equal(root!.parentSpanId, clientSpan);
    assert.equal(root!.attributes['mcp.protocol.era'], 'modern');
    assert.equal(root!.attributes['portcullis.verdict'], 'allowed');
    const upstream = childrenOf(otlp.spans, root!).find((c) => c.name === 'upstream')!;
    assert.ok(echo.traceparents.includes(`00-${traceId}-${upstream.spanId}-01`), 'the upstream span propagated to the HTTP server');
  });

  it('shows a refused call with the deciding rule, and no upstream span', async () => {
    const traceId = hex(30) + 'bb';
    const alice = await connectV1(gw, tokens.alice!, `00-${traceId}-${hex(16)}-01`);
    clients.push(alice);
    await assert.rejects(alice.callTool({ name: 'echo', arguments: { message: 'drop table' } }), /no-drops/);
    let root: ReceivedSpan | undefined;
    await waitFor(() => {
      root = otlp.spans.find((s) => s.traceId === traceId && s.name === 'tools/call echo');
      return root !== undefined;
    }, 'the refused call span');
    assert.equal(root!.attributes['portcullis.verdict'], 'refused');
    assert.equal(root!.attributes['portcullis.outcome'], 'error');
    assert.equal(typeof root!.attributes['rpc.jsonrpc.error_code'], 'number');
    const children = childrenOf(otlp.spans, root!);
    const guard = children.find((c) => c.name === 'guard');
    assert.equal(guard?.attributes['portcullis.rule'], 'no-drops');
    assert.equal(guard?.attributes['portcullis.stage.action'], 'answer');
    assert.ok(!children.some((c) => c.name === 'upstream'), 'never sent upstream');
  });

  it('starts a trace of its own for a client that sends none', async () => {
    const before = new Set(otlp.spans.map((s) => s.traceId));
    const alice = await connectV1(gw, tokens.alice!);
    clients.push(alice);
    await alice.callTool({ name: 'echo', arguments: { message: 'untraced' } });
    await waitFor(() => otlp.spans.some((s) => s.name === 'tools/call echo' && !before.has(s.traceId)), 'a new trace');
    const root = otlp.spans.find((s) => s.name === 'tools/call echo' && !before.has(s.traceId))!;
    assert.equal(root.parentSpanId, undefined);
  });
});

describe('traces at sampling 0', () => {
  it('exports nothing for clients that send no trace', async () => {
    const echo = await startEchoServer();
    const otlp = await startOtlpReceiver();
    const gw = await startTestGateway(tracedConfig(echo, otlp, 0), { telemetryExportMs: 50 });
    try {
      const client = await connectV1(gw, await gw.tokenFor('alice'));
      assert.match(JSON.stringify((await client.callTool({ name: 'echo', arguments: { message: 'quiet' } })).content), /Echo: quiet/);
      await client.close();
    } finally {
      // Stopping flushes the exporter: whatever was kept would be sent now.
      await gw.stop();
      await otlp.stop();
      await echo.stop();
    }
    assert.equal(otlp.spans.length, 0);
    assert.ok(
      echo.traceparents.every((t) => t === undefined),
      'nothing propagated upstream either',
    );
  });
});

describe('traces with recordArguments', () => {
  it("shows a call's arguments masked as the connection masks them, and masking's counts", async () => {
    const echo = await startEchoServer();
    const otlp = await startOtlpReceiver();
    const config = tracedConfig(echo, otlp, 1);
    const gw = await startTestGateway({ ...config, telemetry: { ...(config.telemetry as object), recordArguments: true } }, { telemetryExportMs: 50 });
    const token = `ghp_${'Q'.repeat(36)}`;
    try {
      const client = await connectV1(gw, await gw.tokenFor('alice'));
      const result = await client.callTool({ name: 'echo', arguments: { message: `note ${token}` } });
      assert.ok(!JSON.stringify(result.content).includes(token), 'the result is masked for the client');
      await client.close();
      let root: ReceivedSpan | undefined;
      await waitFor(() => {
        root = otlp.spans.find((s) => s.name === 'tools/call echo');
        return root !== undefined && childrenOf(otlp.spans, root).some((c) => c.name === 'mask');
      }, 'the call span and its mask span');
      const args = String(root!.attributes['mcp.tool.arguments']);
      assert.match(args, /note /);
      assert.ok(!args.includes(token), `the token is masked in ${args}`);
      const mask = childrenOf(otlp.spans, root!).find((c) => c.name === 'mask')!;
      assert.ok(Number(mask.attributes['portcullis.mask.redactions']) >= 1);
      for (const s of otlp.spans) assert.ok(!JSON.stringify(s.attributes).includes(token), `no token in the attributes of ${s.name}`);
    } finally {
      await gw.stop();
      await otlp.stop();
      await echo.stop();
    }
  });
});

describe('traces to a collector that refuses them', () => {
  it('warns in the log, without the collector credential, and serves on', async () => {
    const echo = await startEchoServer();
    const refusing = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(503).end());
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(refusing.address() as { port: number }).port}`;
    process.env.PORTCULLIS_TEST_OTLP_TOKEN = 'Bearer otlp-credential-77';
    const gw = await startTestGateway(
      {
        identity: { dev: { users } },
        telemetry: { otlp: { endpoint: url, headers: { authorization: '${env:PORTCULLIS_TEST_OTLP_TOKEN}' } } },
        connections: { echo: { http: { url: echo.url, protocol: '2025-11-25' }, access: { groups: ['eng'] } } },
      },
      { telemetryExportMs: 50 },
    );
    try {
      const client = await connectV1(gw, await gw.tokenFor('alice'));
      for (const message of ['one', 'two']) assert.match(JSON.stringify((await client.callTool({ name: 'echo', arguments: { message } })).content), /Echo/);
      await client.close();
      await waitFor(() => gw.log.text.includes('spans could not be exported'), 'a warning about the refused export');
      assert.ok(!gw.log.text.includes('otlp-credential-77'), 'no credential in the log');
    } finally {
      delete process.env.PORTCULLIS_TEST_OTLP_TOKEN;
      await gw.stop();
      refusing.closeAllConnections();
      await new Promise<void>((r) => refusing.close(() => r()));
      await echo.stop();
    }
  });
});
