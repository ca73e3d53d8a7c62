import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../src/store/store.js';
import { backends, type TestStore } from '../helpers/stores.js';

/** Where agents' tunnels end (migration 10), on both backends: what the replicas write and read (src/agent/locations.ts). */

for (const backend of backends) {
  describe(`store contract, agent tunnels: ${backend.name}`, () => {
    let ts: TestStore;
    let store: Store;

    before(async () => {
      ts = backend.make();
      store = await ts.open();
    });
    after(async () => {
      await store?.close();
      await ts?.destroy();
    });

    const holders = async (agent: string) => (await store.agentTunnels(agent)).map((r) => [r.instanceId, r.connectedAtUs]);

    it('keeps one row per agent and replica, the most recently connected first; putting it again moves its time', async () => {
      await store.putAgentTunnel('vpc', 'replica-1', 1000);
      await store.putAgentTunnel('vpc', 'replica-2', 2000);
      await store.putAgentTunnel('other', 'replica-1', 1500);
      assert.deepEqual(await holders('vpc'), [
        ['replica-2', 2000],
        ['replica-1', 1000],
      ]);
      await store.putAgentTunnel('vpc', 'replica-1', 3000);
      assert.deepEqual(await holders('vpc'), [
        ['replica-1', 3000],
        ['replica-2', 2000],
      ]);
      assert.deepEqual(await holders('nobody'), []);
    });

    it("drops one agent's row, or a replica's rows (all, or those from before a time)", async () => {
      await store.dropAgentTunnel('vpc', 'replica-2');
      assert.deepEqual(await holders('vpc'), [['replica-1', 3000]]);
      await store.dropInstanceTunnels('replica-1', 2000);
      assert.deepEqual(await holders('vpc'), [['replica-1', 3000]], 'recorded after the time given: kept');
      assert.deepEqual(await holders('other'), [], 'recorded before it: dropped');
      await store.dropInstanceTunnels('replica-1');
      assert.deepEqual(await holders('vpc'), []);
    });
  });
}
