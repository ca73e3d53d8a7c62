import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Direction } from '../../src/core/direction.js';
import { inspectWith, type ListKind, type MessageContext, type StageHandlers, type Verdict } from '../../src/pipeline/stage.js';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../../src/protocol/jsonrpc.js';
import { sessionInfo } from '../helpers/session-info.js';

/** The stage contract's typed conveniences: `inspectWith` tells a message apart once and calls the right handler. */

const session = sessionInfo('s1', 'c', { subject: 'alice', issuer: 'https://idp.test', groups: [] });
const ctx = (direction: Direction, request?: JsonRpcRequest): MessageContext => (request ? { session, direction, request } : { session, direction });
const refuse: Verdict = { action: 'answer', reason: 'seen' };

class Recording implements StageHandlers {
  readonly calls: unknown[][] = [];
  readonly inspect = inspectWith(this);
  onToolCall(request: JsonRpcRequest, tool: string | undefined): Verdict {
    this.calls.push(['call', request.id, tool]);
    return refuse;
  }
  onRequest(request: JsonRpcRequest): undefined {
    this.calls.push(['request', request.method]);
    return undefined;
  }
  onList(kind: ListKind, _response: JsonRpcResponse, items: readonly unknown[]): undefined {
    this.calls.push(['list', kind, items.length]);
    return undefined;
  }
}

describe('inspectWith', () => {
  it('a tools/call to the server goes to onToolCall, with its name only when that is a string', () => {
    const s = new Recording();
    assert.equal(s.inspect({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } }, ctx('toServer')), refuse);
    s.inspect({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 5 } }, ctx('toServer'));
    s.inspect({ jsonrpc: '2.0', id: 3, method: 'tools/call' }, ctx('toServer'));
    assert.deepEqual(s.calls, [
      ['call', 1, 'echo'],
      ['call', 2, undefined],
      ['call', 3, undefined],
    ]);
  });

  it('other requests to the server go to onRequest; notifications and responses to the server to nothing', () => {
    const s = new Recording();
    s.inspect({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'x' } }, ctx('toServer'));
    s.inspect({ jsonrpc: '2.0', method: 'notifications/initialized' }, ctx('toServer'));
    s.inspect({ jsonrpc: '2.0', id: 4, result: {} }, ctx('toServer'));
    assert.deepEqual(s.calls, [['request', 'resources/read']]);
  });

  it('list results to the client go to onList by kind, only when their items are an array; other messages to nothing', () => {
    const s = new Recording();
    const ask = (method: string): JsonRpcRequest => ({ jsonrpc: '2.0', id: 1, method });
    const answer = (result: Record<string, unknown>): JsonRpcMessage => ({ jsonrpc: '2.0', id: 1, result });
    s.inspect(answer({ tools: [1, 2] }), ctx('toClient', ask('tools/list')));
    s.inspect(answer({ prompts: [] }), ctx('toClient', ask('prompts/list')));
    s.inspect(answer({ resources: [1] }), ctx('toClient', ask('resources/list')));
    s.inspect(answer({ resourceTemplates: [1, 2, 3] }), ctx('toClient', ask('resources/templates/list')));
    s.inspect(answer({ tools: 'not a list' }), ctx('toClient', ask('tools/list')));
    s.inspect(answer({ tools: [] }), ctx('toClient', ask('tools/call')));
    s.inspect(answer({ tools: [] }), ctx('toClient', ask('toString')));
    s.inspect({ jsonrpc: '2.0', id: 1, error: { code: 1, message: 'no' } }, ctx('toClient', ask('tools/list')));
    s.inspect({ jsonrpc: '2.0', id: 7, method: 'sampling/createMessage' }, ctx('toClient'));
    assert.deepEqual(s.calls, [
      ['list', 'tools', 2],
      ['list', 'prompts', 0],
      ['list', 'resources', 1],
      ['list', 'resourceTemplates', 3],
    ]);
  });

  it('handlers left out let everything through', () => {
    const inspect = inspectWith({});
    assert.equal(inspect({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } }, ctx('toServer')), undefined);
    assert.equal(inspect({ jsonrpc: '2.0', id: 1, result: { tools: [] } }, ctx('toClient', { jsonrpc: '2.0', id: 1, method: 'tools/list' })), undefined);
  });
});
