import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Membership } from '../../src/cluster/membership.js';
import type { Store } from '../../src/store/store.js';
import { emptyBatch, openSessionRow } from '../../src/store/types.js';
import { heldReviewRow } from '../helpers/review-rows.js';
import { backends } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The membership table keeps no replica for ever: a Deployment whose pods are named afresh adds a row a rollout, and
 * every start would report them all gone again. A row gone for longer than a day, its work done, is removed.
 */

const log = pino({ level: 'silent' });
const hourUs = 3_600_000_000;

for (const backend of backends) {
  describe(`membership pruning (${backend.name})`, () => {
    const ts = backend.make();
    let store: Store;
    const members: Membership[] = [];
    /** Which members pruned the table. */
    const pruners: string[] = [];
    const join = async (instanceId: string) => {
      const pruning = {
        ...store,
        pruneMembers: (silentForUs: number, ids: readonly string[]) => {
          pruners.push(instanceId);
          return store.pruneMembers(silentForUs, ids);
        },
      };
      const m = await Membership.join({
        store: pruning,
        instanceId,
        address: `http://${instanceId}:8080`,
        goneAfterMs: 60_000,
        heartbeatMs: 100,
        log,
        pruneEveryMs: 0,
      });
      members.push(m);
      return m;
    };
    /** The row of a replica killed `agoUs` ago. */
    const killed = async (id: string, agoUs: number) => {
      const at = Date.now() * 1000 - agoUs;
      assert.equal(await store.claimMember({ id, address: `http://${id}:8080`, startedAtUs: at, boot: `${id}/1/x`, heartbeatAtUs: at }, undefined), true);
    };
    const exists = async (id: string) => (await store.member(id)) !== undefined;

    after(async () => {
      for (const m of members) await m.leave().catch(() => {});
      await store?.close();
      await ts.destroy();
    });

    it('the replica that recovers removes the rows of replicas gone for over a day, once their sessions are sealed and reviews ended', async () => {
      store = await ts.open();
      await killed('p-old', 48 * hourUs);
      await killed('p-old-open', 48 * hourUs);
      await store.write({
        ...emptyBatch(),
        sessionsOpened: [
          openSessionRow({ id: 'p-session', instanceId: 'p-old-open', connection: 'c', subject: 's', openedAtUs: Date.now() * 1000 - 48 * hourUs }),
        ],
      });
      await killed('p-old-held', 48 * hourUs);
      await store.insertReview(heldReviewRow('p-review', 'p-old-held'));
      await killed('p-recent', hourUs);

      const recovering = await join('p-a');
      const other = await join('p-b');
      assert.equal(recovering.recovers(), true);
      await waitFor(async () => !(await exists('p-old')), 'the row gone for two days removed');
      assert.equal(await exists('p-old-open'), true, 'a session of it is still open: kept until a survivor seals it');
      assert.equal(await exists('p-old-held'), true, 'a review of it is still held: kept until it is interrupted');
      assert.equal(await exists('p-recent'), true, 'gone for an hour: kept');

      // Their work done: the session sealed as cut off, the review interrupted.
      const closedAtUs = Date.now() * 1000;
      const seal = { closedAtUs, closeReason: 'cut off', eventCount: 0, lastHash: '', seal: '', sealKeyId: '', denials: 0, redactions: 0 };
      await store.write({ ...emptyBatch(), sealed: [{ id: 'p-session', status: 'cut-off', ...seal }] });
      assert.equal(
        await store.updateReview('p-review', { status: 'pending', approvalCount: 0 }, { status: 'interrupted', decidedAtUs: closedAtUs, decisionNote: 'gone' }),
        true,
      );
      await waitFor(async () => !(await exists('p-old-open')) && !(await exists('p-old-held')), 'the rows removed once their work is done');
      assert.equal(await exists('p-recent'), true);
      await other.refresh();
      assert.deepEqual(new Set(pruners), new Set(['p-a']), 'one replica prunes: the one that recovers');

      // A replica that starts now is told of what is left gone, not of every replica ever run.
      const late = await join('p-c');
      const gone: string[] = [];
      late.onGone((ids) => gone.push(...ids));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(gone, ['p-recent']);
    });

    it("prunes only replicas it judged gone itself: a live replica's row that the store's clock makes look two days old is kept", async () => {
      const recovering = members.find((m) => m.recovers())!;
      // A live replica, watched beating by the recovering one.
      const boot = 'p-z-live/1/x';
      assert.equal(await store.claimMember({ id: 'p-z-live', address: 'http://p-z-live:8080', startedAtUs: Date.now() * 1000, boot }, undefined), true);
      const beat = (nowUs?: number) => store.beatMember('p-z-live', boot, 'serving', 'http://p-z-live:8080', nowUs);
      await waitFor(async () => {
        await beat();
        return recovering.isAlive('p-z-live');
      }, 'the recovering replica to see the live one');
      // The store's clock steps back two days (a standby with a wrong clock): its heartbeats still move, but look old.
      let stepped = Date.now() * 1000 - 48 * hourUs;
      const beating = setInterval(() => void beat((stepped += 50_000)).catch(() => {}), 50);
      try {
        await waitFor(async () => {
          await recovering.refresh();
          return recovering.members().find((m) => m.id === 'p-z-live')!.ageUs > 24 * hourUs;
        }, 'the recovering replica to read the stepped heartbeat');
        assert.equal(recovering.isAlive('p-z-live'), true, 'its heartbeat moves: alive');
        // A replica gone for two days, so that a prune is due.
        await killed('p-old-2', 48 * hourUs);
        await waitFor(async () => !(await exists('p-old-2')), 'the row gone for two days removed');
        assert.equal(await exists('p-z-live'), true, 'the live replica kept');
        assert.equal(await beat(), true, 'its heartbeat still holds its id');
      } finally {
        clearInterval(beating);
      }
    });
  });
}
