import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonRpcRequest, JsonRpcResponse } from '../../src/protocol/jsonrpc.js';
import { GatewayRequests } from '../../src/exchange/gateway-requests.js';

/** The gateway's own requests to a server, on their own: string ids, settled by their answers, never left hanging. */

function harness(timeoutMs?: number) {
  const sent: JsonRpcRequest[] = [];
  const answered: Array<[string, string]> = [];
  const own = new GatewayRequests({ send: (r) => sent.push(r), answered: (id, text) => answered.push([id, text]) }, timeoutMs);
  return { own, sent, answered };
}

describe('GatewayRequests', () => {
  it('sends a request with a string id and resolves with the result of its answer, recording it first', async () => {
    const { own, sent, answered } = harness();
    const result = own.request('tools/list', {});
    assert.equal(sent.length, 1);
    const id = sent[0]!.id;
    assert.equal(typeof id, 'string');
    assert.equal(sent[0]!.method, 'tools/list');
    const response: JsonRpcResponse = { jsonrpc: '2.0', id, result: { tools: [] } };
    assert.equal(own.settle(response, '{"text":1}'), true);
    assert.deepEqual(answered, [[id, '{"text":1}']]);
    assert.deepEqual(await result, { tools: [] });
    assert.equal(own.settle(response, '{}'), false, 'answered once');
  });

  it("answers that are not the gateway's are left to the session: numeric ids, unknown strings", () => {
    const { own } = harness();
    void own.request('tools/list', {}).catch(() => {});
    assert.equal(own.settle({ jsonrpc: '2.0', id: 1, result: {} }, '{}'), false);
    assert.equal(own.settle({ jsonrpc: '2.0', id: 'someone-else', result: {} }, '{}'), false);
    own.close('done');
  });

  it('rejects on an error response, naming the server refusal', async () => {
    const { own, sent } = harness();
    const result = own.request('tools/list', {});
    own.settle({ jsonrpc: '2.0', id: sent[0]!.id, error: { code: -32601, message: 'no such method' } }, '{}');
    await assert.rejects(result, /the server refused the gateway's request: no such method/);
  });

  it('rejects when the server does not answer in time, and when the session ends', async () => {
    const { own } = harness(10);
    // The timeout's timer does not keep a process alive (unref); this one keeps the test's alive until it fires.
    const alive = setTimeout(() => {}, 10_000);
    await assert.rejects(own.request('tools/list', {}), /did not answer the gateway's tools\/list within 0.01s/);
    clearTimeout(alive);
    const { own: other } = harness();
    const pending = other.request('tools/list', {});
    other.close('client left');
    await assert.rejects(pending, /session ended: client left/);
  });

  it('ids never repeat within a session', () => {
    const { own, sent } = harness();
    for (let i = 0; i < 5; i++) void own.request('ping', {}).catch(() => {});
    assert.equal(new Set(sent.map((r) => r.id)).size, 5);
    own.close('done');
  });
});
