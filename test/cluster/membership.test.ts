import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { bootNonce, thisProcess } from '../../src/cluster/boot.js';
import { DuplicateInstanceError, Membership } from '../../src/cluster/membership.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/** The replicas' membership over both store backends: registration, the peer directory, departures and duplicates. */

const log = pino({ level: 'silent' });

for (const backend of backends) {
  describe(`membership (${backend.name})`, () => {
    const ts = backend.make();
    let store: Store;
    const members: Membership[] = [];
    const join = async (instanceId: string, address: string, goneAfterMs = 60_000, heartbeatMs = 100) => {
      const m = await Membership.join({ store, instanceId, address, goneAfterMs, heartbeatMs, log });
      members.push(m);
      return m;
    };

    after(async () => {
      for (const m of members) await m.leave().catch(() => {});
      await store?.close();
      await ts.destroy();
    });

    it('registers each replica with its address, start time and state, and answers where another is from memory', async () => {
      store = await ts.open();
      const a = await join('m-a', 'http://10.0.0.1:8080');
      const b = await join('m-b', 'http://10.0.0.2:8080');
      const row = await store.member('m-a');
      assert.equal(row?.address, 'http://10.0.0.1:8080');
      assert.equal(row?.state, 'serving');
      assert.equal(row?.boot, a.boot);
      assert.ok((row?.startedAtUs ?? 0) > 0);
      await waitFor(() => a.addressOf('m-b') === 'http://10.0.0.2:8080', 'a to know b after its next heartbeat');
      assert.equal(b.addressOf('m-a'), 'http://10.0.0.1:8080');
      assert.equal(a.addressOf('m-unknown'), undefined);
    });

    it('a replica that drains is still reachable; one that leaves is gone at once, and its id is free', async () => {
      const a = members[0]!;
      const c = await join('m-c', 'http://10.0.0.3:8080');
      await c.drain();
      assert.equal((await store.member('m-c'))?.state, 'draining');
      await a.refresh();
      assert.equal(a.addressOf('m-c'), 'http://10.0.0.3:8080', 'a draining replica still finishes what it has');
      const gone: string[] = [];
      a.onGone((ids) => gone.push(...ids));
      await c.leave();
      assert.equal((await store.member('m-c'))?.state, 'gone');
      await a.refresh();
      assert.equal(a.addressOf('m-c'), undefined);
      assert.deepEqual(gone, ['m-c']);
      // Leaving freed the id: a new process takes it without waiting.
      const again = await join('m-c', 'http://10.0.0.30:8080');
      assert.equal((await store.member('m-c'))?.boot, again.boot);
    });

    it('a replica that stops heart-beating is reported gone after goneAfter', async () => {
      const watcher = await join('m-w', 'http://10.0.0.4:8080', 800, 100);
      const gone: string[] = [];
      watcher.onGone((ids) => gone.push(...ids));
      // A replica killed right after its last heartbeat: its row stays, nothing beats it any more.
      await killed('m-s', 'http://10.0.0.5:8080');
      await watcher.refresh();
      assert.equal(watcher.addressOf('m-s'), 'http://10.0.0.5:8080', 'alive until goneAfter passes');
      await waitFor(() => gone.includes('m-s'), 'the silent replica to be reported gone');
      assert.equal(watcher.addressOf('m-s'), undefined);
    });

    it('reads the table again when a silent replica would be gone, not at its own next heartbeat a minute later', async () => {
      // A replica killed right after its last heartbeat, then a watcher that reads the table only every minute.
      await killed('m-x', 'http://10.0.0.8:8080');
      const watcher = await join('m-xw', 'http://10.0.0.9:8080', 1000, 60_000);
      const gone: string[] = [];
      watcher.onGone((ids) => gone.push(...ids));
      assert.equal(watcher.addressOf('m-x'), 'http://10.0.0.8:8080', 'alive in the read at its join');
      // Found gone by a read at the moment it would be gone, long before the watcher's next heartbeat.
      await waitFor(() => gone.includes('m-x'), 'the silent replica to be reported gone without a heartbeat of the watcher', 30_000);
      assert.equal(watcher.addressOf('m-x'), undefined);
    });

    it('judges a replica alive by its heartbeat moving, not by its clock: one whose clock is behind by more than goneAfter stays reachable while it beats', async () => {
      const watcher = await join('m-clock-w', 'http://10.0.0.6:8080', 1000, 100);
      const address = 'http://10.0.0.7:8080';
      // A replica whose clock is 30 s behind (goneAfter is 1 s): every heartbeat it writes looks 30 s old here.
      const skewedUs = () => (Date.now() - 30_000) * 1000;
      assert.ok(await store.claimMember({ id: 'm-clock-s', address, startedAtUs: skewedUs(), boot: 'skewed/1/x', heartbeatAtUs: skewedUs() }, undefined));
      let beating = true;
      const beats = (async () => {
        while (beating) {
          await store.beatMember('m-clock-s', 'skewed/1/x', 'serving', address, skewedUs());
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      try {
        await waitFor(async () => {
          await watcher.refresh();
          return watcher.addressOf('m-clock-s') === address;
        }, 'the skewed replica to be seen alive once its heartbeat moves');
        // Still alive well past goneAfter, as long as it beats.
        const until = Date.now() + 2500;
        while (Date.now() < until) {
          await watcher.refresh();
          assert.equal(watcher.addressOf('m-clock-s'), address);
          assert.equal(watcher.isAlive('m-clock-s'), true);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        beating = false;
        await beats;
      }
      // Silent: gone after goneAfter of this clock.
      await waitFor(async () => {
        await watcher.refresh();
        return watcher.addressOf('m-clock-s') === undefined;
      }, 'the skewed replica to be gone once it stops beating');
      assert.equal(watcher.isAlive('m-clock-s'), false);
    });

    it('reads the membership again before taking an unknown replica for gone: at most once per recheckMs, one read for concurrent askers', async () => {
      let reads = 0;
      // The store as it is, its reads of the table counted.
      const counted = new Proxy(store, {
        get(target, key) {
          if (key === 'members')
            return () => {
              reads++;
              return target.members();
            };
          const value = Reflect.get(target, key) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      // A heartbeat a minute away: this replica reads the table only when asked to.
      const watcher = await Membership.join({
        store: counted,
        instanceId: 'm-r-watch',
        address: 'http://10.0.0.40:8080',
        goneAfterMs: 60_000,
        heartbeatMs: 60_000,
        log,
        recheckMs: 60_000,
      });
      members.push(watcher);
      // A replica that joined after the watcher's last read (its notification not arrived yet, or lost).
      await join('m-r-new', 'http://10.0.0.41:8080');
      assert.equal(watcher.addressOf('m-r-new'), undefined, 'not in the last read');
      const before = reads;
      const answers = await Promise.all([1, 2, 3, 4, 5].map(() => watcher.addressNow('m-r-new')));
      assert.deepEqual(new Set(answers), new Set(['http://10.0.0.41:8080']));
      assert.equal(reads - before, 1, 'one read for five askers');
      assert.equal(await watcher.aliveNow('m-r-new'), true);
      // An instance that is in no read: asked again within recheckMs, the table is not read again.
      assert.equal(await watcher.aliveNow('m-r-nobody'), false);
      assert.equal(await watcher.addressNow('m-r-nobody'), undefined);
      assert.equal(reads - before, 1);
    });

    it("a replica whose clock is far behind is alive to one that reads it for the first time (heartbeats are the store's clock)", async () => {
      // Ten minutes behind, with goneAfter a minute: its own clock's heartbeats would look ten minutes old to anyone.
      const skewed = await Membership.join({
        store,
        instanceId: 'm-skew',
        address: 'http://10.0.0.50:8080',
        goneAfterMs: 60_000,
        heartbeatMs: 100,
        log,
        clock: () => Date.now() - 600_000,
      });
      members.push(skewed);
      const watcher = await join('m-skew-watch', 'http://10.0.0.51:8080');
      const gone: string[] = [];
      watcher.onGone((ids) => gone.push(...ids));
      await new Promise((r) => setImmediate(r));
      assert.equal(watcher.isAlive('m-skew'), true);
      assert.equal(watcher.addressOf('m-skew'), 'http://10.0.0.50:8080');
      assert.ok(!gone.includes('m-skew'), 'not reported gone at first sight');
      // And it judges others by the store's clock too: the watcher is alive to it.
      await skewed.refresh();
      assert.equal(skewed.isAlive('m-skew-watch'), true);
    });

    it('one serving replica at a time recovers what gone ones left: the lowest id, then the next when it leaves', async () => {
      const low = await join('0-low', 'http://10.0.1.1:8080');
      const high = await join('0-next', 'http://10.0.1.2:8080');
      await high.refresh();
      assert.equal(low.recovers(), true);
      assert.equal(high.recovers(), false);
      await low.leave();
      await high.refresh();
      assert.equal(high.recovers(), true);
    });

    it('refuses a second live process with the same instance id, naming recording.instanceId', async () => {
      await assert.rejects(join('m-a', 'http://10.0.0.9:8080'), (err: Error) => {
        assert.ok(err instanceof DuplicateInstanceError);
        assert.match(err.message, /another gateway is running with instance id 'm-a' \(at http:\/\/10\.0\.0\.1:8080\)/);
        assert.match(err.message, /recording\.instanceId/);
        return true;
      });
      assert.equal((await store.member('m-a'))?.boot, members[0]!.boot, 'the live one keeps its id');
    });

    it('takes over the id of an earlier process that died with a fresh heartbeat (a crash, then a quick restart)', async () => {
      await killed('m-d', 'http://10.0.0.6:8080');
      const killedAt = (await store.member('m-d'))!.heartbeatAtUs;
      // Watched until it is gone by the membership's measure (goneAfter), and a heartbeat more: then taken over.
      const restarted = await join('m-d', 'http://10.0.0.6:8080', 1500, 100);
      const row = (await store.member('m-d'))!;
      assert.equal(row.boot, restarted.boot);
      assert.ok(row.heartbeatAtUs - killedAt >= 1_500_000, 'not before goneAfter');
    });

    it('takes over at once the id of a process of this host and PID namespace that no longer runs', { timeout: 20_000 }, async () => {
      // A process that ran and exited: its pid names no process now.
      const { pid } = spawnSync(process.execPath, ['-e', '']);
      await killed('m-e', 'http://10.0.0.7:8080', bootNonce({ ...thisProcess(), pid }));
      // With a minute-long heartbeat, watching the row would outlast this test's timeout.
      const restarted = await join('m-e', 'http://10.0.0.7:8080', 60_000, 60_000);
      assert.equal((await store.member('m-e'))?.boot, restarted.boot);
    });

    it('refuses a live duplicate with the same host name in another PID namespace, whose pid names no process here', async () => {
      // Another container on this host with its network (Docker --network host): the same host name, its own pids.
      const { pid } = spawnSync(process.execPath, ['-e', '']);
      const boot = bootNonce({ host: hostname(), pid, pidNamespace: 'another-kernel-or-namespace:4026532000' });
      const address = 'http://10.0.0.8:8080';
      await killed('m-ns', address, boot);
      let beating = true;
      const beats = (async () => {
        while (beating) {
          await store.beatMember('m-ns', boot, 'serving', address);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      try {
        await assert.rejects(join('m-ns', 'http://10.0.0.9:8080', 1500, 100), DuplicateInstanceError);
        assert.equal((await store.member('m-ns'))?.boot, boot, 'the live one keeps its id');
      } finally {
        beating = false;
        await beats;
      }
    });

    /** The row a replica leaves when killed just after a heartbeat. */
    async function killed(id: string, address: string, boot = `dead-${id}`): Promise<void> {
      const now = Date.now() * 1000;
      assert.equal(await store.claimMember({ id, address, startedAtUs: now, boot, heartbeatAtUs: now }, undefined), true);
    }
  });
}
