import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { TunnelLocations } from '../../src/agent/locations.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/** Where this replica's agents' tunnels end, as it records them in the shared store for the other replicas (each backend). */

const log = pino({ level: 'silent' });

for (const backend of backends) {
  describe(`tunnel locations (${backend.name})`, () => {
    const ts = backend.make();
    let store: Store;
    const all: TunnelLocations[] = [];
    const locations = (self: string, over: Partial<Store> = {}) => {
      const l = new TunnelLocations({ store: { ...store, ...over }, self, isAlive: () => true, log });
      all.push(l);
      return l;
    };
    const rows = async (agent: string) => (await store.agentTunnels(agent)).map((r) => [r.instanceId, r.connectedAtUs]);

    after(async () => {
      for (const l of all) await l.leave();
      await store?.close();
      await ts.destroy();
    });

    it('writes its rows again at each heartbeat, unchanged: a replica wrongly taken for gone gets back the rows another deleted', async () => {
      store = await ts.open();
      const here = locations('l-here');
      await here.start();
      here.update('vpc', true);
      await waitFor(async () => (await rows('vpc')).length === 1, 'the row of the tunnel held here');
      const [written] = await rows('vpc');
      // Another replica took this one for gone (a store outage, say): it deleted its rows (TunnelLocations.forget).
      locations('l-other').forget(['l-here']);
      await waitFor(async () => (await rows('vpc')).length === 0, 'the row deleted by the other replica');
      // The hub's next heartbeat.
      here.beat();
      await waitFor(async () => (await rows('vpc')).length === 1, 'the row written again');
      assert.deepEqual(await rows('vpc'), [written], 'as it was: its time (which orders the holders) unchanged');
      // An agent no longer held is not written again.
      here.update('vpc', false);
      await waitFor(async () => (await rows('vpc')).length === 0, 'the row of the closed tunnel removed');
      here.beat();
      await new Promise((r) => setImmediate(r));
      here.update('marker', true);
      await waitFor(async () => (await rows('marker')).length === 1, 'a later write, after whatever the heartbeat wrote');
      assert.deepEqual(await rows('vpc'), []);
    });

    it('forgets the replicas found gone one after the other: a start that finds many gone takes one connection, not the pool', async () => {
      let inFlight = 0;
      let most = 0;
      const sweeper = locations('l-sweeper', {
        async dropInstanceTunnels(id, beforeUs) {
          most = Math.max(most, ++inFlight);
          try {
            await store.dropInstanceTunnels(id, beforeUs);
          } finally {
            inFlight--;
          }
        },
      });
      const gone = Array.from({ length: 20 }, (_, i) => `l-gone-${i}`);
      for (const id of gone) await store.putAgentTunnel('fleet', id, 1);
      sweeper.forget(gone.slice(0, 10));
      sweeper.forget(gone.slice(10));
      await waitFor(async () => (await rows('fleet')).length === 0, "the gone replicas' rows deleted");
      assert.equal(most, 1);
    });
  });
}
