import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cannotAsk, isInputRequired, PendingRound, readInputRequired, retryParams } from '../../src/upstream/legacy-shim.js';

describe('the legacy shim', () => {
  it('reads an input_required result, and refuses malformed ones', () => {
    const result = {
      resultType: 'input_required',
      inputRequests: { name: { method: 'elicitation/create', params: { message: 'Name?' } }, roots: { method: 'roots/list' } },
      requestState: 'opaque',
    };
    assert.ok(isInputRequired(result));
    assert.ok(!isInputRequired({ resultType: 'complete' }));
    assert.deepEqual(readInputRequired(result), {
      requests: [
        { key: 'name', method: 'elicitation/create', params: { message: 'Name?' } },
        { key: 'roots', method: 'roots/list', params: {} },
      ],
      requestState: 'opaque',
    });
    assert.ok('invalid' in readInputRequired({ resultType: 'input_required' }), 'neither requests nor state');
    assert.ok('invalid' in readInputRequired({ inputRequests: { a: { params: {} } } }), 'no method');
    assert.ok('invalid' in readInputRequired({ inputRequests: [] }), 'an array');
    assert.ok('invalid' in readInputRequired({ requestState: 42 }), 'a state that is not a string');
  });

  it('asks the client only what it declared in initialize', () => {
    const form = { key: 'k', method: 'elicitation/create', params: { message: 'm' } };
    const url = { key: 'k', method: 'elicitation/create', params: { mode: 'url', url: 'https://example.com', message: 'm' } };
    const sampling = { key: 'k', method: 'sampling/createMessage', params: {} };
    const roots = { key: 'k', method: 'roots/list', params: {} };
    assert.equal(cannotAsk(form, { elicitation: {} }), undefined, '2025-06-18 style: form');
    assert.equal(cannotAsk(form, { elicitation: { form: {} } }), undefined);
    assert.match(cannotAsk(form, { elicitation: { url: {} } })!, /form elicitation/);
    assert.match(cannotAsk(url, { elicitation: {} })!, /URL elicitation/);
    assert.equal(cannotAsk(url, { elicitation: { url: {} } }), undefined);
    assert.match(cannotAsk(form, {})!, /elicitation capability/);
    assert.match(cannotAsk(sampling, { elicitation: {} })!, /sampling/);
    assert.equal(cannotAsk(sampling, { sampling: {} }), undefined);
    assert.match(cannotAsk(roots, undefined)!, /roots/);
    assert.equal(cannotAsk(roots, { roots: { listChanged: true } }), undefined);
    assert.match(cannotAsk({ key: 'k', method: 'tools/call', params: {} }, { elicitation: {} })!, /not a request a server may make/);
  });

  it('retries with the answers and the server state, never with what the client put there', () => {
    const params = { name: 'ask', arguments: {}, requestState: 'client-forged', inputResponses: { x: 1 }, _meta: { a: 1 } };
    assert.deepEqual(retryParams(params, { name: { action: 'accept' } }, 'server-state'), {
      name: 'ask',
      arguments: {},
      _meta: { a: 1 },
      inputResponses: { name: { action: 'accept' } },
      requestState: 'server-state',
    });
    assert.deepEqual(retryParams(params, {}, undefined), { name: 'ask', arguments: {}, _meta: { a: 1 } });
  });

  it('a round is complete when every question is answered, whatever the order', () => {
    const round = new PendingRound({ jsonrpc: '2.0', id: 1, method: 'tools/call' }, 1, 's');
    round.asks('g1', 'name');
    round.asks('g2', 'confirm');
    assert.deepEqual(round.open, ['g1', 'g2']);
    assert.equal(round.answer('g2', { action: 'accept', content: { confirm: true } }), false);
    assert.equal(round.answer('g9', {}), false, 'an unknown id answers nothing');
    assert.equal(round.answer('g1', { action: 'accept', content: { name: 'Ada' } }), true);
    assert.deepEqual(Object.keys(round.responses).sort(), ['confirm', 'name']);
  });
});
