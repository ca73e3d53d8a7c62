import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ToolPins } from '../../src/pins/tool-pins.js';
import type { Store } from '../../src/store/store.js';
import { sqliteTestStore, type TestStore } from '../helpers/stores.js';

/**
 * Reading the pins again (a change notification, a reconnect, every cluster.reconcile) must not let out what this
 * gateway quarantined on its own: a name its server listed twice is quarantined here though nothing in the store says
 * so, and a read begun before this gateway changed the quarantine is older than what it knows.
 */
describe('tool pins read again from the store', () => {
  let ts: TestStore;
  let store: Store;

  before(async () => {
    ts = sqliteTestStore();
    store = await ts.open();
    await store.migrate();
  });
  after(async () => {
    await store?.close();
    await ts?.destroy();
  });

  const tool = (name: string, description = `Does ${name}.`) => ({ name, description, inputSchema: { type: 'object' } });
  const pinsOn = (s: Store) => new ToolPins({ store: s, log: pino({ level: 'silent' }), admins: ['admins'] });

  it('keeps a name listed twice quarantined across every re-read, and lets it out once the server lists it once', async () => {
    const pins = pinsOn(store);
    const connection = 'listed-twice';
    const first = await pins.check(connection, [tool('dup'), tool('dup', 'Does something else.'), tool('ok')], true);
    assert.deepEqual(first.quarantined, ['dup']);
    await pins.reloadAll();
    assert.equal(pins.isQuarantined(connection, 'dup'), true, 'still quarantined after reading the store again');
    assert.equal(pins.isQuarantined(connection, 'ok'), false);
    await pins.reload(connection);
    assert.equal(pins.isQuarantined(connection, 'dup'), true);
    // Listed once, as first pinned: no longer ambiguous, and nothing remembers it as listed twice.
    const second = await pins.check(connection, [tool('dup'), tool('ok')], true);
    assert.deepEqual(second.quarantined, []);
    await pins.reloadAll();
    assert.equal(pins.isQuarantined(connection, 'dup'), false);
  });

  it('drops a re-read that began before this gateway checked a list, rather than undo the quarantine it set', async () => {
    const connection = 'read-begun-before';
    const pins = pinsOn(store);
    await pins.check(connection, [tool('a')], true);
    // The re-read's query is held until the list below has been checked.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holding = false;
    let reads = 0;
    const listToolPins = async (c: string) => {
      const first = holding && reads++ === 0;
      const rows = await store.listToolPins(c);
      if (first) await held;
      return rows;
    };
    // The same store, its reads of pins held on demand (a store's methods use its private fields: bound to it).
    const slowStore = new Proxy(store, {
      get: (target, prop) => {
        if (prop === 'listToolPins') return listToolPins;
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const slow = pinsOn(slowStore);
    await slow.check(connection, [tool('a')], true);
    holding = true;
    const reread = slow.reloadAll();
    // A changed definition: quarantined here (and written as pending) while the re-read holds its older rows.
    await waitForReads(() => reads);
    const changed = await slow.check(connection, [tool('a', 'Now also deletes everything.')], true);
    assert.deepEqual(changed.quarantined, ['a']);
    release();
    await reread;
    assert.equal(slow.isQuarantined(connection, 'a'), true, 'the older read did not undo the quarantine');
  });

  it('a first read of a connection that an approval here overtakes is read again, never left unknown', async () => {
    const connection = 'first-read-overtaken';
    const writer = pinsOn(store);
    await writer.check(connection, [tool('a')], true);
    await writer.check(connection, [tool('a', 'Now also deletes everything.')], true);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holding = true;
    const listToolPins = async (c: string) => {
      const first = holding;
      holding = false;
      const rows = await store.listToolPins(c);
      if (first) await held;
      return rows;
    };
    const slowStore = new Proxy(store, {
      get: (target, prop) => {
        if (prop === 'listToolPins') return listToolPins;
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const fresh = pinsOn(slowStore);
    const first = fresh.load(connection);
    // Approved here while the first read (which saw it pending) is held.
    await fresh.approve(connection, 'a', { subject: 'ada', issuer: 'urn:test', groups: ['admins'] }, undefined);
    release();
    await first;
    assert.equal(fresh.isQuarantined(connection, 'a'), false, 'known, and as approved: read again after the approval');
  });
});

/** Resolves once the held re-read has started its query (it counts its reads). */
async function waitForReads(reads: () => number): Promise<void> {
  while (reads() === 0) await new Promise((r) => setImmediate(r));
}
