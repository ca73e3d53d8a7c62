import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../src/store/store.js';
import { type DataKeyRow, emptyBatch, openSessionRow } from '../../src/store/types.js';
import { backends, type TestStore } from '../helpers/stores.js';

/** Recording encryption's keys (migration 13), on both backends: written with the session, re-wrapped, erased. */

const t0 = 1_790_000_000_000_000;

const key = (owner: string, kekId: string, wrapped: string): DataKeyRow => ({
  owner,
  kekId,
  wrapped,
  createdAtUs: t0,
  erasedAtUs: null,
  erasedBy: null,
  eraseReason: null,
});

for (const backend of backends) {
  describe(`store contract, data keys: ${backend.name}`, () => {
    let ts: TestStore;
    let store: Store;

    before(async () => {
      ts = backend.make();
      store = await ts.open();
      await store.write({
        ...emptyBatch(),
        dataKeys: [key('s1', 'k1', 'w-s1'), key('s2', 'k1', 'w-s2'), key('s3', 'k2', 'w-s3')],
        sessionsOpened: ['s1', 's2', 's3'].map((id, i) => openSessionRow({ id, instanceId: 'gw', connection: 'c', subject: 'alice', openedAtUs: t0 + i })),
      });
    });
    after(async () => {
      await store?.close();
      await ts?.destroy();
    });

    it('writes a session data key in the batch that opens the session, and reads them back by owner', async () => {
      const rows = (await store.dataKeys(['s1', 's3', 'none'])).sort((a, b) => a.owner.localeCompare(b.owner));
      assert.deepEqual(rows, [key('s1', 'k1', 'w-s1'), key('s3', 'k2', 'w-s3')]);
      assert.deepEqual(await store.dataKeys([]), []);
    });

    it('adds an owner once', async () => {
      assert.equal(await store.insertDataKey(key('access:r1', 'k2', 'w-r1')), true);
      assert.equal(await store.insertDataKey(key('access:r1', 'k1', 'other')), false);
      assert.equal((await store.dataKeys(['access:r1']))[0]?.wrapped, 'w-r1');
    });

    it('lists what a rotation to k2 must re-wrap, in pages, and re-wraps only what is unchanged', async () => {
      const page1 = await store.dataKeysNotUnder('k2', '', 1);
      assert.deepEqual(
        page1.map((r) => r.owner),
        ['s1'],
      );
      const page2 = await store.dataKeysNotUnder('k2', 's1', 10);
      assert.deepEqual(
        page2.map((r) => r.owner),
        ['s2'],
      );
      // A stale read (the wrapping changed since) is not overwritten.
      assert.equal(await store.rewrapDataKey('s1', 'k1', 'stale', 'k2', 'w2-s1'), false);
      assert.equal(await store.rewrapDataKey('s1', 'k1', 'w-s1', 'k2', 'w2-s1'), true);
      assert.deepEqual(
        (await store.dataKeysNotUnder('k2', '', 10)).map((r) => r.owner),
        ['s2'],
      );
      assert.deepEqual(await store.dataKeyCounts(), [
        { kekId: 'k1', count: 1 },
        { kekId: 'k2', count: 3 },
      ]);
    });

    it('erases for good, once, saying who, when and why; an erased key is not re-wrapped or counted', async () => {
      assert.deepEqual(await store.eraseDataKeys(['s2', 'none'], 'alice (https://idp)', 'privacy request 12', t0 + 5), ['s2']);
      assert.deepEqual(await store.eraseDataKeys(['s2'], 'bob', 'again', t0 + 6), []);
      const [erased] = await store.dataKeys(['s2']);
      assert.deepEqual(erased, {
        ...key('s2', 'k1', 'w-s2'),
        wrapped: null,
        erasedAtUs: t0 + 5,
        erasedBy: 'alice (https://idp)',
        eraseReason: 'privacy request 12',
      });
      assert.deepEqual(await store.dataKeysNotUnder('k2', '', 10), []);
      assert.equal(await store.rewrapDataKey('s2', 'k1', 'w-s2', 'k2', 'x'), false);
      assert.deepEqual(await store.dataKeyCounts(), [{ kekId: 'k2', count: 3 }]);
    });

    it('keeps one check per KEK id', async () => {
      assert.equal(await store.insertKekCheck({ kekId: 'k1', provider: 'local', check: 'c1', createdAtUs: t0 }), true);
      assert.equal(await store.insertKekCheck({ kekId: 'k1', provider: 'local', check: 'other', createdAtUs: t0 + 1 }), false);
      assert.deepEqual(await store.kekChecks(), [{ kekId: 'k1', provider: 'local', check: 'c1', createdAtUs: t0 }]);
    });
  });
}
