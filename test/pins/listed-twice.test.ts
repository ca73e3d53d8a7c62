import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { PinError, ToolPins } from '../../src/pins/tool-pins.js';
import type { Store } from '../../src/store/store.js';
import { backends, type TestStore } from '../helpers/stores.js';

/**
 * A name a server lists twice is held by every gateway on the store, not only the one that saw the list: another
 * replica (its own store handle, its own ToolPins) holds it once it reads the pins (as a change notification makes
 * it), and so does a restarted gateway, until a list shows the name once. A page of a list says nothing of the names
 * on other pages. No approval releases a name while it is listed twice. Both backends.
 */
for (const backend of backends) {
  describe(`a name listed twice, held through the store: ${backend.name}`, () => {
    let ts: TestStore;
    let stores: Store[];

    before(async () => {
      ts = backend.make();
      stores = [await ts.open(), await ts.open()];
      await stores[0]!.migrate();
    });
    after(async () => {
      for (const s of stores ?? []) await s.close();
      await ts?.destroy();
    });

    const tool = (name: string, description = `Does ${name}.`) => ({ name, description, inputSchema: { type: 'object' } });
    const admin = { subject: 'ada', issuer: 'urn:test', groups: ['admins'] };
    /** A gateway's pins on one of the store handles; what it announced, by connection. */
    const gateway = (handle: number) => {
      const announced: string[] = [];
      const pins = new ToolPins({ store: stores[handle]!, log: pino({ level: 'silent' }), admins: ['admins'], onStored: (c) => announced.push(c) });
      return { pins, announced };
    };

    it('is held by another gateway and a restarted one, and let go by all once listed once', async () => {
      const connection = 'twice-complete';
      const a = gateway(0);
      const b = gateway(1);
      await a.pins.check(connection, [tool('dup'), tool('ok')], true);
      await b.pins.load(connection);
      assert.equal(b.pins.isQuarantined(connection, 'dup'), false);

      a.announced.length = 0;
      const twice = await a.pins.check(connection, [tool('dup'), tool('dup', 'Does something else.'), tool('ok')], true);
      assert.deepEqual(twice.quarantined, ['dup']);
      assert.deepEqual(a.announced, [connection], 'announced, so that the others read the pins again');
      await b.pins.reload(connection);
      assert.equal(b.pins.isQuarantined(connection, 'dup'), true, 'held by the other gateway');
      assert.equal(b.pins.isQuarantined(connection, 'ok'), false);
      const restarted = gateway(1).pins;
      await restarted.load(connection);
      assert.equal(restarted.isQuarantined(connection, 'dup'), true, 'held by a gateway started since');
      const { duplicatedSinceUs } = await a.pins.get(connection, 'dup');
      assert.notEqual(duplicatedSinceUs, null);

      // Listed twice again: nothing new to write, nothing to announce, and the first time is kept.
      a.announced.length = 0;
      await a.pins.check(connection, [tool('dup'), tool('dup', 'Does something else.'), tool('ok')], true);
      assert.deepEqual(a.announced, []);
      assert.equal((await a.pins.get(connection, 'dup')).duplicatedSinceUs, duplicatedSinceUs);

      const once = await a.pins.check(connection, [tool('dup'), tool('ok')], true);
      assert.deepEqual(once.quarantined, []);
      assert.deepEqual(a.announced, [connection]);
      assert.equal((await a.pins.get(connection, 'dup')).duplicatedSinceUs, null);
      await b.pins.reload(connection);
      assert.equal(b.pins.isQuarantined(connection, 'dup'), false, 'let go by the other gateway');
    });

    it('a page says nothing of the names on other pages', async () => {
      const connection = 'twice-pages';
      const a = gateway(0);
      const b = gateway(1);
      await a.pins.check(connection, [tool('dup'), tool('ok'), tool('other')], true);
      await a.pins.check(connection, [tool('dup'), tool('dup', 'Does something else.')], false);
      await b.pins.load(connection);
      assert.equal(b.pins.isQuarantined(connection, 'dup'), true, 'a page that shows a name twice holds it');

      await a.pins.check(connection, [tool('ok'), tool('other')], false);
      await b.pins.reload(connection);
      assert.equal(b.pins.isQuarantined(connection, 'dup'), true, 'a page without the name keeps it held');
      assert.equal(a.pins.isQuarantined(connection, 'dup'), true);

      await a.pins.check(connection, [tool('dup')], false);
      await b.pins.reload(connection);
      assert.equal(b.pins.isQuarantined(connection, 'dup'), false, 'a page that shows it once lets it go');
      assert.equal(a.pins.isQuarantined(connection, 'dup'), false);
    });

    it('a complete list without the name lets it go; one never pinned stays held as a new tool', async () => {
      const connection = 'twice-gone';
      const a = gateway(0);
      const b = gateway(1);
      await a.pins.check(connection, [tool('dup'), tool('ok')], true);
      // `fresh` was never pinned: listed twice, it is added (waiting for an admin) and held as listed twice.
      const twice = await a.pins.check(connection, [tool('dup'), tool('dup', 'Other.'), tool('fresh'), tool('fresh', 'Other.'), tool('ok')], true);
      assert.deepEqual(twice.quarantined.sort(), ['dup', 'fresh']);
      await b.pins.load(connection);
      assert.equal(b.pins.isQuarantined(connection, 'fresh'), true, 'held by the other gateway too');
      assert.notEqual((await a.pins.get(connection, 'fresh')).duplicatedSinceUs, null);

      await a.pins.check(connection, [tool('ok')], true);
      assert.deepEqual(
        (await a.pins.list(connection)).map((p) => [p.tool, p.duplicatedSinceUs]),
        [
          ['dup', null],
          ['fresh', null],
          ['ok', null],
        ],
      );
      assert.equal(a.pins.isQuarantined(connection, 'dup'), false, 'removed, and no longer ambiguous');
      assert.equal(a.pins.isQuarantined(connection, 'fresh'), true, 'still a new definition waiting for an admin');
      await b.pins.reload(connection);
      assert.equal(b.pins.isQuarantined(connection, 'dup'), false);
      assert.equal(b.pins.isQuarantined(connection, 'fresh'), true);
    });

    it('no approval releases a name while it is listed twice', async () => {
      const connection = 'twice-approval';
      const a = gateway(0);
      const b = gateway(1);
      await a.pins.check(connection, [tool('dup')], true);
      // A changed definition waits for an admin; then the server lists the name twice.
      await a.pins.check(connection, [tool('dup', 'Now deletes too.')], true);
      await a.pins.check(connection, [tool('dup', 'Now deletes too.'), tool('dup', 'Or not.')], true);
      const { pendingDigest } = await b.pins.get(connection, 'dup');
      await b.pins.load(connection);
      await assert.rejects(b.pins.approve(connection, 'dup', admin, pendingDigest ?? undefined), (err: unknown) => {
        assert.ok(err instanceof PinError);
        assert.equal(err.status, 409);
        assert.match(err.message, /lists tool "dup" twice: it stays held until the server lists it once/);
        return true;
      });
      assert.equal(b.pins.isQuarantined(connection, 'dup'), true);
      assert.equal((await b.pins.get(connection, 'dup')).pendingDigest, pendingDigest, 'nothing approved');

      // Listed once again: the waiting definition can be approved as any other.
      await a.pins.check(connection, [tool('dup', 'Now deletes too.')], true);
      await b.pins.approve(connection, 'dup', admin, pendingDigest ?? undefined);
      assert.equal(b.pins.isQuarantined(connection, 'dup'), false);
    });
  });
}
