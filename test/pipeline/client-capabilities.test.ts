import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientCapabilitiesStage, withoutDenied } from '../../src/pipeline/client-capabilities.js';
import type { MessageContext } from '../../src/pipeline/stage.js';
import { ErrorCode, type JsonRpcRequest } from '../../src/protocol/jsonrpc.js';

const all = { sampling: { tools: {} }, roots: { listChanged: true }, elicitation: { form: {}, url: {} }, tasks: {} };

function ctx(direction: 'toServer' | 'toClient'): MessageContext {
  return { direction, session: { id: 's', connection: 'c', identity: { subject: 'a', issuer: 'i', groups: [] } } } as unknown as MessageContext;
}

describe('client capabilities: what a connection denies', () => {
  it('removes whole capabilities and single modes, and keeps what is not denied', () => {
    assert.deepEqual(withoutDenied(all, ['sampling', 'elicitation.url']), { roots: { listChanged: true }, elicitation: { form: {} }, tasks: {} });
    assert.deepEqual(withoutDenied(all, ['sampling.tools']), { ...all, sampling: {} });
    assert.equal(withoutDenied(all, ['experimental']), all, 'nothing to remove: the same object, no copy');
  });

  it("denying the form mode of a 2025 client's `elicitation: {}` (form only) removes elicitation", () => {
    assert.deepEqual(withoutDenied({ elicitation: {} }, ['elicitation.form']), {});
    assert.deepEqual(withoutDenied({ elicitation: { form: {} } }, ['elicitation.form']), {}, 'no mode left must not read as form only');
    assert.deepEqual(withoutDenied({ elicitation: { form: {}, url: {} } }, ['elicitation.form']), { elicitation: { url: {} } });
  });

  it('rewrites initialize and the capabilities a 2026-07-28 request carries in _meta', () => {
    const stage = ClientCapabilitiesStage.forConnection({ deny: ['roots'] })!;
    const init: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: all, clientInfo: { name: 'c', version: '1' } },
    };
    const v = stage.inspect(init, ctx('toServer'));
    assert.equal(v?.action, 'pass');
    assert.ok(v?.action === 'pass' && v.message && !('roots' in ((v.message as JsonRpcRequest).params!.capabilities as object)));
    const key = 'io.modelcontextprotocol/clientCapabilities';
    const call: JsonRpcRequest = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 't', _meta: { [key]: all, other: 1 } } };
    const w = stage.inspect(call, ctx('toServer'));
    const meta = w?.action === 'pass' ? ((w.message as JsonRpcRequest).params!._meta as Record<string, Record<string, unknown>>) : undefined;
    assert.ok(meta && !('roots' in meta[key]!) && meta.other === (1 as unknown), JSON.stringify(meta));
    assert.equal(stage.inspect({ jsonrpc: '2.0', id: 3, method: 'tools/list' }, ctx('toServer')), undefined, 'other requests pass untouched');
  });

  it('refuses a server request for a denied capability, and lets an allowed one through', () => {
    const stage = ClientCapabilitiesStage.forConnection({ deny: ['sampling', 'elicitation.url'] })!;
    const sampling = stage.inspect({ jsonrpc: '2.0', id: 7, method: 'sampling/createMessage', params: {} }, ctx('toClient'));
    assert.equal(sampling?.action, 'answer');
    assert.ok(sampling?.action === 'answer' && sampling.message?.id === 7 && sampling.message.error?.code === ErrorCode.MethodNotFound);
    const url = stage.inspect({ jsonrpc: '2.0', id: 8, method: 'elicitation/create', params: { mode: 'url', url: 'https://x.test' } }, ctx('toClient'));
    assert.equal(url?.action, 'answer');
    const form = stage.inspect({ jsonrpc: '2.0', id: 9, method: 'elicitation/create', params: { message: 'name?' } }, ctx('toClient'));
    assert.equal(form, undefined, 'form elicitation is not denied');
    assert.equal(ClientCapabilitiesStage.forConnection({ deny: [] }), undefined, 'no policy, no stage');
  });
});
