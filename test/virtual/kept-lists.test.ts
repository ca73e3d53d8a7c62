import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeptLists } from '../../src/virtual/kept-lists.js';

const page = (name: string) => ({ tools: [{ name }] });

describe('KeptLists: a member’s pages kept until they can be stale', () => {
  it('keeps a page and gives it back while nothing changed', () => {
    const kept = new KeptLists();
    kept.keep('tools/list', page('a'), kept.stamp(0));
    assert.deepEqual(kept.get('tools/list', 0)?.result, page('a'));
    assert.equal(kept.get('prompts/list', 0), undefined);
  });

  it('a list_changed of a kind forgets the lists it announces, and only those', () => {
    const kept = new KeptLists();
    for (const method of ['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list'] as const) kept.keep(method, page(method), kept.stamp(0));
    kept.changed('notifications/resources/list_changed');
    assert.equal(kept.get('resources/list', 0), undefined);
    assert.equal(kept.get('resources/templates/list', 0), undefined, 'resources/list_changed covers the templates');
    assert.ok(kept.get('tools/list', 0) !== undefined && kept.get('prompts/list', 0) !== undefined);
    kept.changed('notifications/tools/list_changed');
    assert.equal(kept.get('tools/list', 0), undefined);
  });

  it('a tools/list answered under other pins is stale; other lists do not depend on the pins', () => {
    const kept = new KeptLists();
    kept.keep('tools/list', page('a'), kept.stamp(3));
    kept.keep('prompts/list', page('p'), kept.stamp(3));
    assert.equal(kept.get('tools/list', 4), undefined);
    assert.equal(kept.get('tools/list', 3), undefined, 'dropped once seen stale');
    assert.deepEqual(kept.get('prompts/list', 4)?.result, page('p'));
  });

  it('an answer asked for before a change or a forget is not kept', () => {
    const kept = new KeptLists();
    const beforeChange = kept.stamp(0);
    kept.changed('notifications/tools/list_changed');
    kept.keep('tools/list', page('old'), beforeChange);
    assert.equal(kept.get('tools/list', 0), undefined);
    const beforeForget = kept.stamp(0);
    kept.forget();
    kept.keep('prompts/list', page('old'), beforeForget);
    assert.equal(kept.get('prompts/list', 0), undefined);
    kept.keep('tools/list', page('new'), kept.stamp(0));
    assert.deepEqual(kept.get('tools/list', 0)?.result, page('new'));
    kept.forget();
    assert.equal(kept.get('tools/list', 0), undefined);
  });
});
