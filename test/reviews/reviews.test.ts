import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Reviews, type HoldSpec } from '../../src/reviews/reviews.js';
import { reviewView } from '../../src/reviews/view.js';
import type { Store } from '../../src/store/store.js';
import { backends, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Reviews on two gateways sharing one store (each backend): decisions taken through one are followed by the
 * other, and a call whose client left is never forwarded, even when an approval came first.
 */

const log = pino({ level: 'silent' });
const alice = { subject: 'alice', issuer: 'https://idp', email: 'alice@example.com', groups: ['eng'] };
const bob = { subject: 'bob', issuer: 'https://idp', email: 'bob@example.com', groups: ['leads'] };
const carol = { subject: 'carol', issuer: 'https://idp', email: 'carol@example.com', groups: ['leads'] };

function spec(signal: AbortSignal, over: Partial<HoldSpec> = {}): HoldSpec {
  return {
    sessionId: 's1',
    connection: 'files',
    identity: alice,
    method: 'tools/call',
    target: 'write_file',
    params: '{"name":"write_file","arguments":{"path":"/srv/x"}}',
    digest: 'd'.repeat(64),
    rule: 'writes',
    approvers: ['leads'],
    approvals: 1,
    timeoutMs: 60_000,
    signal,
    ...over,
  };
}

for (const backend of backends) {
  describe(`reviews across two gateways (${backend.name})`, () => {
    let ts: TestStore;
    let store: Store;
    let holder: Reviews;
    let other: Reviews;
    // The reviews' timers do not hold the process open (a gateway's server does); here, this does.
    let alive: NodeJS.Timeout;

    before(async () => {
      alive = setInterval(() => {}, 1000);
      ts = backend.make();
      store = await ts.open();
      await store.migrate();
      // Without a cluster here, the holder notices another gateway's decision only when told (changed) or on a recheck.
      holder = new Reviews({ store, instanceId: 'gw-a', log });
      other = new Reviews({ store, instanceId: 'gw-b', log });
    });
    after(async () => {
      clearInterval(alive);
      await holder.stop();
      await other.stop();
      await store.close();
      await ts.destroy();
    });

    const waitPending = async (id: string) => {
      await waitFor(async () => (await store.getReview(id))?.status === 'pending', `review ${id} to be pending`);
    };

    it('a client that cancels after another gateway approved does not get its call forwarded', async () => {
      const controller = new AbortController();
      const held = holder.hold(spec(controller.signal));
      await waitPending(held.id);
      await other.approve(held.id, bob, 'ok');
      controller.abort(new Error('the client cancelled the request'));
      const outcome = await held.outcome;
      assert.equal(outcome.released, false);
      assert.equal((await store.getReview(held.id))!.status, 'cancelled');
    });

    it('an approval that lands before the timeout wins it', async () => {
      const held = holder.hold(spec(new AbortController().signal, { timeoutMs: 300 }));
      await waitPending(held.id);
      await other.approve(held.id, bob, undefined);
      const outcome = await held.outcome;
      assert.equal(outcome.released, true);
      assert.equal((await store.getReview(held.id))!.status, 'released');
    });

    it('a partial approval racing the timeout still leaves the review expired, not pending', async () => {
      const held = holder.hold(spec(new AbortController().signal, { timeoutMs: 200, approvals: 2 }));
      await waitPending(held.id);
      await other.approve(held.id, bob, undefined);
      const outcome = await held.outcome;
      assert.equal(outcome.released, false);
      assert.equal((await store.getReview(held.id))!.status, 'expired');
      await assert.rejects(other.approve(held.id, carol, undefined), /already expired|timed out/);
    });

    it('a review whose gateway is gone expires when it is listed after its time', async () => {
      const orphan = new Reviews({ store, instanceId: 'gw-gone', log });
      const held = orphan.hold(spec(new AbortController().signal, { timeoutMs: 60_000, digest: 'e'.repeat(64) }));
      await waitPending(held.id);
      // As if its gateway died long ago: the deadline is in the past and nobody times it out.
      const row = (await store.getReview(held.id))!;
      await store.insertReview({ ...row, id: `${row.id}-old`, expiresAtUs: row.createdAtUs - 1 });
      const listed = await other.list(bob);
      assert.equal(listed.find((r) => r.id === `${row.id}-old`)?.status, 'expired');
    });

    it('a call held through a virtual server names it and the name used there, on every gateway; a direct one names none', async () => {
      const through = holder.hold(spec(new AbortController().signal, { digest: 'f'.repeat(64), virtual: { server: 'toolbox', target: 'fs__write_file' } }));
      const direct = holder.hold(spec(new AbortController().signal, { digest: 'c'.repeat(64) }));
      await waitPending(through.id);
      await waitPending(direct.id);
      const seen = await other.get(through.id, bob);
      assert.deepEqual(reviewView(seen).virtual, { server: 'toolbox', target: 'fs__write_file' });
      assert.equal(reviewView(seen).target, 'write_file', "the member's own name stays the target");
      assert.equal(reviewView(await other.get(direct.id, bob)).virtual, null);
      await holder.reject(through.id, bob, 'done');
      await holder.reject(direct.id, bob, 'done');
      assert.equal((await through.outcome).released, false);
      assert.equal((await direct.outcome).released, false);
    });
  });
}
