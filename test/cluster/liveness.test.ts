import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Liveness } from '../../src/cluster/liveness.js';
import type { MemberRow } from '../../src/store/cluster.js';

/**
 * Blind spells (reads that fail or are slow) excuse a replica's silence, but boundedly: a replica that stopped beating
 * is found gone even when reads keep failing now and then, or are all slow. The membership-outage tests show the other
 * side (a live replica is never taken for gone through an outage).
 */

const goneAfterMs = 15_000;
const heartbeatMs = 5_000;

/** A replica's row whose heartbeat stopped at `beatAtUs`, read `ageMs` after it. */
function row(id: string, heartbeatAtUs: number, ageMs: number): MemberRow {
  return { id, address: `http://${id}:8080`, startedAtUs: 0, state: 'serving', boot: `${id}/1/x`, heartbeatAtUs, ageUs: ageMs * 1000, keks: null };
}

/** Reads every heartbeat until `dead` is gone, `read(i)` saying how read i goes; the time it took, in ms, or undefined after `limitMs`. */
function goneAfterReads(read: (i: number) => 'ok' | 'failed' | 'slow', limitMs: number): number | undefined {
  let now = 0;
  const liveness = new Liveness(goneAfterMs, () => now);
  const beatAtUs = 1_000_000;
  liveness.saw([row('dead', beatAtUs, 0)]);
  for (let i = 0; now < limitMs; i++) {
    const startedAt = now;
    now += heartbeatMs;
    const how = read(i);
    if (how === 'failed') {
      liveness.blind();
      continue;
    }
    if (how === 'slow') {
      // The read began a heartbeat and a half ago and took that long.
      now += heartbeatMs * 1.5;
      liveness.blind(startedAt);
    }
    const seen = row('dead', beatAtUs, now);
    liveness.saw([seen]);
    if (!liveness.alive(seen)) return now;
  }
  return undefined;
}

describe('liveness: blind spells excuse silence, boundedly', () => {
  it('a replica that stopped beating is gone goneAfter after, when every read succeeds', () => {
    const at = goneAfterReads(() => 'ok', 10 * goneAfterMs);
    assert.equal(at, goneAfterMs);
  });

  it('is gone within 3 × goneAfter when every third read fails (each failure once reset its silence, without bound)', () => {
    const at = goneAfterReads((i) => (i % 3 === 2 ? 'failed' : 'ok'), 20 * goneAfterMs);
    assert.ok(at !== undefined && at <= 3 * goneAfterMs + heartbeatMs, `gone at ${at} ms`);
  });

  it('is gone within 3 × goneAfter when every read is slower than a heartbeat', () => {
    const at = goneAfterReads(() => 'slow', 20 * goneAfterMs);
    assert.ok(at !== undefined && at <= 3 * goneAfterMs + 3 * heartbeatMs, `gone at ${at} ms`);
  });

  it('a replica that beats again after a blind spell starts a new silence, with its own reset', () => {
    let now = 0;
    const liveness = new Liveness(goneAfterMs, () => now);
    liveness.saw([row('b', 1, 0)]);
    // Two outages a minute each, the replica beating in between: each is excused in full.
    for (const beat of [2, 3]) {
      liveness.blind();
      now += 60_000;
      liveness.saw([row('b', beat - 1, 60_000)]);
      assert.equal(liveness.alive(row('b', beat - 1, 60_000)), true, 'alive when the store is back');
      now += 1_000;
      liveness.saw([row('b', beat, 0)]);
    }
    now += goneAfterMs - 1;
    assert.equal(liveness.alive(row('b', 3, goneAfterMs - 1)), true);
    now += 1;
    assert.equal(liveness.alive(row('b', 3, goneAfterMs)), false);
  });
});
