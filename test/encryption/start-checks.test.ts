import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { localKek } from '../../src/encryption/keks/local.js';
import { Keyring } from '../../src/encryption/keyring.js';
import { checkKeks, KekMismatchError, keksIncompatibility, plainRecordingWarning } from '../../src/encryption/start-checks.js';
import type { Store } from '../../src/store/store.js';
import { startTestGateway } from '../helpers/gateway.js';
import { type StoreReplicas, startStoreReplicas } from '../helpers/store-replicas.js';
import { backends } from '../helpers/stores.js';

/**
 * What the gateway checks about its KEKs before it records: each is the key the store knows by its id, and the live
 * replicas on the store can read each other's recordings; without recording.encryption it says once that recordings
 * are plain.
 */

const keyDir = mkdtempSync(join(tmpdir(), 'portcullis-keks-'));
after(() => rmSync(keyDir, { recursive: true, force: true }));

/** A fresh 32-byte key in a file, as `local: ${file:…}` names it. */
/** A connection nothing opens here: the gateway needs one to start. */
const unused = { unused: { http: { url: 'http://127.0.0.1:9/mcp' }, tools: { pin: false } } };

function keyFile(name: string): string {
  const path = join(keyDir, name);
  writeFileSync(path, `${randomBytes(32).toString('base64')}\n`);
  return `\${file:${path}}`;
}

for (const backend of backends) {
  describe(`KEK checks (${backend.name})`, () => {
    const ts = backend.make();
    let store: Store;
    before(async () => (store = await ts.open()));
    after(async () => {
      await store?.close();
      await ts.destroy();
    });

    it('records a check for each new KEK id, passes the same key again, and refuses another key under a known id', async () => {
      const k1 = localKek('k1', randomBytes(32));
      const k2 = localKek('k2', randomBytes(32));
      assert.deepEqual(await checkKeks(store, new Keyring([k1], k1), 1000), ['k1']);
      assert.deepEqual(await checkKeks(store, new Keyring([k1, k2], k2), 2000), ['k2'], 'a key added later is recorded then');
      assert.deepEqual(await checkKeks(store, new Keyring([k1, k2], k1), 3000), [], 'the same keys: nothing new, nothing refused');
      assert.deepEqual(
        (await store.kekChecks()).map((c) => [c.kekId, c.provider, c.createdAtUs]),
        [
          ['k1', 'local', 1000],
          ['k2', 'local', 2000],
        ],
      );
      const impostor = localKek('k1', randomBytes(32));
      await assert.rejects(checkKeks(store, new Keyring([impostor, k2], k2), 4000), (err: unknown) => {
        assert.ok(err instanceof KekMismatchError);
        assert.match(
          err.message,
          /^KEK 'k1' is not the key this store knows by that name: the check the store recorded for 'k1' \(a local key, on 1970-01-01T00:00:00\.001Z\) does not unwrap under local key 'k1'\. Configure the key the store knows as 'k1' in recording\.encryption\.keys, or give this key a new id$/,
        );
        return true;
      });
    });
  });
}

describe('replica KEK sets: which pairs can share a store', () => {
  const set = (current: string | null, ...ids: string[]) => ({ current, ids });
  it("compatible: both plain; each one's current among the other's keys", () => {
    assert.equal(keksIncompatibility(set(null), 'b', set(null)), undefined);
    assert.equal(keksIncompatibility(set('k1', 'k1', 'k2'), 'b', set('k2', 'k1', 'k2')), undefined, 'mid-rotation: a new key current on one only');
  });
  it('incompatible: one plain; a current key the other lacks, either way', () => {
    assert.match(
      keksIncompatibility(set(null), 'b', set('k1', 'k1'))!,
      /^replica 'b' encrypts recordings \(current KEK 'k1'\) and this one has no recording\.encryption$/,
    );
    assert.match(keksIncompatibility(set('k1', 'k1'), 'b', set(null))!, /^replica 'b' records plain/);
    assert.match(
      keksIncompatibility(set('k1', 'k1'), 'b', set('k2', 'k1', 'k2'))!,
      /^replica 'b' wraps new data keys under KEK 'k2', which this config lacks \(it has k1\)/,
    );
    assert.match(
      keksIncompatibility(set('k3', 'k1', 'k2', 'k3'), 'b', set('k2', 'k1', 'k2'))!,
      /^this config's current KEK 'k3' is not among replica 'b's KEKs \(k1, k2\)/,
    );
  });
});

describe('the gateway at start (SQLite)', () => {
  it('says once that recordings are plain when no KEK is configured, and not when one is', async () => {
    const plain = await startTestGateway({ connections: unused });
    try {
      assert.equal(plain.log.lines.filter((l) => l.msg === plainRecordingWarning).length, 1);
    } finally {
      await plain.stop();
    }
    const encrypted = await startTestGateway({
      connections: unused,
      recording: { encryption: { current: 'k1', keys: [{ id: 'k1', local: keyFile('plain-k1') }] } },
    });
    try {
      assert.equal(encrypted.log.lines.filter((l) => l.msg === plainRecordingWarning).length, 0);
      const said = encrypted.log.lines.find((l) => l.msg === 'recordings are encrypted at rest');
      assert.deepEqual(said?.current, 'k1');
      assert.deepEqual(said?.new, ['k1']);
    } finally {
      await encrypted.stop();
    }
  });

  it('warns of data keys under KEKs the config lacks, and starts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-lacks-'));
    try {
      const k1 = keyFile('lacks-k1');
      const first = await startTestGateway({ dataDir, connections: unused, recording: { encryption: { current: 'k1', keys: [{ id: 'k1', local: k1 }] } } });
      const store = first.gateway.recorder!.store;
      await store.insertDataKey({ owner: 'access:r1', kekId: 'k0', wrapped: 'lk1:AAAA', createdAtUs: 1, erasedAtUs: null, erasedBy: null, eraseReason: null });
      await first.stop();
      const second = await startTestGateway({ dataDir, connections: unused, recording: { encryption: { current: 'k1', keys: [{ id: 'k1', local: k1 }] } } });
      try {
        const warned = second.log.lines.find((l) => String(l.msg).startsWith('the store holds data keys under KEKs this config lacks'));
        assert.deepEqual(warned?.keks, { k0: 1 });
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('replicas on one PostgreSQL store: refused at start when their KEKs cannot read each other', () => {
  let shared: StoreReplicas;
  const k1 = keyFile('rep-k1');
  const k2 = keyFile('rep-k2');
  const encryption = (current: string, keys: Record<string, string>) => ({
    current,
    keys: Object.entries(keys).map(([id, local]) => ({ id, local })),
  });
  const replica = (instanceId: string, enc: Record<string, unknown> | undefined) => {
    const base = shared.base(instanceId) as { recording: Record<string, unknown> };
    return shared.replica({ ...base, recording: { ...base.recording, ...(enc ? { encryption: enc } : {}) }, connections: unused });
  };

  before(async () => {
    shared = await startStoreReplicas('keks', { alice: ['eng'] });
    await replica('a', encryption('k2', { k1, k2 }));
  });
  after(() => shared?.stop());

  it('a KEK under a known id but other key material', async () => {
    await assert.rejects(replica('b', encryption('k1', { k1: keyFile('rep-k1-other') })), /KEK 'k1' is not the key this store knows by that name/);
  });

  it('a replica that lacks the current KEK of a live one, or whose current KEK the live one lacks, or that records plain', async () => {
    await assert.rejects(
      replica('c', encryption('k1', { k1 })),
      /^ReplicaKeksError: this replica's recording\.encryption is incompatible with live replicas on this store: replica 'a' wraps new data keys under KEK 'k2', which this config lacks \(it has k1\): add it to recording\.encryption\.keys\. Change keys one step at a time on every replica/,
    );
    await assert.rejects(
      replica('d', encryption('k3', { k1, k2, k3: keyFile('rep-k3') })),
      /this config's current KEK 'k3' is not among replica 'a's KEKs \(k1, k2\), so it could not read what this one records: add 'k3' there as a non-current key first/,
    );
    await assert.rejects(replica('e', undefined), /replica 'a' encrypts recordings \(current KEK 'k2'\) and this one has no recording\.encryption/);
  });

  it("a replica whose current KEK is another, both in each other's sets, starts (a rolling change); a refused one left no live member", async () => {
    const ok = await replica('f', encryption('k1', { k1, k2 }));
    const members = await ok.gateway.recorder!.store.members();
    const byId = new Map(members.map((m) => [m.id, m]));
    assert.deepEqual(byId.get('f')?.keks, { current: 'k1', ids: ['k1', 'k2'] });
    assert.deepEqual(byId.get('a')?.keks, { current: 'k2', ids: ['k1', 'k2'] });
    for (const refused of ['c', 'd', 'e']) assert.equal(byId.get(refused)?.state, 'gone', `${refused} left the membership`);
  });
});
