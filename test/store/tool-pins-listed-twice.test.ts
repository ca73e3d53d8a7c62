import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../src/store/store.js';
import { toolPin } from '../helpers/pin-rows.js';
import { backends, type TestStore } from '../helpers/stores.js';
import { upgradeFrom } from '../helpers/store-versions.js';

/**
 * Whether a server lists a tool's name twice is kept on its pin (`duplicatedSinceUs`), on both backends: marked and
 * cleared by name, each pin once (a mark keeps its first time), and an approval's compare-and-set can require it
 * clear. A store from before (version 15) gains the column, every pin listed once.
 */
for (const backend of backends) {
  describe(`tool pins listed twice: ${backend.name}`, () => {
    let ts: TestStore;
    let store: Store;

    before(async () => {
      ts = backend.make();
      store = await ts.open();
      await store.migrate();
    });
    after(async () => {
      await store?.close();
      await ts?.destroy();
    });

    const marks = async (connection: string) => Object.fromEntries((await store.listToolPins(connection)).map((p) => [p.tool, p.duplicatedSinceUs]));

    it('marks and clears pins by name: only those whose mark changes, each keeping its first time', async () => {
      const connection = 'lt-marks';
      for (const tool of ['a', 'b', 'c']) assert.equal(await store.insertToolPin(toolPin({ connection, tool })), true);
      assert.equal(await store.insertToolPin(toolPin({ connection: 'lt-marks-other', tool: 'a' })), true);

      assert.deepEqual(
        (await store.markToolPinsDuplicated(connection, ['a', 'b', 'never-pinned'], 1_000)).sort(),
        ['a', 'b'],
        'a tool without a pin is passed over',
      );
      assert.deepEqual(await marks(connection), { a: 1_000, b: 1_000, c: null });
      assert.deepEqual(await marks('lt-marks-other'), { a: null }, 'the same name on another connection is another pin');

      assert.deepEqual(await store.markToolPinsDuplicated(connection, ['a', 'c'], 2_000), ['c'], 'a marked pin keeps its first time');
      assert.deepEqual(await marks(connection), { a: 1_000, b: 1_000, c: 2_000 });

      assert.deepEqual((await store.markToolPinsDuplicated(connection, ['a', 'c'], null)).sort(), ['a', 'c']);
      assert.deepEqual(await store.markToolPinsDuplicated(connection, ['a', 'c'], null), [], 'cleared already');
      assert.deepEqual(await marks(connection), { a: null, b: 1_000, c: null });
      assert.deepEqual(await store.markToolPinsDuplicated(connection, [], 3_000), []);
    });

    it('marks more pins than one statement carries', async () => {
      const connection = 'lt-many';
      const tools = Array.from({ length: 2_100 }, (_, i) => `tool-${i}`);
      assert.equal((await store.insertToolPins(tools.map((tool) => toolPin({ connection, tool })))).size, tools.length);
      assert.equal((await store.markToolPinsDuplicated(connection, tools, 5)).length, tools.length);
      assert.ok((await store.listToolPins(connection)).every((p) => p.duplicatedSinceUs === 5));
      assert.equal((await store.markToolPinsDuplicated(connection, tools, null)).length, tools.length);
    });

    it('an update that expects the name listed once is refused while it is listed twice', async () => {
      const connection = 'lt-cas';
      const pin = toolPin({ connection, pendingDigest: 'b'.repeat(64), pendingDefinition: '{"name":"changed"}', pendingSinceUs: 7 });
      await store.insertToolPin(pin);
      await store.markToolPinsDuplicated(connection, [pin.tool], 9);
      const expect = { digest: pin.digest, pendingDigest: pin.pendingDigest };
      const approve = { digest: pin.pendingDigest, pendingDigest: null };
      assert.equal(await store.updateToolPin(connection, pin.tool, { ...expect, listedOnce: true }, approve), false);
      assert.deepEqual((await store.listToolPins(connection))[0], { ...pin, duplicatedSinceUs: 9 }, 'nothing written');
      // Other updates do not look at the mark, and leave it as it is.
      assert.equal(await store.updateToolPin(connection, pin.tool, expect, { removedAtUs: 11 }), true);
      await store.markToolPinsDuplicated(connection, [pin.tool], null);
      assert.equal(await store.updateToolPin(connection, pin.tool, { ...expect, listedOnce: true }, approve), true);
      assert.deepEqual((await store.listToolPins(connection))[0], { ...pin, ...approve, removedAtUs: 11 });
    });

    it('brings a version 15 store to the latest version: its pins listed once, and markable', async () => {
      await upgradeFrom(
        backend,
        15,
        `INSERT INTO tool_pins (connection, tool, digest, definition, pinned_at_us)
         VALUES ('lt-v15', 'read_file', '${'a'.repeat(64)}', '{"name":"read_file"}', 1000);`,
        {
          migrated: async (migrated) => {
            const [pin] = await migrated.listToolPins('lt-v15');
            assert.deepEqual([pin?.tool, pin?.digest, pin?.duplicatedSinceUs], ['read_file', 'a'.repeat(64), null]);
            assert.deepEqual(await migrated.markToolPinsDuplicated('lt-v15', ['read_file'], 1_790_000_000_000_000), ['read_file']);
          },
          reopened: async (reopened) => {
            assert.equal((await reopened.listToolPins('lt-v15'))[0]?.duplicatedSinceUs, 1_790_000_000_000_000, 'a time in µs, kept whole');
          },
        },
      );
    });
  });
}
