import { sessionInfo } from '../helpers/session-info.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import type { MessageContext } from '../../src/pipeline/stage.js';
import type { Direction } from '../../src/core/direction.js';
import type { VerdictEvent } from '../../src/core/verdict-event.js';
import { ToolFilterStage } from '../../src/pipeline/tool-filter.js';
import { ErrorCode, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '../../src/protocol/jsonrpc.js';

/** Per-connection tool allow/deny: hidden from tools/list, refused on tools/call before the server sees it. */

const session = sessionInfo('s1', 'prod-db', { subject: 'alice', issuer: 'https://idp.test', groups: [] });
const ctx = (direction: Direction, request?: JsonRpcRequest): MessageContext => (request ? { session, direction, request } : { session, direction });
const listRequest: JsonRpcRequest = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };
const tool = (name: string) => ({ name, description: `the ${name} tool`, inputSchema: { type: 'object' } });
const callOf = (name: unknown, id: string | number = 9): JsonRpcRequest =>
  ({ jsonrpc: '2.0', id, method: 'tools/call', params: name === undefined ? { arguments: {} } : { name, arguments: {} } }) as JsonRpcRequest;

function listResponse(names: string[], extra: Record<string, unknown> = {}): JsonRpcResponse {
  return { jsonrpc: '2.0', id: 1, result: { tools: names.map(tool), ...extra } };
}

/** The names left in a tools/list response after the stage. */
function visible(stage: ToolFilterStage, names: string[]): string[] {
  const response = listResponse(names);
  const v = stage.inspect(response, ctx('toClient', listRequest));
  if (v === undefined) return names;
  assert.equal(v.action, 'pass');
  const out = (v as { message: JsonRpcResponse }).message;
  return (out.result!.tools as Array<{ name: string }>).map((t) => t.name);
}

describe('ToolFilterStage.allows', () => {
  it('allow globs: exact names and * wildcards, anchored at both ends', () => {
    const s = new ToolFilterStage({ allow: ['echo', 'get_*', '*_sum', 'a*b*c'] });
    for (const name of ['echo', 'get_', 'get_tiny_image', 'get-sum_sum', '_sum', 'abc', 'aXbYc', 'abbbc']) assert.equal(s.allows(name), true, name);
    for (const name of ['echo2', 'xecho', 'Echo', 'get-x', 'forget_x', 'sum', 'ab', 'acb', '']) assert.equal(s.allows(name), false, name);
  });

  it('glob characters other than * are literal', () => {
    const s = new ToolFilterStage({ allow: ['a.b', 'x?', 'r[0-9]', 'p+', '(g)', 'd$', '^c', 'back\\slash', 'q{2}', 'o|k'] });
    for (const name of ['a.b', 'x?', 'r[0-9]', 'p+', '(g)', 'd$', '^c', 'back\\slash', 'q{2}', 'o|k']) assert.equal(s.allows(name), true, name);
    for (const name of ['aXb', 'x', 'xy', 'r5', 'pp', 'g', 'd', 'c', 'qq', 'o', 'k']) assert.equal(s.allows(name), false, name);
  });

  it('deny globs hide matching tools and allow everything else when there is no allow list', () => {
    const s = new ToolFilterStage({ deny: ['delete_*', 'drop'] });
    assert.equal(s.allows('delete_user'), false);
    assert.equal(s.allows('drop'), false);
    assert.equal(s.allows('dropped'), true);
    assert.equal(s.allows('read'), true);
  });

  it('deny wins over allow', () => {
    const s = new ToolFilterStage({ allow: ['*'], deny: ['*_admin', 'reboot'] });
    assert.equal(s.allows('user_admin'), false);
    assert.equal(s.allows('reboot'), false);
    assert.equal(s.allows('echo'), true);
    const both = new ToolFilterStage({ allow: ['echo'], deny: ['echo'] });
    assert.equal(both.allows('echo'), false);
  });

  it('an empty allow list allows nothing', () => {
    const s = new ToolFilterStage({ allow: [] });
    assert.equal(s.allows('echo'), false);
  });

  // BUG: `*` is compiled to `.*` without the s flag, so it does not match a newline and a deny rule can be stepped round.
  it('* matches any run of characters, newlines included (a deny cannot be stepped round)', () => {
    const s = new ToolFilterStage({ deny: ['delete_*'] });
    assert.equal(s.allows('delete_all\n'), false);
    assert.equal(s.allows('delete_\nall'), false);
  });

  it('forRules: no stage without rules, a stage with any', () => {
    assert.equal(ToolFilterStage.forRules({}), undefined);
    assert.equal(ToolFilterStage.forRules({ deny: [] }), undefined);
    assert.ok(ToolFilterStage.forRules({ allow: [] }) instanceof ToolFilterStage);
    assert.ok(ToolFilterStage.forRules({ deny: ['x'] }) instanceof ToolFilterStage);
    assert.ok(ToolFilterStage.forRules({ allow: ['*'] }) instanceof ToolFilterStage);
  });
});

describe('ToolFilterStage on tools/list', () => {
  const names = ['echo', 'get_sum', 'get_env', 'delete_all', 'trigger_x'];

  it('removes what is not allowed, keeping order and every other field of the tools', () => {
    const s = new ToolFilterStage({ allow: ['echo', 'get_*'], deny: ['get_env'] });
    assert.deepEqual(visible(s, names), ['echo', 'get_sum']);
    const v = s.inspect(listResponse(names), ctx('toClient', listRequest));
    assert.deepEqual((v as { message: JsonRpcResponse }).message.result!.tools, [tool('echo'), tool('get_sum')]);
  });

  it('keeps the rest of the result (cursor, _meta) and the response id', () => {
    const s = new ToolFilterStage({ deny: ['delete_*'] });
    const response = listResponse(names, { nextCursor: 'page-2', _meta: { a: 1 } });
    const v = s.inspect(response, ctx('toClient', listRequest));
    const out = (v as { message: JsonRpcResponse }).message;
    assert.equal(out.id, 1);
    assert.equal(out.jsonrpc, '2.0');
    assert.equal(out.result!.nextCursor, 'page-2');
    assert.deepEqual(out.result!._meta, { a: 1 });
    assert.equal((response.result!.tools as unknown[]).length, names.length, 'the upstream response itself is not mutated');
  });

  it('passes the response untouched when nothing is filtered', () => {
    const s = new ToolFilterStage({ deny: ['nothing_matches'] });
    assert.equal(s.inspect(listResponse(names), ctx('toClient', listRequest)), undefined);
  });

  it('drops entries without a string name when filtering', () => {
    const s = new ToolFilterStage({ allow: ['*'] });
    const response: JsonRpcResponse = { jsonrpc: '2.0', id: 1, result: { tools: [tool('ok'), { description: 'nameless' }, null, { name: 5 }] } };
    const v = s.inspect(response, ctx('toClient', listRequest));
    assert.deepEqual((v as { message: JsonRpcResponse }).message.result!.tools as unknown[], [tool('ok')]);
  });

  it('filters only a response to tools/list', () => {
    const s = new ToolFilterStage({ deny: ['delete_*'] });
    const response = listResponse(names);
    assert.equal(s.inspect(response, ctx('toClient')), undefined, 'no request known');
    assert.equal(s.inspect(response, ctx('toClient', { jsonrpc: '2.0', id: 1, method: 'prompts/list' })), undefined);
    assert.equal(s.inspect(response, ctx('toClient', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } })), undefined);
    assert.equal(s.inspect(response, ctx('toServer', listRequest)), undefined, 'toServer responses (to sampling etc.) are not tool lists');
  });

  it('leaves an error response and a result without a tools array alone', () => {
    const s = new ToolFilterStage({ deny: ['*'] });
    assert.equal(s.inspect({ jsonrpc: '2.0', id: 1, error: { code: -1, message: 'x' } }, ctx('toClient', listRequest)), undefined);
    assert.equal(s.inspect({ jsonrpc: '2.0', id: 1, result: {} }, ctx('toClient', listRequest)), undefined);
    assert.equal(s.inspect({ jsonrpc: '2.0', id: 1, result: { tools: 'echo' } }, ctx('toClient', listRequest)), undefined);
  });

  it('notifications to the client pass', () => {
    const s = new ToolFilterStage({ deny: ['*'] });
    assert.equal(s.inspect({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }, ctx('toClient')), undefined);
  });
});

describe('ToolFilterStage on tools/call', () => {
  const s = new ToolFilterStage({ allow: ['echo', 'get_*'], deny: ['get_env'] });

  it('lets an allowed call through', () => {
    assert.equal(s.inspect(callOf('echo'), ctx('toServer')), undefined);
    assert.equal(s.inspect(callOf('get_sum'), ctx('toServer')), undefined);
  });

  for (const [why, name] of [
    ['denied', 'get_env'],
    ['not allowed', 'delete_all'],
  ] as const) {
    it(`refuses a ${why} tool with Denied, naming the tool and the connection`, () => {
      const v = s.inspect(callOf(name, 'call-7'), ctx('toServer'));
      assert.ok(v !== undefined && v.action === 'answer');
      assert.match(v.reason ?? '', new RegExp(name));
      const reply = v.message!;
      assert.equal(reply.jsonrpc, '2.0');
      assert.equal(reply.id, 'call-7', 'the answer has the request’s id');
      assert.equal(reply.error!.code, ErrorCode.Denied);
      assert.equal(reply.error!.code, -31003);
      assert.ok(reply.error!.message.includes(`'${name}'`), reply.error!.message);
      assert.ok(reply.error!.message.includes(`'prod-db'`), reply.error!.message);
      assert.deepEqual(reply.error!.data, { gateway: 'portcullis', stage: 'tool-filter', tool: name });
      assert.equal(reply.result, undefined);
    });
  }

  it('refuses a call without a tool name, or with a name that is not a string', () => {
    for (const name of [undefined, 42, null, ['echo']]) {
      const v = s.inspect(callOf(name), ctx('toServer'));
      assert.ok(v !== undefined && v.action === 'answer', JSON.stringify(name));
      assert.equal(v.message!.error!.code, ErrorCode.Denied);
    }
    const v = s.inspect({ jsonrpc: '2.0', id: 3, method: 'tools/call' }, ctx('toServer'));
    assert.ok(v !== undefined && v.action === 'answer');
    assert.match(v.message!.error!.message, /\(no name\)/);
  });

  it('does not look at other requests, notifications or toClient requests', () => {
    const deny = new ToolFilterStage({ deny: ['*'] });
    assert.equal(deny.inspect({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, ctx('toServer')), undefined);
    assert.equal(deny.inspect({ jsonrpc: '2.0', id: 1, method: 'prompts/get', params: { name: 'echo' } }, ctx('toServer')), undefined);
    assert.equal(deny.inspect({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }, ctx('toServer')), undefined);
    assert.equal(deny.inspect(callOf('x'), ctx('toClient')), undefined);
  });
});

describe('ToolFilterStage in a Pipeline', () => {
  it('a refused call is answered and reported; an allowed list response is rewritten and reported', () => {
    const events: VerdictEvent[] = [];
    const stage = new ToolFilterStage({ deny: ['delete_*'] });
    const p = new Pipeline([stage], (e) => events.push(e));
    const refused = p.run(callOf('delete_all', 5), ctx('toServer'));
    assert.ok(!(refused instanceof Promise) && refused.action === 'answer');
    assert.equal(refused.message!.error!.code, ErrorCode.Denied);
    const listed = p.run(listResponse(['echo', 'delete_all']), ctx('toClient', listRequest));
    assert.ok(!(listed instanceof Promise) && listed.action === 'forward');
    assert.deepEqual(
      ((listed.message as JsonRpcResponse).result!.tools as Array<{ name: string }>).map((t) => t.name),
      ['echo'],
    );
    assert.deepEqual(
      events.map((e) => [e.stage, e.action, e.direction, e.messageId]),
      [
        ['tool-filter', 'answer', 'toServer', 5],
        ['tool-filter', 'rewrite', 'toClient', 1],
      ],
    );
    const passed = p.run(callOf('echo') as JsonRpcMessage, ctx('toServer'));
    assert.ok(!(passed instanceof Promise) && passed.action === 'forward');
    assert.equal(events.length, 2);
  });
});
