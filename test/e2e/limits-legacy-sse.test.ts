import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type SseEvent, sseEvents } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Limits against what only a legacy SSE client can send on one session. It may reuse a request id before its
 * answer (each use counts in flight): the answer to a use the limits refused must not give back the place of a use
 * that was admitted and still waits, or a client could keep any number of requests at its server by reusing one id.
 * And it may send initialize again and again: only the session's first is paced as a session opening.
 */

/** A stdio server whose `wait` answers only when the client sends notifications/roots/list_changed. */
const server = `
const rl = require('node:readline').createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
const waiting = [];
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method === 'initialize') send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'wait', version: '1' } } });
  else if (m.method === 'tools/call') waiting.push(m.id);
  else if (m.method === 'notifications/roots/list_changed') for (const id of waiting.splice(0)) send({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'waited' }] } });
  else if (m.id !== undefined) send({ jsonrpc: '2.0', id: m.id, result: {} });
});
`;

/** A legacy SSE session over raw HTTP: POST a message (202 expected), read the next message off the stream. */
async function legacySession(gw: TestGateway): Promise<{
  post(body: unknown): Promise<void>;
  next(): Promise<{ id?: unknown; result?: unknown; error?: { code: number; data?: { limit?: string } } }>;
  close(): Promise<void>;
}> {
  const controller = new AbortController();
  const stream = await fetch(gw.sse('tools'), { headers: { accept: 'text/event-stream', ...gw.auth }, signal: controller.signal });
  assert.equal(stream.status, 200);
  const events: AsyncGenerator<SseEvent> = sseEvents(stream.body!);
  const endpoint = new URL((await events.next()).value!.data, gw.url);
  return {
    async post(body) {
      const res = await fetch(endpoint, { method: 'POST', headers: { ...gw.auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, 202, await res.text());
    },
    next: async () => JSON.parse((await events.next()).value!.data),
    async close() {
      controller.abort();
      await events.return(undefined).catch(() => {});
    },
  };
}

const initialize = (id: string) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

describe('limits: a request id reused on the legacy SSE edge', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      connections: { tools: { stdio: { command: process.execPath, args: ['-e', server] }, tools: { pin: false } } },
      limits: { principal: { requestsInFlight: 2 } },
    });
  });
  after(() => gw?.stop());

  it('the refusal of a reused id does not free the place of the admitted request under that id', async () => {
    const { post, next, close } = await legacySession(gw);
    try {
      await post(initialize('init'));
      assert.equal((await next()).id, 'init');
      await post({ jsonrpc: '2.0', method: 'notifications/initialized' });

      const wait = { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'wait', arguments: {} } };
      await post(wait);
      await post(wait);
      await waitFor(() => gw.gateway.limits.usage.requestsInFlight === 2, 'both uses of id 5 to be in flight');
      await post(wait);
      const refused = await next();
      assert.equal(refused.id, 5);
      assert.equal(refused.error?.code, -31029);
      assert.equal(refused.error?.data?.limit, 'limits.principal.requestsInFlight');
      // The refusal has reached the client: both admitted uses still wait at the server, and still count.
      assert.equal(gw.gateway.limits.usage.requestsInFlight, 2);

      await post({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
      assert.equal((await next()).id, 5);
      assert.equal((await next()).id, 5);
      await waitFor(() => gw.gateway.limits.usage.requestsInFlight === 0, 'the answered uses to leave');
    } finally {
      await close();
    }
  });
});

describe('limits: initialize sent again on a legacy SSE session', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      connections: { tools: { stdio: { command: process.execPath, args: ['-e', server] }, tools: { pin: false } } },
      limits: { principal: { requests: { perSecond: 0.001, burst: 1 } } },
    });
  });
  after(() => gw?.stop());

  it('is paced by limits.principal.requests: only the first opens the session', async () => {
    const { post, next, close } = await legacySession(gw);
    try {
      await post(initialize('open'));
      assert.ok((await next()).result, 'the opening initialize is paced by session opens, not the request rate');
      await post(initialize('again-1'));
      assert.ok((await next()).result, 'the one request the burst allows');
      await post(initialize('again-2'));
      const refused = await next();
      assert.equal(refused.id, 'again-2');
      assert.equal(refused.error?.code, -31029);
      assert.equal(refused.error?.data?.limit, 'limits.principal.requests');
    } finally {
      await close();
    }
  });
});
