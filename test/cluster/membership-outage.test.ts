import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Membership } from '../../src/cluster/membership.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../helpers/stores.js';

/**
 * A live replica is never taken for gone because this one could not see it beat: not when the store was unreachable
 * for longer than goneAfter (a database failover), nor when this process's wall clock steps. Being taken for gone is
 * not undone: its held reviews are interrupted and its agents' tunnel rows deleted.
 */

const log = pino({ level: 'silent' });

/** Time for a membership under test that the test moves on at will (both its clocks), instead of waiting. */
class TestTime {
  #passedMs = 0;
  #steppedMs = 0;
  readonly wall = () => Date.now() + this.#passedMs + this.#steppedMs;
  readonly monotonic = () => performance.now() + this.#passedMs;
  pass(ms: number): void {
    this.#passedMs += ms;
  }
  /** The wall clock alone steps (NTP, a VM resumed): no time passes. */
  step(ms: number): void {
    this.#steppedMs += ms;
  }
}

/** The store, as the membership under test reaches it: down (every call fails, as in a failover) when told. */
function reachable(store: Store): { store: Store; down: boolean } {
  const outage = { store, down: false };
  const calls = Object.entries(store).map(([key, value]) => [
    key,
    typeof value !== 'function' ? value : (...args: unknown[]) => (outage.down ? Promise.reject(new Error('connection refused')) : value(...args)),
  ]);
  outage.store = Object.fromEntries(calls) as Store;
  return outage;
}

for (const backend of backends) {
  describe(`membership through a store outage and a clock step (${backend.name})`, () => {
    const ts = backend.make();
    let store: Store;
    const members: Membership[] = [];

    after(async () => {
      for (const m of members) await m.leave().catch(() => {});
      await store?.close();
      await ts.destroy();
    });

    /** The replica under test, on `time`: its own heartbeat a minute away, it reads the table when the test says. */
    const watcher = async (instanceId: string, time: TestTime, through: Store = store) => {
      const m = await Membership.join({
        store: through,
        instanceId,
        address: `http://${instanceId}:8080`,
        goneAfterMs: 10_000,
        heartbeatMs: 60_000,
        log,
        clock: time.wall,
        monotonic: time.monotonic,
      });
      members.push(m);
      return m;
    };

    /** Another replica, beaten by hand: it beats when the test says. */
    const peer = async (id: string) => {
      assert.equal(await store.claimMember({ id, address: `http://${id}:8080`, startedAtUs: Date.now() * 1000, boot: `${id}/1/x` }, undefined), true);
      return { beat: async () => assert.equal(await store.beatMember(id, `${id}/1/x`, 'serving', `http://${id}:8080`), true) };
    };

    it('a peer that beats again after an outage longer than goneAfter is never reported gone; one still silent is, a full goneAfter after the store is back', async () => {
      store = await ts.open();
      const time = new TestTime();
      const outage = reachable(store);
      const w = await watcher('o-watch', time, outage.store);
      const live = await peer('o-live');
      await peer('o-dead');
      await w.refresh();
      assert.equal(w.isAlive('o-live'), true);
      assert.equal(w.isAlive('o-dead'), true);
      const gone: string[] = [];
      w.onGone((ids) => gone.push(...ids));

      // The database fails over: a minute unreachable, against a goneAfter of 10 s. Nobody beats.
      outage.down = true;
      time.pass(3000);
      await w.refresh();
      time.pass(60_000);
      assert.equal(w.isAlive('o-live'), true, 'not judged gone while the store cannot be read');
      assert.equal(w.addressOf('o-live'), 'http://o-live:8080');
      outage.down = false;
      // The first read after it comes before the peers beat again.
      await w.refresh();
      assert.deepEqual(gone, []);
      assert.equal(w.isAlive('o-live'), true);
      assert.equal(w.isAlive('o-dead'), true, 'silent only since the store came back');

      await live.beat();
      time.pass(9000);
      await w.refresh();
      assert.deepEqual(gone, []);
      // Silent for goneAfter since the store came back: gone. The one that beat is not.
      time.pass(2000);
      await w.refresh();
      assert.deepEqual(gone, ['o-dead']);
      assert.equal(w.isAlive('o-live'), true);
      assert.equal(w.isAlive('o-dead'), false);
    });

    it('counts no silence from the last read that succeeded: the store may have gone down just after it', async () => {
      const time = new TestTime();
      const outage = reachable(store);
      const w = await watcher('o-watch-4', time, outage.store);
      await peer('o-quiet');
      await w.refresh();
      const gone: string[] = [];
      w.onGone((ids) => gone.push(...ids));
      // Seen 6 s ago (goneAfter 10 s) when the store went down; the next read, which fails, comes 5 s later.
      time.pass(6000);
      outage.down = true;
      time.pass(5000);
      await w.refresh();
      assert.equal(w.isAlive('o-quiet'), true, 'alive as of the last read that succeeded');
      time.pass(30_000);
      outage.down = false;
      await w.refresh();
      assert.deepEqual(gone, []);
      assert.equal(w.isAlive('o-quiet'), true);
    });

    it('a peer already gone when the outage began is not brought back by it', async () => {
      const time = new TestTime();
      const outage = reachable(store);
      const w = await watcher('o-watch-2', time, outage.store);
      await peer('o-earlier');
      await w.refresh();
      const gone: string[] = [];
      w.onGone((ids) => gone.push(...ids));
      time.pass(11_000);
      await w.refresh();
      assert.ok(gone.includes('o-earlier'));
      outage.down = true;
      await w.refresh();
      time.pass(30_000);
      outage.down = false;
      await w.refresh();
      assert.equal(w.isAlive('o-earlier'), false);
      assert.equal(w.addressOf('o-earlier'), undefined);
      assert.equal(gone.filter((id) => id === 'o-earlier').length, 1, 'reported once');
    });

    it('a read that hangs through the outage (the connection stalls rather than fails) counts no silence either', async () => {
      const time = new TestTime();
      // The table's reads wait while the gate is shut, as on a connection that hangs until the database is back.
      let gate: Promise<void> | undefined;
      let open = () => {};
      const stalling: Store = {
        ...store,
        members: async () => {
          await gate;
          return store.members();
        },
      };
      const w = await watcher('o-watch-3', time, stalling);
      await peer('o-stalled');
      await w.refresh();
      const gone: string[] = [];
      w.onGone((ids) => gone.push(...ids));
      gate = new Promise((r) => (open = r));
      const read = w.refresh();
      time.pass(90_000);
      gate = undefined;
      open();
      await read;
      assert.deepEqual(gone, []);
      assert.equal(w.isAlive('o-stalled'), true);
    });

    it('a step of the wall clock past goneAfter takes no live peer for gone', async () => {
      const time = new TestTime();
      const w = await watcher('o-stepped', time);
      await peer('o-beating');
      await w.refresh();
      const gone: string[] = [];
      w.onGone((ids) => gone.push(...ids));
      assert.equal(w.isAlive('o-beating'), true);
      time.step(3_600_000);
      assert.equal(w.isAlive('o-beating'), true);
      assert.equal(w.addressOf('o-beating'), 'http://o-beating:8080');
      assert.deepEqual(w.serving().includes('o-beating'), true);
      await w.refresh();
      assert.equal(await w.aliveNow('o-beating'), true);
      assert.deepEqual(gone, []);
    });
  });
}
