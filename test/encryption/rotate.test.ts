import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { localKek } from '../../src/encryption/keks/local.js';
import { Keyring } from '../../src/encryption/keyring.js';
import { rotateDataKeys } from '../../src/encryption/rotate.js';
import type { Store } from '../../src/store/store.js';
import type { DataKeyRow } from '../../src/store/types.js';
import { backends } from '../helpers/stores.js';

/**
 * `keys rotate`'s work, on data_keys rows written through the store (as the recorder writes them: wrapped by the
 * keyring's current KEK), with the writes a live gateway and other operators make meanwhile: a data key written under
 * the old KEK behind the rotation's cursor, an erasure and another rotation landing between a row's read and its
 * re-wrap. (The recorder writing data keys itself is another part of issue 21; this is the store's side of it.)
 */

const k1 = localKek('k1', randomBytes(32));
const k2 = localKek('k2', randomBytes(32));
const k0 = localKek('k0', randomBytes(32));
const before1 = new Keyring([k1], k1);
const during = new Keyring([k1, k2], k2);

async function writeDataKey(store: Store, keyring: Keyring, owner: string): Promise<Buffer> {
  const made = keyring.newDataKey(owner);
  const row: DataKeyRow = { owner, kekId: made.kekId, wrapped: await made.wrapped, createdAtUs: 1, erasedAtUs: null, erasedBy: null, eraseReason: null };
  assert.ok(await store.insertDataKey(row));
  return made.key;
}

for (const backend of backends) {
  describe(`rotation (${backend.name})`, () => {
    const ts = backend.make();
    let store: Store;
    const keys = new Map<string, Buffer>();
    before(async () => {
      store = await ts.open();
      for (let i = 0; i < 25; i++) {
        const owner = `s-${String(i).padStart(3, '0')}`;
        keys.set(owner, await writeDataKey(store, before1, owner));
      }
      keys.set('access:r1', await writeDataKey(store, before1, 'access:r1'));
      await writeDataKey(store, new Keyring([k0], k0), 's-k0');
      await store.eraseDataKeys(['s-003'], 'ada (https://idp)', 'privacy request', 5);
      keys.delete('s-003');
    });
    after(async () => {
      await store?.close();
      await ts.destroy();
    });

    it('re-wraps every data key under the current KEK, including one written under the old KEK behind its cursor meanwhile; races settle', async () => {
      // Writes by others land exactly between a row's read and its re-wrap: an erasure, and another rotation.
      const racing: Store = Object.create(store) as Store;
      racing.rewrapDataKey = async (owner, fromKekId, fromWrapped, toKekId, toWrapped) => {
        if (owner === 's-010') await store.eraseDataKeys(['s-010'], 'retention', 'retention', 6);
        if (owner === 's-011') {
          const [row] = await store.dataKeys(['s-011']);
          assert.ok(await store.rewrapDataKey('s-011', 'k1', row!.wrapped!, 'k2', k2.wrapSync!(keys.get('s-011')!, 's-011')));
        }
        return store.rewrapDataKey(owner, fromKekId, fromWrapped, toKekId, toWrapped);
      };
      keys.delete('s-010');
      let batches = 0;
      const result = await rotateDataKeys(racing, during, {
        batchSize: 7,
        onBatch: async () => {
          // A replica that has not made k2 current yet opens a session: its owner sorts before the cursor.
          if (++batches === 1) keys.set('a-late', await writeDataKey(store, before1, 'a-late'));
        },
      });
      assert.equal(result.unfinished, false);
      assert.equal(result.passes, 3, 'the second pass found the late one, the third found nothing left');
      // 25 sessions + 1 access request + the late one, less the erased one and the two others settled.
      assert.deepEqual([...result.rewrapped], [['k1', 24]]);
      assert.deepEqual([...result.lacking], [['k0', 1]], 'under a KEK the keyring lacks: left, and said');
      assert.deepEqual(result.failed, []);
      assert.deepEqual(await store.dataKeyCounts(), [
        { kekId: 'k0', count: 1 },
        { kekId: 'k2', count: keys.size },
      ]);
      // Every data key still is the key it was: a keyring with only the new KEK unwraps each to the same bytes.
      const after = new Keyring([k2], k2);
      for (const row of await store.dataKeys([...keys.keys()])) assert.deepEqual(await after.dataKey(row), keys.get(row.owner), row.owner);
      const erased = await store.dataKeys(['s-003', 's-010']);
      assert.deepEqual(
        erased.map((r) => [r.owner, r.wrapped, r.kekId]).sort(),
        [
          ['s-003', null, 'k1'],
          ['s-010', null, 'k1'],
        ],
        'erased keys stay erased',
      );
    });

    it('running it again is a no-op', async () => {
      const owners = [...keys.keys(), 's-k0', 's-003'];
      const rows = await store.dataKeys(owners);
      const result = await rotateDataKeys(store, during, { batchSize: 7 });
      assert.deepEqual([...result.rewrapped], []);
      assert.equal(result.passes, 1);
      assert.deepEqual(
        (await store.dataKeys(owners)).sort((a, b) => a.owner.localeCompare(b.owner)),
        rows.sort((a, b) => a.owner.localeCompare(b.owner)),
      );
    });

    it('a wrapped key that does not unwrap is reported, not re-wrapped, and the rest go on', async () => {
      await writeDataKey(store, before1, 'b-altered');
      const [row] = await store.dataKeys(['b-altered']);
      // Another owner's wrapping copied onto this one: it does not unwrap under this owner.
      const [other] = await store.dataKeys(['s-000']);
      const copied = k1.wrapSync!(randomBytes(32), 'someone-else');
      assert.ok(await store.rewrapDataKey('b-altered', 'k1', row!.wrapped!, 'k1', copied));
      keys.set('b-ok', await writeDataKey(store, before1, 'b-ok'));
      const result = await rotateDataKeys(store, during);
      assert.deepEqual(
        result.failed.map((f) => [f.owner, f.kekId]),
        [['b-altered', 'k1']],
      );
      assert.match(result.failed[0]!.message, /^the data key of b-altered does not unwrap under KEK 'k1'/);
      assert.deepEqual([...result.rewrapped], [['k1', 1]]);
      assert.equal((await store.dataKeys(['b-altered']))[0]!.kekId, 'k1');
      assert.equal(other!.kekId, 'k2');
    });
  });
}
