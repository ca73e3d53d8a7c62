import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../../src/protocol/jsonrpc.js';
import { maxInputRounds } from '../../src/upstream/legacy-shim.js';
import type { CallHandlers, ModernConnection, ModernTransport } from '../../src/upstream/modern-connection.js';
import { ModernUpstream } from '../../src/upstream/modern-upstream.js';

/**
 * The emulated legacy session over a scripted 2026-07-28 server: `answer` decides each response from the request
 * the server received, as a stateless server would.
 */
function scripted(answer: (request: JsonRpcRequest) => Record<string, unknown> | { error: { code: number; message: string } }) {
  const received: JsonRpcRequest[] = [];
  let cancelled = 0;
  const transport: ModernTransport = {
    call(request: JsonRpcRequest, h: CallHandlers) {
      received.push(request);
      let live = true;
      queueMicrotask(() => {
        if (!live) return;
        const a = answer(request);
        const response = ('error' in a ? { jsonrpc: '2.0', id: request.id, error: a.error } : { jsonrpc: '2.0', id: request.id, result: a }) as JsonRpcResponse;
        h.message(response, JSON.stringify(response));
      });
      return {
        cancel: () => {
          live = false;
          cancelled++;
        },
      };
    },
    close: async () => {},
  };
  const connection: ModernConnection = {
    version: '2026-07-28',
    discover: { supportedVersions: ['2026-07-28'], capabilities: { tools: {} }, serverInfo: { name: 's', version: '1' }, instructions: 'be nice' },
    transport,
    toolHeaders: new Map(),
  };
  const upstream = new ModernUpstream(connection);
  const out: JsonRpcMessage[] = [];
  /** Each message's text as the link hands it on (what the session records and relays). */
  const texts: string[] = [];
  upstream.onmessage = (m, text) => {
    out.push(m);
    texts.push(text);
  };
  const send = (m: Record<string, unknown>) => upstream.send(m as unknown as JsonRpcMessage, JSON.stringify(m));
  let read = 0;
  /** The next message the client would get, in order. */
  const next = async () => {
    for (let i = 0; i < 50 && out.length <= read; i++) await new Promise((r) => setImmediate(r));
    assert.ok(out.length > read, 'a message for the client');
    return out[read++]!;
  };
  return { upstream, received, out, texts, send, next, cancelled: () => cancelled };
}

async function initialize(t: ReturnType<typeof scripted>, capabilities: Record<string, unknown>) {
  await t.send({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities, clientInfo: { name: 'c', version: '9' } },
  });
  return (await t.next()) as JsonRpcResponse;
}

const ask = {
  resultType: 'input_required',
  inputRequests: { q: { method: 'elicitation/create', params: { message: 'Name?' } } },
  requestState: 'SECRET-STATE',
};

describe('ModernUpstream: a legacy session over a 2026-07-28 server', () => {
  it('answers initialize itself from discover, and sends every request with the envelope of that initialize', async () => {
    const t = scripted(() => ({ tools: [] }));
    const init = await initialize(t, { elicitation: {} });
    assert.deepEqual(init.result, {
      protocolVersion: '2025-06-18',
      capabilities: { tools: {} },
      serverInfo: { name: 's', version: '1' },
      instructions: 'be nice',
    });
    assert.equal(t.received.length, 0, 'initialize never reaches the server');
    await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await t.send({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/list',
      params: { requestState: 'forged', _meta: { progressToken: 7, 'io.modelcontextprotocol/clientInfo': { name: 'liar' } } },
    });
    assert.deepEqual((await t.next()) as JsonRpcResponse, { jsonrpc: '2.0', id: 1, result: { tools: [] } });
    assert.deepEqual(t.received[0]!.params, {
      _meta: {
        progressToken: 7,
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': { name: 'c', version: '9' },
        'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
      },
    });
  });

  it("sends the gateway's trace context in the request _meta, in place of the client's, and none when tracing is off", async () => {
    const t = scripted(() => ({ content: [] }));
    await initialize(t, {});
    const client = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const gateway = '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01';
    const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', _meta: { traceparent: client } } };
    await t.upstream.send(call as unknown as JsonRpcMessage, JSON.stringify(call), gateway);
    await t.next();
    assert.equal((t.received[0]!.params!._meta as Record<string, unknown>).traceparent, gateway);
    await t.send({ ...call, id: 2 });
    await t.next();
    assert.equal((t.received[1]!.params!._meta as Record<string, unknown>).traceparent, client, "tracing off: the client's own, untouched");
  });

  it('plays input rounds to the client and retries with its answers; the server state never reaches the client', async () => {
    const t = scripted((r) => (r.params?.inputResponses === undefined ? ask : { content: [{ type: 'text', text: 'done' }] }));
    await initialize(t, { elicitation: {} });
    await t.send({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'x', arguments: {} } });
    const question = (await t.next()) as JsonRpcRequest;
    assert.equal(question.method, 'elicitation/create');
    assert.deepEqual(question.params, { message: 'Name?' });
    await t.send({ jsonrpc: '2.0', id: question.id, result: { action: 'accept', content: { name: 'Ada' } } });
    const result = (await t.next()) as JsonRpcResponse;
    assert.deepEqual(result, { jsonrpc: '2.0', id: 5, result: { content: [{ type: 'text', text: 'done' }] } });
    const retry = t.received[1]!;
    assert.notEqual(retry.id, t.received[0]!.id, 'the retry is a request of its own');
    assert.equal(retry.params?.requestState, 'SECRET-STATE');
    assert.deepEqual(retry.params?.inputResponses, { q: { action: 'accept', content: { name: 'Ada' } } });
    assert.ok(!JSON.stringify(t.out).includes('SECRET-STATE'));
  });

  it('refuses a round the client cannot answer, gives up after the round limit, and passes on a client refusal', async () => {
    const undeclared = scripted(() => ask);
    await initialize(undeclared, {});
    await undeclared.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } });
    assert.equal(((await undeclared.next()) as JsonRpcResponse).error?.code, -32021);

    const endless = scripted(() => ({ resultType: 'input_required', requestState: 'again' }));
    await initialize(endless, {});
    await endless.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } });
    const gaveUp = (await endless.next()) as JsonRpcResponse;
    assert.match(gaveUp.error?.message ?? '', /more than 8 times/);
    assert.equal(endless.received.length, maxInputRounds + 1, 'the first request and one retry per round');

    const refused = scripted(() => ask);
    await initialize(refused, { elicitation: {} });
    await refused.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x' } });
    const q = (await refused.next()) as JsonRpcRequest;
    await refused.send({ jsonrpc: '2.0', id: q.id, error: { code: -1, message: 'user closed the dialog' } });
    const failed = (await refused.next()) as JsonRpcResponse;
    assert.equal(failed.id, 2);
    assert.match(failed.error?.message ?? '', /user closed the dialog/);
  });

  it('withdraws the open questions when the client cancels, and cancels calls in flight', async () => {
    const t = scripted(() => ask);
    await initialize(t, { elicitation: {} });
    await t.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'x' } });
    const q = (await t.next()) as JsonRpcRequest;
    await t.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3 } });
    const withdrawn = (await t.next()) as unknown as { method: string; params: { requestId: unknown } };
    assert.equal(withdrawn.method, 'notifications/cancelled');
    assert.equal(withdrawn.params.requestId, q.id);
    const before = t.out.length;
    await t.send({ jsonrpc: '2.0', id: q.id, result: { action: 'accept', content: {} } });
    await new Promise((r) => setImmediate(r));
    assert.equal(t.out.length, before, 'a late answer retries nothing');
    assert.equal(t.received.length, 1);
  });

  it("binds the server's task ids to the session that created them", async () => {
    const t = scripted((r) =>
      r.method === 'tools/call'
        ? { task: { taskId: 'task-mine', status: 'working' } }
        : r.method === 'tasks/list'
          ? { tasks: [{ taskId: 'task-mine' }, { taskId: 'task-other' }] }
          : { taskId: r.params?.taskId, status: 'working' },
    );
    await initialize(t, {});
    await t.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', task: {} } });
    await t.next();
    await t.send({ jsonrpc: '2.0', id: 2, method: 'tasks/get', params: { taskId: 'task-mine' } });
    assert.equal(((await t.next()) as JsonRpcResponse).result?.taskId, 'task-mine');
    await t.send({ jsonrpc: '2.0', id: 3, method: 'tasks/get', params: { taskId: 'task-other' } });
    const refused = (await t.next()) as JsonRpcResponse;
    assert.equal(refused.error?.code, -32602);
    // A task id of another type (a number a server might coerce) is refused the same way.
    await t.send({ jsonrpc: '2.0', id: 5, method: 'tasks/result', params: { taskId: 7 } });
    assert.equal(((await t.next()) as JsonRpcResponse).error?.code, -32602);
    assert.equal(t.received.length, 2, "another session's task id never reaches the server");
    await t.send({ jsonrpc: '2.0', id: 4, method: 'tasks/list', params: {} });
    assert.deepEqual(((await t.next()) as JsonRpcResponse).result?.tasks, [{ taskId: 'task-mine' }]);
    // The text relayed and recorded is the filtered list too, not the server's.
    assert.doesNotMatch(t.texts.at(-1)!, /task-other/);
  });
});
