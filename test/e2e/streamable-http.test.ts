import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
/* eslint-disable @typescript-eslint/no-explicit-any */
import { mcpHeaders, postInitialize, rawInitialize, type SseEvent, sseEvents } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/** The Streamable HTTP edge on the wire: response modes, batches, the GET stream, resumption, keep-alives. */
describe('Streamable HTTP edge', () => {
  let gw: TestGateway;
  let endpoint: URL;

  before(async () => {
    gw = await startTestGateway({ connections: { everything: { stdio: everythingStdio() } }, http: { keepAlive: '1s' } });
    endpoint = gw.mcp('everything');
  });
  after(() => gw.stop());

  const headersFor = (sessionId: string) => ({ ...mcpHeaders, ...gw.auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' });

  function longCall(id: string, token: string, duration: number, steps: number) {
    return JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'trigger-long-running-operation', arguments: { duration, steps }, _meta: { progressToken: token } },
    });
  }

  it('answers a lone request with plain JSON and the session header', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth);
    const res = await fetch(endpoint, { method: 'POST', headers: headersFor(sessionId), body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' }) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(res.headers.get('mcp-session-id'), sessionId);
    assert.deepEqual(await res.json(), { jsonrpc: '2.0', id: 7, result: {} });
  });

  it('switches to SSE when messages precede the response, with buffering disabled for proxies', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth);
    const res = await fetch(endpoint, { method: 'POST', headers: headersFor(sessionId), body: longCall('c1', 'tok', 0.3, 3) });
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    const messages: any[] = [];
    for await (const e of sseEvents(res.body!)) messages.push(JSON.parse(e.data));
    assert.deepEqual(
      messages.map((m) => m.method ?? `response:${m.id}`),
      ['notifications/progress', 'notifications/progress', 'notifications/progress', 'response:c1'],
    );
    assert.equal(messages[0].params.progressToken, 'tok', 'the client’s progress token is kept');
  });

  it('accepts a batch of requests and answers each on one stream; a batch of notifications gets 202', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth);
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: headersFor(sessionId),
      body: JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'ping' },
        { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      ]),
    });
    const ids: unknown[] = [];
    for await (const e of sseEvents(res.body!)) ids.push(JSON.parse(e.data).id);
    assert.deepEqual(ids.sort(), [1, 2]);
    const notes = await fetch(endpoint, {
      method: 'POST',
      headers: headersFor(sessionId),
      body: JSON.stringify([{ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }]),
    });
    assert.equal(notes.status, 202);
  });

  it('refuses a request id that is already in flight', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth);
    const first = fetch(endpoint, { method: 'POST', headers: headersFor(sessionId), body: longCall('dup', 't', 3, 1) });
    // The second goes once the first is in flight, not after a guess at how long that takes.
    await waitFor(() => (gw.gateway.sessions.get(sessionId)?.pendingRequests ?? 0) > 0, 'the first call to be in flight');
    const second = await fetch(endpoint, {
      method: 'POST',
      headers: headersFor(sessionId),
      body: JSON.stringify({ jsonrpc: '2.0', id: 'dup', method: 'ping' }),
    });
    assert.equal(second.status, 409);
    await (await first).text();
  });

  it('opens one standalone GET stream per session (409 for a second) and keeps it alive with comments', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth);
    const controller = new AbortController();
    const get = await fetch(endpoint, { headers: { ...gw.auth, accept: 'text/event-stream', 'mcp-session-id': sessionId }, signal: controller.signal });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('x-accel-buffering'), 'no');
    const second = await fetch(endpoint, { headers: { ...gw.auth, accept: 'text/event-stream', 'mcp-session-id': sessionId } });
    assert.equal(second.status, 409);
    // Keep-alive comments arrive on a quiet stream (interval 1s in this test's config).
    const reader = get.body!.getReader();
    let seen = '';
    const deadline = Date.now() + 5000;
    while (!seen.includes(': keep-alive') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    assert.match(seen, /: keep-alive/);
    controller.abort();
  });

  it('resumes a dropped POST stream with Last-Event-ID: only that stream’s missed events, no duplicates', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth);
    // Two calls in flight, each on its own POST stream.
    const aborter = new AbortController();
    const a = await fetch(endpoint, { method: 'POST', headers: headersFor(sessionId), body: longCall('A', 'token-a', 1.2, 3), signal: aborter.signal });
    const bDone = fetch(endpoint, { method: 'POST', headers: headersFor(sessionId), body: longCall('B', 'token-b', 1.2, 3) }).then(async (r) => {
      const out: SseEvent[] = [];
      for await (const e of sseEvents(r.body!)) out.push(e);
      return out;
    });
    // Read A's first event, then drop the connection.
    const iterator = sseEvents(a.body!);
    const first = (await iterator.next()).value as SseEvent;
    assert.equal(JSON.parse(first.data).params.progressToken, 'token-a');
    assert.ok(first.id, 'events carry ids');
    aborter.abort();
    await bDone; // by now A's remaining events were produced while nobody listened

    const resumed = await fetch(endpoint, { headers: { ...gw.auth, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'last-event-id': first.id! } });
    assert.equal(resumed.status, 200);
    const replay: any[] = [];
    for await (const e of sseEvents(resumed.body!)) replay.push(JSON.parse(e.data));
    assert.deepEqual(
      replay.map((m) => (m.method ? `progress:${m.params.progressToken}:${m.params.progress}` : `response:${m.id}`)),
      ['progress:token-a:2', 'progress:token-a:3', 'response:A'],
    );
  });

  it('lets a resumption take over a stream whose old connection has not been seen closing (as behind a load balancer)', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth);
    // Seconds between events: the old connection is still attached when the resumption arrives, however slow the machine.
    const old = await fetch(endpoint, { method: 'POST', headers: headersFor(sessionId), body: longCall('A', 'token-a', 6, 3) });
    const oldEvents = sseEvents(old.body!);
    const first = (await oldEvents.next()).value as SseEvent;
    // The old connection is still open: the resumption arrives first, as when its close is still on its way.
    const resumed = await fetch(endpoint, { headers: { ...gw.auth, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'last-event-id': first.id! } });
    assert.equal(resumed.status, 200, await resumed.clone().text());
    const replay: any[] = [];
    for await (const e of sseEvents(resumed.body!)) replay.push(JSON.parse(e.data));
    assert.deepEqual(
      replay.map((m) => (m.method ? `progress:${m.params.progressToken}:${m.params.progress}` : `response:${m.id}`)),
      ['progress:token-a:2', 'progress:token-a:3', 'response:A'],
    );
    // The superseded connection was dropped (reset, not ended: it never got the response).
    await assert.rejects(async () => {
      for await (const _ of oldEvents);
    });
    // A second plain GET is still refused while the session's own GET stream is open.
    const controller = new AbortController();
    const get = await fetch(endpoint, { headers: { ...gw.auth, accept: 'text/event-stream', 'mcp-session-id': sessionId }, signal: controller.signal });
    assert.equal(get.status, 200);
    const second = await fetch(endpoint, { headers: { ...gw.auth, accept: 'text/event-stream', 'mcp-session-id': sessionId } });
    assert.equal(second.status, 409);
    controller.abort();
  });

  it('primes each 2025-11-25 SSE stream with an event id, so a client cut off before any message resumes everything', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth, '2025-11-25');
    const aborter = new AbortController();
    const res = await fetch(endpoint, { method: 'POST', headers: headersFor(sessionId), body: longCall('P', 'token-p', 0.6, 2), signal: aborter.signal });
    const first = (await sseEvents(res.body!, { includePriming: true }).next()).value as SseEvent;
    assert.equal(first.data, '', 'the first event is the priming event');
    assert.ok(first.id);
    aborter.abort();
    await new Promise((r) => setTimeout(r, 900));
    const resumed = await fetch(endpoint, { headers: { ...gw.auth, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'last-event-id': first.id! } });
    const replay: any[] = [];
    for await (const e of sseEvents(resumed.body!)) replay.push(JSON.parse(e.data));
    assert.deepEqual(
      replay.map((m) => (m.method ? `progress:${m.params.progress}` : `response:${m.id}`)),
      ['progress:1', 'progress:2', 'response:P'],
    );
  });

  it('does not prime streams of older protocol versions', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth, '2025-06-18');
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { ...headersFor(sessionId), 'mcp-protocol-version': '2025-06-18' },
      body: longCall('O', 'token-o', 0.2, 1),
    });
    const events = [];
    for await (const e of sseEvents(res.body!, { includePriming: true })) events.push(e);
    assert.ok(
      events.every((e) => e.data !== ''),
      'no empty-data event',
    );
  });

  it('DELETE ends the session; the id then gets 404', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth);
    const del = await fetch(endpoint, { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': sessionId } });
    assert.equal(del.status, 200);
    const after = await fetch(endpoint, { method: 'POST', headers: headersFor(sessionId), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) });
    assert.equal(after.status, 404);
    assert.equal(((await after.json()) as any).error.code, -32001);
  });

  it('relays protocol version 2024-11-05 and 2025-03-26 sessions (no version header)', async () => {
    for (const version of ['2024-11-05', '2025-03-26', '2025-06-18']) {
      const res = await postInitialize(endpoint, gw.auth, { protocolVersion: version });
      const body = (await res.json()) as any;
      assert.equal(body.result.protocolVersion, version);
      const sessionId = res.headers.get('mcp-session-id')!;
      const ping = await fetch(endpoint, {
        method: 'POST',
        headers: { ...mcpHeaders, ...gw.auth, 'mcp-session-id': sessionId },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
      });
      assert.equal(ping.status, 200);
      await ping.text();
      await fetch(endpoint, { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': sessionId } });
    }
  });

  it('passes through methods the gateway does not know, and the server’s answer to them', async () => {
    const sessionId = await rawInitialize(endpoint, gw.auth);
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: headersFor(sessionId),
      body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'vendor/custom-thing', params: { x: 1 } }),
    });
    const body = (await res.json()) as any;
    assert.equal(body.id, 5);
    assert.equal(body.error.code, -32601, 'the server itself said method not found');
  });
});
