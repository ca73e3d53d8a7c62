import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ToolPins } from '../../src/pins/tool-pins.js';
import type { Store } from '../../src/store/store.js';
import { sqliteTestStore, type TestStore } from '../helpers/stores.js';

/**
 * Reading the pins again (a change notification, a reconnect, every cluster.reconcile) must not let out what this
 * gateway quarantined: a name its server listed twice stays held (the store says so: listed-twice.test.ts), and a
 * read begun before this gateway changed the quarantine is older than what it knows.
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
    const held = holdingReads(store);
    const slow = pinsOn(held.store);
    await slow.check(connection, [tool('a')], true);
    const started = held.holdNext();
    const reread = slow.reloadAll();
    // A changed definition: quarantined here (and written as pending) while the re-read holds its older rows.
    await started;
    const changed = await slow.check(connection, [tool('a', 'Now also deletes everything.')], true);
    assert.deepEqual(changed.quarantined, ['a']);
    held.release();
    await reread;
    assert.equal(slow.isQuarantined(connection, 'a'), true, 'the older read did not undo the quarantine');
  });

  it('a first read of a connection that an approval here overtakes is read again, never left unknown', async () => {
    const connection = 'first-read-overtaken';
    const writer = pinsOn(store);
    await writer.check(connection, [tool('a')], true);
    await writer.check(connection, [tool('a', 'Now also deletes everything.')], true);
    const held = holdingReads(store);
    void held.holdNext();
    const fresh = pinsOn(held.store);
    const first = fresh.load(connection);
    // Approved here while the first read (which saw it pending) is held.
    await fresh.approve(connection, 'a', { subject: 'ada', issuer: 'urn:test', groups: ['admins'] }, undefined);
    held.release();
    await first;
    assert.equal(fresh.isQuarantined(connection, 'a'), false, 'known, and as approved: read again after the approval');
  });
});

/**
 * The same store, the next read of pins after `holdNext()` held until `release()` (whose promise resolves once that
 * read has begun). A store's methods use its private fields: they are bound to it.
 */
function holdingReads(store: Store): { store: Store; holdNext(): Promise<void>; release(): void } {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let begun: (() => void) | undefined;
  const listToolPins = async (c: string) => {
    const first = begun;
    begun = undefined;
    first?.();
    const rows = await store.listToolPins(c);
    if (first !== undefined) await held;
    return rows;
  };
  return {
    store: new Proxy(store, {
      get: (target, prop) => {
        if (prop === 'listToolPins') return listToolPins;
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }),
    holdNext: () => new Promise<void>((r) => (begun = r)),
    release,
  };
}
