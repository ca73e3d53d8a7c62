import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { safeReturn } from '../../src/console/console-edge.js';

/** Where a sign-in may go back to: a path of the console, as a browser would read it, never another site. */
describe('safeReturn', () => {
  it('keeps a console path and its query', () => {
    assert.equal(safeReturn('/reviews/rv_1?x=1'), '/reviews/rv_1?x=1');
    assert.equal(safeReturn('/sessions/abc?q=%20x'), '/sessions/abc?q=%20x');
    assert.equal(safeReturn('/./sessions'), '/sessions', 'normalized as a browser would');
    assert.equal(safeReturn('/ok#frag'), '/ok', 'no fragment');
  });

  it('sends anything that could name another site to /', () => {
    for (const evil of [
      null,
      '',
      'https://evil.example/',
      'evil.example',
      '//evil.example',
      '/\\evil.example',
      '/\t/evil.example',
      '/\n/evil.example',
      '/\r//evil.example',
      '/..//evil.example',
      '/a/../..//evil.example',
      '/ /evil.example',
      '/élise',
      `/${'a'.repeat(600)}`,
    ]) {
      assert.equal(safeReturn(evil), '/', JSON.stringify(evil));
    }
  });
});
