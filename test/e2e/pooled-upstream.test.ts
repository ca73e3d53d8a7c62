import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CallToolResult, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { trustedKeys, verifySession } from '../../src/recording/verify.js';
import { openStore } from '../../src/store/open.js';
import { type ClientInbox, closeClient, connectClient } from '../helpers/client.js';
import { childPids, everythingStdio, isAlive } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `upstreamSessions: pooled`: 2025-era client sessions (the v1 SDK client) of one principal share a server-everything
 * process over stdio, each keeping its own gateway session (id, pipeline, recording); what the server asks goes to the
 * client whose request it is made for; two principals never share.
 */

function text(result: unknown): string {
  return ((result as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

interface Connected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  inbox: ClientInbox;
}

describe('pooled upstream sessions for 2025-era clients (upstreamSessions: pooled)', () => {
  let gw: TestGateway;
  const open: Connected[] = [];
  const baseline = new Set<number>();

  /** The gateway's server processes that run now (children of this process started since the test began). */
  const servers = () => childPids().filter((pid) => !baseline.has(pid) && isAlive(pid));

  async function connect(user = 'tester'): Promise<Connected> {
    const token = await gw.tokenFor(user);
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const { client, inbox } = await connectClient(transport, `pooled-${user}`);
    const c = { client, transport, inbox };
    open.push(c);
    return c;
  }

  before(async () => {
    for (const pid of childPids()) baseline.add(pid);
    gw = await startTestGateway({
      sessions: { modernIdleTimeout: '1s' },
      connections: { everything: { stdio: everythingStdio(), upstreamSessions: 'pooled' } },
    });
  });

  after(async () => {
    for (const c of open) await closeClient(c.client, c.transport).catch(() => {});
    await gw?.stop();
  });

  it('serves two client sessions of one principal from one server process, each with its own session id', async () => {
    const a = await connect();
    const b = await connect();
    assert.notEqual(a.transport.sessionId, b.transport.sessionId);
    assert.equal(a.client.getServerVersion()?.name, 'mcp-servers/everything');
    assert.ok(b.client.getServerCapabilities()?.tools, 'the pooled session’s capabilities are answered to the second client');
    const [ta, tb] = await Promise.all([a.client.listTools(), b.client.listTools()]);
    assert.ok(ta.tools.some((t) => t.name === 'echo') && tb.tools.some((t) => t.name === 'echo'));
    const [ea, eb] = await Promise.all([
      a.client.callTool({ name: 'echo', arguments: { message: 'from a' } }),
      b.client.callTool({ name: 'echo', arguments: { message: 'from b' } }),
    ]);
    assert.equal(text(ea), 'Echo: from a');
    assert.equal(text(eb), 'Echo: from b');
    assert.equal(gw.gateway.sharedUpstreams.size, 1, 'one pooled upstream session for both client sessions');
    // `protocol: auto` probes with a process that may linger a moment: the count settles at one.
    await waitFor(() => servers().length === 1, 'one server process for both sessions');
  });

  it('routes an elicitation and a sampling request to the client whose call made it, and its answer back', async () => {
    const [a, b] = open;
    const elicited = await a!.client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.match(text(elicited), /Ada Lovelace/);
    assert.equal(a!.inbox.elicitation.length, 1);
    assert.equal(b!.inbox.elicitation.length, 0, 'the other client of the pooled session was not asked');
    const sampled = await b!.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'for b only', maxTokens: 5 } });
    assert.match(text(sampled), /sampled reply from the test client/);
    assert.equal(b!.inbox.sampling.length, 1);
    assert.equal(a!.inbox.sampling.length, 0);
  });

  it('refuses a server request it cannot attribute: two clients with calls in flight, neither is asked', async () => {
    const [a, b] = open;
    const before = { a: a!.inbox.elicitation.length, b: b!.inbox.elicitation.length };
    let progressed!: () => void;
    const inFlight = new Promise<void>((resolve) => (progressed = resolve));
    const stop = new AbortController();
    // Long enough to be in flight however slow the machine; aborted (cancelled upstream) once A's call is over.
    const long = b!.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 60 } }, undefined, {
      onprogress: () => progressed(),
      signal: stop.signal,
    });
    // B's call is surely in flight once its first progress has arrived.
    await inFlight;
    const result = await a!.client.callTool({ name: 'trigger-elicitation-request', arguments: {} }).catch((err: Error) => err);
    assert.ok(result instanceof Error || (result as CallToolResult).isError === true, `the call failed: ${JSON.stringify(result)}`);
    assert.deepEqual({ a: a!.inbox.elicitation.length, b: b!.inbox.elicitation.length }, before);
    await waitFor(
      () => gw.log.lines.some((l) => l.msg === 'server request on a pooled session refused: no single client it is made for'),
      'the refusal logged',
    );
    stop.abort('done');
    await assert.rejects(long);
    await waitFor(() => gw.gateway.sharedUpstreams.busy === 0, 'the long call cancelled upstream');
  });

  it('gives each client its own progress, even when both clients use the same progress token', async () => {
    const [a, b] = open;
    const seen = { a: [] as number[], b: [] as number[] };
    // Both SDK clients use their request id as progress token: their ids are in step, so the tokens collide.
    const [ra, rb] = await Promise.all([
      a!.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } }, undefined, {
        onprogress: (p) => seen.a.push(p.progress),
      }),
      b!.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.9, steps: 3 } }, undefined, {
        onprogress: (p) => seen.b.push(p.progress),
      }),
    ]);
    assert.match(text(ra), /completed/i);
    assert.match(text(rb), /completed/i);
    // The SDK may drop the last progress when it arrives with the response (relay.test.ts); never one of another call.
    for (const [who, list] of Object.entries(seen)) {
      assert.ok(list.length >= 2 && list.length <= 3, `${who} saw its own progress only: ${JSON.stringify(list)}`);
      assert.deepEqual(list, [1, 2, 3].slice(0, list.length));
    }
  });

  it('cancels a call upstream when its client aborts it; the pooled session keeps serving', async () => {
    const [a] = open;
    const controller = new AbortController();
    const call = a!.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 5, steps: 5 } }, undefined, {
      signal: controller.signal,
      onprogress: () => controller.abort('changed my mind'),
    });
    await assert.rejects(call, /abort|changed my mind|cancel/i);
    assert.equal(text(await a!.client.callTool({ name: 'echo', arguments: { message: 'still here' } })), 'Echo: still here');
    // The 5 s operation is no longer awaited on the shared session: its cancellation reached it under the link's id.
    assert.equal(gw.gateway.sharedUpstreams.busy, 0);
  });

  it('sends what belongs to no request (log messages) to every client session on the shared session', async () => {
    const [a, b] = open;
    const heard = { a: 0, b: 0 };
    a!.client.setNotificationHandler(LoggingMessageNotificationSchema, () => void heard.a++);
    b!.client.setNotificationHandler(LoggingMessageNotificationSchema, () => void heard.b++);
    // A sets the level and starts the server's simulated logging: the server's session state, which B shares.
    await a!.client.setLoggingLevel('debug');
    await a!.client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    try {
      await waitFor(() => heard.a > 0 && heard.b > 0, 'a log message on both clients’ GET streams', 20_000);
    } finally {
      await a!.client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    }
  });

  it('never shares a server process between two principals', async () => {
    const c = await connect('other');
    assert.equal(text(await c.client.callTool({ name: 'echo', arguments: { message: 'other principal' } })), 'Echo: other principal');
    assert.equal(gw.gateway.sharedUpstreams.size, 2, 'the second principal has a pooled session of its own');
    await waitFor(() => servers().length === 2, 'a server process for each principal');
  });

  it('records each client session on its own, and each recording verifies', async () => {
    const ids = open.map((c) => c.transport.sessionId!);
    assert.equal(new Set(ids).size, ids.length);
    const [a] = open;
    await closeClient(a!.client, a!.transport);
    await waitFor(() => gw.gateway.sessions.get(ids[0]!) === undefined, 'the first session closed');
    const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
    try {
      const key = gw.gateway.recorder!.key;
      const keys = await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]);
      const result = await verifySession(store, ids[0]!, keys);
      assert.deepEqual(result.problems, []);
      assert.equal(result.status, 'verified');
      const row = await store.getSession(ids[0]!);
      assert.equal(row?.subject, 'tester');
    } finally {
      await store.close();
    }
  });

  it('a DELETE ends only that client session; the server process lives on while others use it, and goes once unused', async () => {
    const [, b, other] = open;
    // A's DELETE (previous test) left B's session and the shared process working.
    assert.equal(text(await b!.client.callTool({ name: 'echo', arguments: { message: 'b after a left' } })), 'Echo: b after a left');
    await waitFor(() => servers().length === 2, 'a server process for each principal');
    const running = servers();
    await closeClient(b!.client, b!.transport);
    await closeClient(other!.client, other!.transport);
    // Unused for sessions.modernIdleTimeout (1 s), the pooled sessions close and their processes exit.
    await waitFor(() => running.every((pid) => !isAlive(pid)), 'the pooled server processes to exit once unused', 20_000);
    assert.equal(gw.gateway.sharedUpstreams.size, 0);
  });
});
