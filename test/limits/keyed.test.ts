import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedBuckets } from '../../src/limits/keyed.js';

/**
 * Keyed buckets under a flood of new keys (addresses from a large IPv6 prefix, each failing a token once): when no
 * bucket has refilled, making room must not sweep every bucket for each new key, or each refused request costs a
 * pass over limits.unauthenticated.addresses buckets before it is refused. Work is counted in clock reads (each
 * look at a bucket reads the clock): no timing.
 */
describe('KeyedBuckets under a flood of new keys', () => {
  it('makes room for many new keys per sweep, so the work per new key stays bounded', () => {
    let reads = 0;
    const clock = () => {
      reads++;
      return 1_000_000;
    };
    const capacity = 2000;
    const buckets = new KeyedBuckets(capacity, clock);
    const rate = { perSecond: 1, burst: 10 };
    // Every bucket has spent a token and the clock stands still: none is full, none can go for free.
    for (let i = 0; i < capacity; i++) buckets.get(`warm-${i}`, rate).take();
    reads = 0;
    const flood = 4000;
    for (let i = 0; i < flood; i++) buckets.get(`flood-${i}`, rate).take();
    assert.ok(buckets.size <= capacity, 'never above its capacity');
    assert.ok(reads < flood * 40, `${reads} clock reads for ${flood} new keys: a sweep of all ${capacity} buckets for each`);
    // The latest keys are remembered: a key that just spent its tokens is not forgotten at once.
    for (let i = 0; i < 9; i++) buckets.get(`flood-${flood - 1}`, rate).take();
    assert.equal(buckets.get(`flood-${flood - 1}`, rate).take(), false);
  });
});
