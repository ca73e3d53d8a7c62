import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accessRequestOwner, eventAad, openText } from '../../src/encryption/envelope.js';
import { ErasedError } from '../../src/encryption/kek.js';
import { encryptStore } from '../../src/recording/encrypt-store.js';
import { eraseRecordings, NotEncryptedError } from '../../src/recording/erasure.js';
import { nowUs } from '../../src/recording/time.js';
import { verifyLedger, verifySession } from '../../src/recording/verify.js';
import { emptyBatch, openSessionRow } from '../../src/store/types.js';
import { testKeyring, testSigner } from '../helpers/encryption.js';
import { allEvents } from '../helpers/recorded.js';
import { accessRequest, marker, record, recorded, sealableSuite } from '../helpers/sealable-records.js';
import { backends } from '../helpers/stores.js';

/**
 * Crypto-shredding, on both backends: erasing a subject, an erasure cut short and finished by the sweep, retention in
 * erase mode. Sessions are recorded by the real recorder; those it wrote plain are encrypted by `store encrypt`'s
 * library (encryptStore, tested in encrypt-store.test.ts), and once it encrypts as it writes, that finds nothing to do.
 */

for (const backend of backends) {
  describe(`erasure (${backend.name})`, () => {
    const suite = sealableSuite(backend);
    const { signing, trusted, n, start } = suite;

    it("erasing a subject shreds their sessions and access requests: unreadable, still verified, in the ledger; others' untouched", async () => {
      const { store } = suite;
      const ring = testKeyring();
      const recorder = await start(`gw-erase-${n}`, { keyring: ring });
      const bobSecret = marker('bob');
      await recorded(recorder, `alice-1-${n}`, 'alice', marker('alice1'));
      await recorded(recorder, `alice-2-${n}`, 'alice', marker('alice2'));
      await recorded(recorder, `bob-1-${n}`, 'bob', bobSecret);
      await store.insertAccessRequest(accessRequest(`ar-alice-${n}`, 'alice', 'to read the orders table'));
      await encryptStore({ store, keyring: ring, key: signing, trusted });
      const plainLater = `alice-plain-${n}`;
      // Recorded plain (as before encryption was configured, or by a gateway without it): nothing to shred.
      const plainGateway = await start(`gw-plain-${n}`);
      await recorded(plainGateway, plainLater, 'alice', 'plain');
      await plainGateway.close();
      const stillOpen = record(recorder, `alice-open-${n}`, 'alice', 'live');
      await stillOpen.barrier();
      const ciphertextBefore = await allEvents(store, `alice-1-${n}`);

      const outcome = await eraseRecordings(recorder, { subject: 'alice' }, 'admin (https://idp.test)', 'privacy request 7');
      assert.deepEqual(outcome.erased.map((e) => e.session).sort(), [`alice-1-${n}`, `alice-2-${n}`]);
      assert.deepEqual(outcome.accessRequests, [`ar-alice-${n}`]);
      const why = new Map(outcome.notErased.map((x) => [x.session, x.why]));
      assert.match(why.get(plainLater)!, /recorded plain/);
      assert.match(why.get(`alice-open-${n}`)!, /still open/);

      for (const id of [`alice-1-${n}`, `alice-2-${n}`]) {
        const [k] = await store.dataKeys([id]);
        assert.equal(k!.wrapped, null, 'the data key is gone');
        assert.deepEqual([k!.erasedBy, k!.eraseReason], ['admin (https://idp.test)', 'privacy request 7']);
        await assert.rejects(ring.dataKey(k!), ErasedError, 'nothing can unwrap it, not even the keyring that had it cached');
        const v = await verifySession(store, id, trusted);
        assert.equal(v.status, 'erased', JSON.stringify(v.problems));
        assert.ok(
          v.notes.some((note) => /erased \(crypto-shredded\) at .* by admin \(https:\/\/idp.test\): privacy request 7/.test(note)),
          v.notes.join('; '),
        );
      }
      assert.deepEqual(await allEvents(store, `alice-1-${n}`), ciphertextBefore, 'the ciphertext stays, as it was');
      const [arKey] = await store.dataKeys([accessRequestOwner(`ar-alice-${n}`)]);
      assert.equal(arKey!.wrapped, null);

      const [bobKey] = await store.dataKeys([`bob-1-${n}`]);
      assert.notEqual(bobKey!.wrapped, null, "bob's key is untouched");
      const bobEvents = await allEvents(store, `bob-1-${n}`);
      const bobKeyBytes = await ring.dataKey(bobKey!);
      assert.ok(bobEvents.some((e) => openText(bobKeyBytes, eventAad(e.sessionId, e.seq, 'payload'), e.payload, 'payload').includes(bobSecret)));
      assert.equal((await verifySession(store, `bob-1-${n}`, trusted)).status, 'verified');

      const erasedRows = (await store.ledger(`gw-erase-${n}`, -1, 1000)).filter((l) => l.kind === 'erased');
      assert.deepEqual(erasedRows.map((l) => l.sessionId).sort(), [`alice-1-${n}`, `alice-2-${n}`, `ar-alice-${n}`].sort());
      const d = JSON.parse(erasedRows[0]!.detail) as Record<string, unknown>;
      assert.deepEqual(Object.keys(d).sort(), ['by', 'connection', 'erasedAtUs', 'keyId', 'reason', 'signature', 'subject']);
      assert.equal(d.keyId, signing.keyId, 'signed by the gateway that erased');
      assert.equal(d.subject, 'alice');
      assert.deepEqual((await verifyLedger(store, `gw-erase-${n}`)).problems, []);

      const twice = await eraseRecordings(recorder, { sessions: [`alice-1-${n}`, 'no-such-session'] }, 'admin (https://idp.test)', 'again');
      assert.deepEqual(twice.erased, []);
      assert.match(twice.notErased.find((x) => x.session === `alice-1-${n}`)!.why, /erased before, at .* by admin/);
      assert.match(twice.notErased.find((x) => x.session === 'no-such-session')!.why, /no such session/);
      assert.equal((await store.ledger(`gw-erase-${n}`, -1, 1000)).filter((l) => l.kind === 'erased').length, 3, 'no second entry');

      await stillOpen.close('done');
      await recorder.close();
    });

    it('an erasure cut short after its signed entries is finished by the next sweep; a key row nulled without one is not laundered', async () => {
      const { store } = suite;
      const ring = testKeyring();
      const erasing = await start(`gw-halfway-${n}`, { keyring: ring });
      await recorded(erasing, `halfway-${n}`, 'frank', marker('frank'));
      await recorded(erasing, `recent-${n}`, 'frank', marker('frank2'));
      await recorded(erasing, `forged-${n}`, 'frank', marker('frank3'));
      await recorded(erasing, `stranger-${n}`, 'frank', marker('frank4'));
      await store.insertAccessRequest(accessRequest(`ar-halfway-${n}`, 'frank', 'to read the ledger'));
      const arOwner = accessRequestOwner(`ar-halfway-${n}`);
      await store.insertDataKey({ owner: arOwner, kekId: 'k1', wrapped: 'lk1:AAAA', createdAtUs: 1, erasedAtUs: null, erasedBy: null, eraseReason: null });
      // As eraseRecordings does, stopped after its first write: the signed entries, no key destroyed.
      const longAgo = nowUs() - 3_600_000_000;
      const facts = { by: 'admin (https://idp.test)', reason: 'privacy request 9', erasedAtUs: longAgo, subject: 'frank', connection: 'db' };
      await erasing.recordErasure(`halfway-${n}`, facts);
      await erasing.recordErasure(`ar-halfway-${n}`, facts);
      // Stamped ten minutes ahead: certainly within the minute's grace when the sweep looks, however slow the machine.
      await erasing.recordErasure(`recent-${n}`, { ...facts, erasedAtUs: nowUs() + 600_000_000 });
      await erasing.close();
      // A key row nulled with SQL, naming an admin: no signed entry vouches for it.
      await store.eraseDataKeys([`forged-${n}`], 'admin (https://idp.test)', 'privacy request 9', longAgo);
      // An entry signed by a key this gateway does not trust (another store writer's gateway, say).
      const signedElsewhere = await start(`gw-stranger-${n}`, { key: testSigner().key });
      await signedElsewhere.recordErasure(`stranger-${n}`, facts);
      await signedElsewhere.close();
      const problems = async (id: string) => (await verifySession(store, id, trusted)).problems.map((p) => p.message).join('\n');
      assert.match(await problems(`halfway-${n}`), /erased at .* by admin .*, but its data key is still there: an erasure cut short/);

      // The gateway starts again: its first sweep looks back 30 days.
      const recorder = await start(`gw-halfway-${n}`, { keyring: ring });
      await recorder.sweep();
      const after = await verifySession(store, `halfway-${n}`, trusted);
      assert.equal(after.status, 'erased', JSON.stringify(after.problems));
      assert.deepEqual(after.erased, { erasedAtUs: longAgo, by: 'admin (https://idp.test)', reason: 'privacy request 9' });
      const [arKey] = await store.dataKeys([arOwner]);
      assert.deepEqual([arKey!.wrapped, arKey!.erasedBy, arKey!.erasedAtUs], [null, 'admin (https://idp.test)', longAgo], "the access request's key too");
      const [recentKey] = await store.dataKeys([`recent-${n}`]);
      assert.notEqual(recentKey!.wrapped, null, 'an erasure of the last minute may still be destroying its keys: left to its gateway');
      const [strangerKey] = await store.dataKeys([`stranger-${n}`]);
      assert.notEqual(strangerKey!.wrapped, null, 'an entry no trusted key signed destroys nothing');
      assert.match(await problems(`forged-${n}`), /no signed ledger entry records an erasure of this session: the key row was changed outside Portcullis/);
      assert.equal((await store.ledgerFor(`forged-${n}`)).filter((l) => l.kind === 'erased').length, 0, 'the sweeper writes no entry for it');
      await recorder.close();
    });

    it('a session left open whose data key does not open here stays open, said so, and the others are still recovered', async () => {
      const { store } = suite;
      const instanceId = `gw-unopenable-${n}`;
      const opening = (id: string) => ({
        sessionId: id,
        seq: 0,
        timeUs: 1,
        monoUs: 0,
        kind: 'open' as const,
        direction: null,
        boundary: null,
        payload: '{}',
        forwarded: null,
        hash: 'a'.repeat(64),
      });
      await store.write({
        ...emptyBatch(),
        // Under a KEK this gateway does not have (certainly not k1: another id), and one recorded plain.
        dataKeys: [{ owner: `stuck-${n}`, kekId: 'k-elsewhere', wrapped: 'lk1:AAAA', createdAtUs: 1, erasedAtUs: null, erasedBy: null, eraseReason: null }],
        // The stuck one opened first: recovery takes them in that order, so it is met before the other.
        sessionsOpened: [`stuck-${n}`, `plain-open-${n}`].map((id, i) =>
          openSessionRow({ id, instanceId, connection: 'c', subject: 'erin', openedAtUs: 1 + i }),
        ),
        events: [opening(`stuck-${n}`), opening(`plain-open-${n}`)],
      });
      const recorder = await start(instanceId, { keyring: testKeyring() });
      await recorder.sweep();
      assert.equal((await store.getSession(`plain-open-${n}`))?.status, 'cut-off', 'the other session is recovered');
      assert.equal((await store.getSession(`stuck-${n}`))?.status, 'open', 'left open: it cannot be sealed under its own key here');
      await recorder.close();
    });

    it('a gateway whose recordings are plain refuses to erase: there is no key to shred', async () => {
      const recorder = await start(`gw-nokeys-${n}`);
      await assert.rejects(eraseRecordings(recorder, { subject: 'alice' }, 'admin', 'why'), NotEncryptedError);
      await recorder.close();
    });

    it('retention in erase mode shreds expired encrypted sessions, keeps their rows, and deletes those recorded plain', async () => {
      const { store } = suite;
      const ring = testKeyring();
      // 1 ms: whatever has closed is expired (the seal covers the closing time, so it cannot be moved back instead).
      const recorder = await start(`gw-ret-${n}`, { keyring: ring, retentionMs: 1, retentionAction: 'erase' });
      await recorded(recorder, `old-enc-${n}`, 'erin', 'old');
      await encryptStore({ store, keyring: ring, key: signing, trusted });
      // Recorded by a gateway without encryption: plain, with no key to shred.
      const plainGateway = await start(`gw-ret-plain-${n}`);
      await recorded(plainGateway, `old-plain-${n}`, 'erin', 'old plain');
      await plainGateway.close();
      const live = record(recorder, `live-${n}`, 'erin', 'live');
      await live.barrier();
      const closedAt = (await store.getSession(`old-plain-${n}`))!.closedAtUs!;
      while (nowUs() <= closedAt + 1000) await new Promise((r) => setTimeout(r, 2));

      const destroyed: string[] = [];
      recorder.onKeysDestroyed((owner) => destroyed.push(owner));
      await recorder.sweep();
      assert.deepEqual(destroyed, [`old-enc-${n}`], 'the other replicas are told (the change bus listens here), the plain one has no key');
      const kept = await store.getSession(`old-enc-${n}`);
      assert.ok(kept, 'an encrypted session is erased, not deleted');
      const [k] = await store.dataKeys([`old-enc-${n}`]);
      assert.equal(k!.wrapped, null);
      assert.equal(k!.erasedBy, 'retention');
      assert.match(k!.eraseReason!, /retention: closed more than 1 ms ago/);
      assert.ok((await allEvents(store, `old-enc-${n}`)).length > 0, 'its rows stay');
      const v = await verifySession(store, `old-enc-${n}`, trusted);
      assert.equal(v.status, 'erased', JSON.stringify(v.problems));
      assert.ok(v.notes.some((note) => /erased \(crypto-shredded\) .* by retention/.test(note)));
      assert.equal(await store.getSession(`old-plain-${n}`), undefined, 'a plain one has no key to shred: deleted');
      assert.equal((await verifySession(store, `old-plain-${n}`, trusted)).status, 'deleted');
      assert.equal((await store.getSession(`live-${n}`))?.status, 'open', 'an open session is neither erased nor deleted');

      // (The store holds the earlier tests' sessions too: retention of 1 ms takes them all, which is no matter here.)
      const erasedIds = async () => (await store.ledger(`gw-ret-${n}`, -1, 1000)).filter((l) => l.kind === 'erased').map((l) => l.sessionId);
      const first = await erasedIds();
      assert.equal(first.filter((id) => id === `old-enc-${n}`).length, 1);
      await recorder.sweep();
      assert.deepEqual(await erasedIds(), first, 'an erased session is not picked again');
      assert.deepEqual((await verifyLedger(store, `gw-ret-${n}`)).problems, []);
      await live.close('done');
      await recorder.close();
    });
  });
}
