import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { type Cluster, joinCluster } from '../../src/cluster/cluster.js';
import { interruptReviewsOfGone } from '../../src/features/reviews.js';
import { GoneReplicaReviews } from '../../src/reviews/gone-replicas.js';
import { Reviews } from '../../src/reviews/reviews.js';
import type { Store } from '../../src/store/store.js';
import { heldReviewRow } from '../helpers/review-rows.js';
import { backends } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The calls a replica held when it died will never be forwarded: a survivor marks their reviews interrupted, and when
 * the store fails it at the first attempt, at the next reconciliation (each backend).
 */

const log = pino({ level: 'silent' });

for (const backend of backends) {
  describe(`held reviews of gone replicas (${backend.name})`, () => {
    const ts = backend.make();
    let store: Store;
    let cluster: Cluster | undefined;
    let reviews: Reviews | undefined;
    let stop = () => {};

    after(async () => {
      stop();
      await reviews?.stop();
      await cluster?.leave();
      await store?.close();
      await ts.destroy();
    });

    it('are interrupted, and again at the next reconciliation when the store failed the first attempt', async () => {
      store = await ts.open();
      // A replica killed an hour ago with a call held: its row silent, its review pending.
      const killedAt = Date.now() * 1000 - 3_600_000_000;
      assert.equal(
        await store.claimMember({ id: 'r-dead', address: null, startedAtUs: killedAt, boot: 'r-dead/1/-/x', heartbeatAtUs: killedAt }, undefined),
        true,
      );
      await store.insertReview(heldReviewRow('rv-dead', 'r-dead'));
      // The survivor's store fails its first read of the reviews.
      let reads = 0;
      const failingOnce: Store = {
        ...store,
        listReviews: (q) => (++reads === 1 ? Promise.reject(new Error('the store is unavailable')) : store.listReviews(q)),
      };
      reviews = new Reviews({ store: failingOnce, instanceId: 'r-survivor', log });
      cluster = await joinCluster({
        store,
        storeUrl: ts.url,
        instanceId: 'r-survivor',
        log,
        listenHost: '127.0.0.1',
        goneAfterMs: 60_000,
        heartbeatMs: 60_000,
        reconcileMs: 100,
      });
      stop = interruptReviewsOfGone(reviews, cluster, undefined, log);
      await waitFor(async () => (await store.getReview('rv-dead'))?.status === 'interrupted', 'the review of the gone replica interrupted');
      assert.ok(reads >= 2, 'after the failed attempt');
      assert.match((await store.getReview('rv-dead'))?.decisionNote ?? '', /gateway instance r-dead stopped while the call was held/);
    });
  });
}

describe('ending the reviews of gone replicas', () => {
  it('leaves alone a replica alive again by the retry (its reviews may be live calls), and tries the others until it succeeds', async () => {
    const alive = new Set<string>();
    const calls: string[] = [];
    let failing = true;
    const gone = new GoneReplicaReviews({
      interrupt: async ([id]) => {
        calls.push(id!);
        if (failing) throw new Error('the store is unavailable');
      },
      isAlive: (id) => alive.has(id),
      log,
    });
    await gone.gone(['back', 'dead']);
    assert.deepEqual(calls, ['back', 'dead']);
    // 'back' was taken for gone, and beats again.
    alive.add('back');
    await gone.retry();
    assert.deepEqual(calls, ['back', 'dead', 'dead']);
    failing = false;
    await gone.retry();
    await gone.retry();
    assert.deepEqual(calls, ['back', 'dead', 'dead', 'dead'], 'done once it succeeded');
  });
});
