import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InOrder } from '../../src/exchange/in-order.js';

/** In-order steps on their own: synchronous steps run at once; an asynchronous one holds later ones back. */

describe('InOrder', () => {
  it('runs synchronous steps at once, leaving nothing waiting', () => {
    const order = new InOrder();
    const seen: number[] = [];
    order.run(() => void seen.push(1));
    order.run(() => void seen.push(2));
    assert.deepEqual(seen, [1, 2]);
    assert.equal(order.waiting, false);
  });

  it('a step that goes asynchronous holds the later ones back until it settles, then all run in order', async () => {
    const order = new InOrder();
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    order.run(() => gate.then(() => void seen.push('slow')));
    order.run(() => void seen.push('quick'));
    order.run(() => void seen.push('last'));
    assert.equal(seen.length, 0, 'later steps wait for the slow one');
    assert.equal(order.waiting, true);
    release();
    await gate;
    while (order.waiting) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, ['slow', 'quick', 'last']);
    order.run(() => void seen.push('after'));
    assert.equal(seen.join(','), 'slow,quick,last,after', 'back to running at once once nothing waits');
  });
});
