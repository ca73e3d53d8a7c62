import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ToolPins } from '../../src/pins/tool-pins.js';
import type { Store } from '../../src/store/store.js';
import { postgresTestStore, type TestStore } from '../helpers/stores.js';

/**
 * Pinning on first sight across replicas: gateways on one PostgreSQL store that see a connection's tool list for the
 * first time at once must all take it as the first list. A gateway that read the pins while another had written only
 * some took the others as tools added since, and quarantined them.
 */
describe('first-sight pinning by gateways sharing a store', () => {
  let ts: TestStore;
  const stores: Store[] = [];

  before(async () => {
    ts = postgresTestStore();
    // One store each, as replicas have: their own connection pools to one database.
    for (let i = 0; i < 4; i++) stores.push(await ts.open());
    await stores[0]!.migrate();
  });
  after(async () => {
    for (const s of stores) await s.close();
    await ts?.destroy();
  });

  it('a first list is pinned at once: a gateway reading meanwhile sees all of its pins or none', async () => {
    const connection = 'first-sight-atomic';
    const tools = Array.from({ length: 2_500 }, (_, i) => ({ name: `tool_${i}`, description: `Tool ${i}.`, inputSchema: { type: 'object' } }));
    const writer = new ToolPins({ store: stores[0]!, log: pino({ level: 'silent' }), admins: ['admins'] });
    let done = false;
    const seen = new Set<number>();
    const reading = (async () => {
      // Another replica's reads, for as long as the first one pins (and once after).
      do seen.add((await stores[1]!.listToolPins(connection)).length);
      while (!done);
      seen.add((await stores[1]!.listToolPins(connection)).length);
    })();
    const check = await writer.check(connection, tools, true).finally(() => (done = true));
    await reading;
    assert.equal(check.visible.length, tools.length);
    assert.deepEqual(
      [...seen].filter((n) => n !== 0 && n !== tools.length),
      [],
      'no partial set of pins was ever visible',
    );
    assert.ok(seen.has(tools.length));
  });

  it('every gateway lets the whole first list through, whichever wrote the pins', async () => {
    const tools = Array.from({ length: 60 }, (_, i) => ({
      name: `tool_${i}`,
      description: `Reads item ${i} of the inventory.`,
      inputSchema: { type: 'object', properties: { id: { type: 'string' } } },
    }));
    for (let round = 0; round < 5; round++) {
      const connection = `first-sight-${round}`;
      const gateways = stores.map((store) => new ToolPins({ store, log: pino({ level: 'silent' }), admins: ['admins'] }));
      const checks = await Promise.all(gateways.map((g) => g.check(connection, tools, true)));
      for (const [i, check] of checks.entries()) {
        assert.deepEqual(check.quarantined, [], `gateway ${i}, round ${round}: nothing quarantined`);
        assert.equal(check.visible.length, tools.length, `gateway ${i}, round ${round}: every tool visible`);
      }
      // Exactly one gateway reports having pinned them (the others found them pinned).
      const pinned = checks.map((c) => c.changes.filter((ch) => ch.change === 'pinned').length);
      assert.equal(
        pinned.reduce((a, b) => a + b, 0),
        tools.length,
        `round ${round}: each tool pinned once (${pinned.join(', ')})`,
      );
      assert.equal((await stores[0]!.listToolPins(connection)).length, tools.length);
    }
  });
});
