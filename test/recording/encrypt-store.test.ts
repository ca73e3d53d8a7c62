import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accessReasonAad, accessRequestOwner, eventAad, isSealed, openText, reviewParamsAad } from '../../src/encryption/envelope.js';
import { encryptLedgerInstance, encryptStore } from '../../src/recording/encrypt-store.js';
import { verifyLedger, verifySession } from '../../src/recording/verify.js';
import { testKeyring } from '../helpers/encryption.js';
import { allEvents } from '../helpers/recorded.js';
import { accessRequest, marker, record, recorded, review, sealableSuite } from '../helpers/sealable-records.js';
import { backends, storeSql } from '../helpers/stores.js';

/**
 * The migration of plain recordings, on both backends: sessions recorded plain by the real recorder are encrypted in
 * place by `store encrypt`'s library (encryptStore), with their reviews' params and access requests' reasons, and
 * verify still passes; a plain session that does not verify is refused (erasure.test.ts shreds what this seals).
 */

for (const backend of backends) {
  describe(`store encrypt (${backend.name})`, () => {
    const suite = sealableSuite(backend);
    const { signing, trusted, n, start } = suite;

    it('store encrypt seals every payload of plain sealed sessions in place; verify passes; a second run does nothing', async () => {
      const { store } = suite;
      const ring = testKeyring();
      const recorder = await start(`gw-enc-${n}`);
      const secret = marker('enc');
      await recorded(recorder, `enc-1-${n}`, 'carol', secret);
      const open = record(recorder, `enc-open-${n}`, 'carol', marker('open'));
      await open.barrier();
      const params = JSON.stringify({ name: 'query', arguments: { q: secret } });
      await store.insertReview(review(`rv-enc-${n}`, `enc-1-${n}`, params));
      const reason = marker('reason');
      await store.insertAccessRequest(accessRequest(`ar-enc-${n}`, 'carol', reason));
      const before = await allEvents(store, `enc-1-${n}`);
      assert.ok(
        before.some((e) => e.payload.includes(secret)),
        'recorded plain first',
      );

      const report = await encryptStore({ store, keyring: ring, key: signing, trusted });
      assert.ok(report.sessions.includes(`enc-1-${n}`));
      assert.ok(report.open.includes(`enc-open-${n}`), 'an open session is left and reported');
      assert.ok(!report.sessions.includes(`enc-open-${n}`));
      assert.equal(report.refused.length, 0, JSON.stringify(report.refused));

      const after = await allEvents(store, `enc-1-${n}`);
      assert.equal(after.length, before.length);
      for (const e of after) {
        assert.ok(isSealed(e.payload), `event ${e.seq}'s payload is sealed`);
        assert.ok(!e.payload.includes(secret) && !(e.forwarded ?? '').includes(secret));
        if (e.forwarded !== null) assert.ok(isSealed(e.forwarded));
      }
      // What was sealed opens again, under the session's data key, to exactly what was recorded.
      const [keyRow] = await store.dataKeys([`enc-1-${n}`]);
      const dataKey = await ring.dataKey(keyRow!);
      after.forEach((e, i) => {
        assert.equal(openText(dataKey, eventAad(e.sessionId, e.seq, 'payload'), e.payload, 'payload'), before[i]!.payload);
        if (e.forwarded !== null) assert.equal(openText(dataKey, eventAad(e.sessionId, e.seq, 'forwarded'), e.forwarded, 'forwarded'), before[i]!.forwarded);
      });
      const rv = (await store.reviewParamsOf(`enc-1-${n}`))[0]!;
      assert.ok(isSealed(rv.params) && !rv.params.includes(secret));
      assert.equal(openText(dataKey, reviewParamsAad(rv.id), rv.params, 'params'), params);
      const ar = (await store.getAccessRequest(`ar-enc-${n}`))!;
      assert.ok(isSealed(ar.reason) && !ar.reason.includes(reason));
      const [arKey] = await store.dataKeys([accessRequestOwner(ar.id)]);
      assert.equal(openText(await ring.dataKey(arKey!), accessReasonAad(ar.id), ar.reason, 'reason'), reason);

      const v = await verifySession(store, `enc-1-${n}`, trusted);
      assert.equal(v.status, 'verified', JSON.stringify(v.problems));
      assert.ok(
        v.notes.some((note) => /encrypted in place .* \(store encrypt\)/.test(note)),
        v.notes.join('; '),
      );
      assert.deepEqual((await verifyLedger(store, encryptLedgerInstance())).problems, []);
      assert.deepEqual((await verifyLedger(store, `gw-enc-${n}`)).problems, []);
      const entry = (await store.ledgerFor(`enc-1-${n}`)).find((l) => l.kind === 'encrypted')!;
      const detail = JSON.parse(entry.detail) as { from: { lastHash: string }; to: { lastHash: string } };
      assert.equal(detail.from.lastHash, before.at(-1)!.hash);
      assert.equal(detail.to.lastHash, after.at(-1)!.hash);

      const again = await encryptStore({ store, keyring: ring, key: signing, trusted });
      assert.deepEqual([again.sessions, again.accessRequests, again.refused], [[], 0, []], 'resumed: nothing left to do');
      assert.deepEqual(await allEvents(store, `enc-1-${n}`), after, 'untouched by the second run');

      await open.close('done');
      await recorder.close();
    });

    it('store encrypt refuses a plain session that does not verify: hashing it again would launder the tampering', async () => {
      const { ts, store } = suite;
      const recorder = await start(`gw-tamper-${n}`);
      await recorded(recorder, `tampered-${n}`, 'dave', 'original');
      await recorder.close();
      await storeSql(ts, n)(`UPDATE events SET payload = ? WHERE session_id = ? AND seq = 1`, '{"changed":true}', `tampered-${n}`);
      const report = await encryptStore({ store, keyring: testKeyring(), key: signing, trusted });
      assert.ok(
        report.refused.some((r) => r.session === `tampered-${n}` && /does not match its hash/.test(r.why)),
        JSON.stringify(report.refused),
      );
      assert.equal((await store.dataKeys([`tampered-${n}`])).length, 0);
      assert.equal((await verifySession(store, `tampered-${n}`, trusted)).status, 'failed', 'still seen as tampered');
    });
  });
}
