import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CiphertextError } from '../../src/encryption/envelope.js';
import { ErasedError, KekUnavailableError, WrappedKeyError } from '../../src/encryption/kek.js';
import { Keyring } from '../../src/encryption/keyring.js';
import { readableStore } from '../../src/encryption/readable-store.js';
import { attestSessions } from '../../src/recording/attest.js';
import { exportSession } from '../../src/recording/export.js';
import { replaySession } from '../../src/recording/replay.js';
import { type SessionVerification, verifySession } from '../../src/recording/verify.js';
import type { Store } from '../../src/store/store.js';
import type { AccessRequestRow } from '../../src/store/access-types.js';
import type { ReviewRow } from '../../src/store/review-types.js';
import { encryptingStore, eraseWrittenSession, flipCiphertext, testKeyring, testSigner, writeRecordedSession } from '../helpers/encryption.js';
import { backends, storeSql, type TestStore } from '../helpers/stores.js';

/**
 * The read path of encrypted recordings (encryption/readable-store.ts) on both backends: plain text with the KEK, a
 * refusal that says what to do without it, erased sessions told apart, verify needing no key, and every kind of
 * tampering with the encryption (a wrapped key, a ciphertext, a ciphertext moved) detected with a clear message.
 */

const problemsOf = (r: SessionVerification) => r.problems.map((p) => `${p.seq ?? '-'}: ${p.message}`).join('\n');

/** A keyring with the same KEKs and an empty cache: a reader in another process, which must unwrap from the store. */
const coldCopy = (k: Keyring) => new Keyring(k.keks, k.current);

for (const backend of backends) {
  describe(`encrypted recordings, read path (${backend.name} store)`, () => {
    let ts: TestStore;
    let raw: Store;
    let tamper: (sql: string, ...params: unknown[]) => Promise<void>;
    const keyring = testKeyring(['k1']);
    const { key: signer, trusted } = testSigner();

    before(async () => {
      ts = backend.make();
      raw = await ts.open();
      tamper = storeSql(ts, backend.name);
    });
    after(async () => {
      await raw?.close();
      await ts?.destroy();
    });

    it('reads an encrypted session in plain text, with one data key query per page of events; the store holds none of it', async () => {
      const { session, plain } = await writeRecordedSession(raw, { keyring, signer });
      const stored = await raw.events(session.id, -1, 100);
      assert.ok(stored.every((e) => e.payload.startsWith('pcx1:') && !e.payload.includes('marker-secret-1')));
      let queries = 0;
      const counting: Store = {
        ...raw,
        dataKeys: (owners) => {
          queries++;
          return raw.dataKeys(owners);
        },
      };
      const readable = readableStore(counting, coldCopy(keyring));
      const pages = [];
      for (let after = -1; ; ) {
        const page = await readable.events(session.id, after, 2);
        pages.push(...page);
        if (page.length < 2) break;
        after = page.at(-1)!.seq;
      }
      assert.deepEqual(pages, plain);
      assert.equal(queries, Math.ceil(plain.length / 2), 'one query per page that holds sealed values');
      assert.deepEqual(await readable.lastEvent(session.id), plain.at(-1));
      assert.deepEqual(await readable.openingEvents([session.id]), [plain[0]]);
      const lines: string[] = [];
      for await (const line of exportSession(readable, session)) lines.push(line);
      assert.equal(lines.length, plain.length + 1);
      assert.match(lines.join('\n'), /marker-secret-1/);
      const replayed: string[] = [];
      await replaySession(readable, session.id, { speed: 1000, maxPauseMs: 0, follow: false, write: (l) => replayed.push(l), sleep: async () => {} });
      assert.match(replayed.join('\n'), /marker-secret-1/);
      const r = await verifySession(readable, session.id, trusted);
      assert.equal(r.status, 'verified', problemsOf(r));
      assert.ok(!r.notes.some((n) => /skipped/.test(n)), r.notes.join('\n'));
      assert.equal(r.exchanges?.total, 1);
    });

    it('passes plain (legacy) recordings through, without a data key query', async () => {
      const { session, plain } = await writeRecordedSession(raw, { signer });
      let queries = 0;
      const readable = readableStore(
        {
          ...raw,
          dataKeys: (owners) => {
            queries++;
            return raw.dataKeys(owners);
          },
        },
        keyring,
      );
      assert.deepEqual(await readable.events(session.id, -1, 100), plain);
      assert.equal(queries, 0);
      assert.equal((await verifySession(raw, session.id, trusted)).status, 'verified');
    });

    it('without the KEK: reading refuses, naming the KEK and the config key; listing shows the row; verify passes and says what it skipped', async () => {
      const { session } = await writeRecordedSession(raw, { keyring, signer });
      for (const reader of [readableStore(raw, undefined), readableStore(raw, testKeyring(['k2']))]) {
        await assert.rejects(
          reader.events(session.id, -1, 100),
          (err: unknown) =>
            err instanceof KekUnavailableError &&
            err.message.includes(
              `the recording of ${session.id} is encrypted under KEK 'k1', which this config does not have: add it to recording.encryption.keys`,
            ),
        );
        const [listed] = await attestSessions(reader, [session]);
        assert.equal(listed!.subject, 'alice');
        assert.deepEqual(listed!.tampered, [], 'an unreadable opening is not an altered row');
        assert.equal(listed!.owned, false, 'nobody can be shown to own it');
        assert.match(listed!.unreadable!, /KEK 'k1'/);
        assert.equal(listed!.erased, undefined);
      }
      const r = await verifySession(raw, session.id, trusted);
      assert.equal(r.status, 'verified', problemsOf(r));
      assert.ok(
        r.notes.some((n) => /encrypted under KEK 'k1', which this config does not have: the checks of the session row against them .* were skipped/.test(n)),
        r.notes.join('\n'),
      );
      assert.equal(r.exchanges, undefined, 'exchanges are not told without the payloads');
    });

    it('with the KEK, verify checks the row against the payloads: a changed negotiated column is caught', async () => {
      const { session } = await writeRecordedSession(raw, { keyring, signer });
      await tamper('UPDATE sessions SET client_info = ? WHERE id = ?', JSON.stringify({ name: 'forged', version: '9' }), session.id);
      const without = await verifySession(raw, session.id, trusted);
      assert.equal(without.status, 'verified', 'the row is only checked against payloads it can read');
      const r = await verifySession(readableStore(raw, coldCopy(keyring)), session.id, trusted);
      assert.equal(r.status, 'failed');
      assert.match(problemsOf(r), /the session row's clientInfo is \{"name":"forged","version":"9"\}, but the recording's negotiated event 1 says/);
    });

    it('erased: reading says erased, by whom, when and why; verify passes and reports it erased; listing marks it', async () => {
      const { session } = await writeRecordedSession(raw, { keyring, signer });
      const at = 1_796_000_000_000_000;
      await eraseWrittenSession(raw, session, { signer, by: 'root (https://idp.example.com)', reason: 'privacy request #7', erasedAtUs: at });
      for (const reader of [readableStore(raw, keyring), readableStore(raw, undefined)]) {
        await assert.rejects(
          reader.events(session.id, -1, 100),
          (err: unknown) =>
            err instanceof ErasedError &&
            err.message ===
              `the recording of ${session.id} was erased (crypto-shredded) at ${new Date(at / 1000).toISOString()} by root (https://idp.example.com): privacy request #7; its payloads can never be read`,
        );
        const r = await verifySession(reader, session.id, trusted);
        assert.equal(r.status, 'erased', problemsOf(r));
        assert.deepEqual(r.erased, { erasedAtUs: at, by: 'root (https://idp.example.com)', reason: 'privacy request #7' });
        assert.ok(r.notes.some((n) => /erased \(crypto-shredded\) .* by root .*: privacy request #7/.test(n)));
        const [listed] = await attestSessions(reader, [session]);
        assert.deepEqual(listed!.erased, r.erased);
      }
    });

    it('a forged erasure fails verify: a key row nulled outside Portcullis, or its who, when or why changed', async () => {
      const at = 1_796_000_000_000_000;
      const forged = (await writeRecordedSession(raw, { keyring, signer })).session;
      await raw.eraseDataKeys([forged.id], 'root (https://idp.example.com)', 'privacy request #7', at);
      for (const reader of [raw, readableStore(raw, coldCopy(keyring))]) {
        const r = await verifySession(reader, forged.id, trusted);
        assert.equal(r.status, 'failed');
        assert.equal(r.erased, undefined, 'an erasure the ledger does not back is not reported as one');
        assert.match(
          problemsOf(r),
          /its data key's row says it was erased at .* by root \(https:\/\/idp\.example\.com\) \(privacy request #7\), but no signed ledger entry records an erasure of this session: the key row was changed outside Portcullis/,
        );
      }
      // An entry appended with a correct hash, but signed by no trusted key (a store writer cannot sign).
      const stranger = testSigner().key;
      const unsigned = (await writeRecordedSession(raw, { keyring, signer })).session;
      await eraseWrittenSession(raw, unsigned, { signer: stranger, by: 'root (https://idp.example.com)', reason: 'privacy request #7', erasedAtUs: at });
      const u = await verifySession(raw, unsigned.id, trusted);
      assert.equal(u.status, 'failed');
      assert.match(problemsOf(u), /the ledger's erasure entry gw-enc-\S+ 2 is not signed by a trusted key: it was written outside Portcullis/);
      assert.match(problemsOf(u), /no signed ledger entry records an erasure of this session/);
      const renamed = (await writeRecordedSession(raw, { keyring, signer })).session;
      await eraseWrittenSession(raw, renamed, { signer, by: 'root (https://idp.example.com)', reason: 'privacy request #7', erasedAtUs: at });
      await tamper('UPDATE data_keys SET erased_by = ? WHERE owner = ?', 'mallory (https://idp.example.com)', renamed.id);
      const r = await verifySession(raw, renamed.id, trusted);
      assert.equal(r.status, 'failed');
      assert.match(
        problemsOf(r),
        /erased at .* by mallory \(https:\/\/idp\.example\.com\) \(privacy request #7\), but the ledger recorded the erasure at .* by root \(https:\/\/idp\.example\.com\) \(privacy request #7\): the key row was changed/,
      );
    });

    it('a data key still there after its signed erasure fails verify: cut short, or restored', async () => {
      const erasure = { signer, by: 'root (https://idp.example.com)', reason: 'privacy request #7', erasedAtUs: 1_796_000_000_000_000 };
      const restored = (await writeRecordedSession(raw, { keyring, signer })).session;
      const [row] = await raw.dataKeys([restored.id]);
      await eraseWrittenSession(raw, restored, erasure);
      await tamper('UPDATE data_keys SET wrapped = ?, erased_at_us = NULL, erased_by = NULL, erase_reason = NULL WHERE owner = ?', row!.wrapped, restored.id);
      const cutShort = (await writeRecordedSession(raw, { keyring, signer })).session;
      await eraseWrittenSession(raw, cutShort, { ...erasure, keyToo: false });
      for (const id of [restored.id, cutShort.id])
        for (const reader of [raw, readableStore(raw, coldCopy(keyring))]) {
          const r = await verifySession(reader, id, trusted);
          assert.equal(r.status, 'failed');
          assert.match(
            problemsOf(r),
            /the ledger records this session erased at .* by root .*, but its data key is still there: an erasure cut short before the key was destroyed .*, or a key restored after the erasure/,
          );
        }
    });

    it('a signed erasure still within its grace is under way, not cut short: a note, no problem', async () => {
      const underWay = (await writeRecordedSession(raw, { keyring, signer })).session;
      // Stamped ten minutes ahead: within the minute's grace whenever verify looks.
      const at = Date.now() * 1000 + 600_000_000;
      await eraseWrittenSession(raw, underWay, { signer, by: 'root (https://idp.example.com)', reason: 'privacy request #7', erasedAtUs: at, keyToo: false });
      const r = await verifySession(readableStore(raw, coldCopy(keyring)), underWay.id, trusted);
      assert.equal(r.status, 'verified', problemsOf(r));
      assert.ok(
        r.notes.some((n) => /^an erasure is under way: signed at .* by root .*, its data key not destroyed yet$/.test(n)),
        r.notes.join('; '),
      );
    });

    it('a running reader notices a wrapped key altered under its cache: verify fails as a cold one does', async () => {
      const { session } = await writeRecordedSession(raw, { keyring, signer });
      const warm = readableStore(raw, coldCopy(keyring));
      assert.equal((await verifySession(warm, session.id, trusted)).status, 'verified');
      const [row] = await raw.dataKeys([session.id]);
      const body = Buffer.from(row!.wrapped!.slice('lk1:'.length), 'base64');
      body[30] = body[30]! ^ 0x01;
      await tamper('UPDATE data_keys SET wrapped = ? WHERE owner = ?', `lk1:${body.toString('base64')}`, session.id);
      const r = await verifySession(warm, session.id, trusted);
      assert.equal(r.status, 'failed');
      assert.match(problemsOf(r), /does not unwrap under KEK 'k1'/);
    });

    it('an altered wrapped key is detected: reading and verify with the KEK say the data key does not unwrap', async () => {
      const { session } = await writeRecordedSession(raw, { keyring, signer });
      const [row] = await raw.dataKeys([session.id]);
      const body = Buffer.from(row!.wrapped!.slice('lk1:'.length), 'base64');
      body[20] = body[20]! ^ 0x01;
      await tamper('UPDATE data_keys SET wrapped = ? WHERE owner = ?', `lk1:${body.toString('base64')}`, session.id);
      const reader = readableStore(raw, coldCopy(keyring));
      await assert.rejects(
        reader.events(session.id, -1, 100),
        (err: unknown) =>
          err instanceof WrappedKeyError &&
          err.message.includes(
            `the data key of ${session.id} does not unwrap under KEK 'k1': the wrapped key was altered, or this KEK is not the key it was wrapped with`,
          ),
      );
      const r = await verifySession(reader, session.id, trusted);
      assert.equal(r.status, 'failed');
      assert.match(problemsOf(r), /does not unwrap under KEK 'k1'/);
      assert.equal((await verifySession(raw, session.id, trusted)).status, 'verified', 'without the KEK the chain alone is checked, and it is intact');
    });

    it('a deleted data key row is detected, with or without the KEK', async () => {
      const { session } = await writeRecordedSession(raw, { keyring, signer });
      await tamper('DELETE FROM data_keys WHERE owner = ?', session.id);
      await assert.rejects(
        readableStore(raw, coldCopy(keyring)).events(session.id, -1, 100),
        /has no data key for it \(table data_keys\): the row was deleted outside Portcullis/,
      );
      const r = await verifySession(raw, session.id, trusted);
      assert.equal(r.status, 'failed');
      assert.match(problemsOf(r), /has no data key for it/);
    });

    it('an altered ciphertext is detected: reading names the event; verify, with or without the KEK, breaks the chain there', async () => {
      const { session } = await writeRecordedSession(raw, { keyring, signer });
      const target = (await raw.events(session.id, -1, 100))[2]!;
      await tamper('UPDATE events SET payload = ? WHERE session_id = ? AND seq = ?', flipCiphertext(target.payload), session.id, 2);
      await assert.rejects(
        readableStore(raw, coldCopy(keyring)).events(session.id, -1, 100),
        (err: unknown) =>
          err instanceof CiphertextError &&
          err.message ===
            `session ${session.id} event 2's payload does not decrypt: it was altered, moved from elsewhere, or its data key is not the one it was sealed with`,
      );
      const without = await verifySession(raw, session.id, trusted);
      assert.equal(without.status, 'failed');
      assert.deepEqual(
        without.problems.map((p) => p.seq),
        [2],
        problemsOf(without),
      );
      assert.match(without.problems[0]!.message, /event 2 does not match its hash: its content, time or position was changed/);
      const withKek = await verifySession(readableStore(raw, coldCopy(keyring)), session.id, trusted);
      assert.equal(withKek.status, 'failed');
      assert.match(problemsOf(withKek), /2: event 2 does not match its hash/);
      assert.match(problemsOf(withKek), /event 2's payload does not decrypt/);
    });

    it('a ciphertext moved to another event (re-hashed to hide it) is detected by its place: it does not decrypt there', async () => {
      const { session } = await writeRecordedSession(raw, { keyring, signer });
      const events = await raw.events(session.id, -1, 100);
      // The forwarded text of event 2 put in event 3's place: same session, same key, but bound to event 2.
      await tamper('UPDATE events SET forwarded = ? WHERE session_id = ? AND seq = ?', events[2]!.forwarded, session.id, 3);
      await assert.rejects(
        readableStore(raw, coldCopy(keyring)).events(session.id, -1, 100),
        (err: unknown) => err instanceof CiphertextError && err.message.startsWith(`session ${session.id} event 3's forwarded does not decrypt`),
      );
      const r = await verifySession(raw, session.id, trusted);
      assert.equal(r.status, 'failed');
      assert.match(problemsOf(r), /3: event 3 does not match its hash/);
      // Another session's ciphertext, under its own key, does not open here either.
      const other = await writeRecordedSession(raw, { keyring, signer });
      const theirs = (await raw.events(other.session.id, -1, 100))[2]!;
      await tamper('UPDATE events SET payload = ? WHERE session_id = ? AND seq = ?', theirs.payload, session.id, 2);
      await assert.rejects(readableStore(raw, coldCopy(keyring)).events(session.id, 1, 1), /event 2's payload does not decrypt/);
    });

    it("reviews' params and access requests' reasons read plain with the KEK, and say why without it, still listed", async () => {
      const writer = encryptingStore(raw, keyring);
      const review: ReviewRow = {
        id: `rv-enc-${backend.name}`,
        status: 'pending',
        rule: 'prod-writes',
        connection: 'prod',
        sessionId: 's-enc-held',
        instanceId: 'gw-a',
        method: 'tools/call',
        target: 'drop_table',
        virtualServer: null,
        virtualTarget: null,
        params: '{"name":"drop_table","arguments":{"table":"marker-secret-2"}}',
        digest: 'd'.repeat(64),
        requesterSubject: 'bob',
        requesterIssuer: 'https://idp.example.com',
        requesterEmail: null,
        approverGroups: ['sre'],
        minApprovals: 1,
        approvals: [],
        createdAtUs: 1,
        expiresAtUs: 9_000_000_000_000_000,
        decidedAtUs: null,
        deciderSubject: null,
        deciderIssuer: null,
        deciderEmail: null,
        decisionNote: null,
      };
      const request: AccessRequestRow = {
        id: `ar-enc-${backend.name}`,
        connection: 'prod',
        requesterSubject: 'bob',
        requesterIssuer: 'https://idp.example.com',
        requesterEmail: null,
        reason: 'incident marker-secret-3',
        durationMs: 3_600_000,
        status: 'pending',
        createdAtUs: 1,
        decidedAtUs: null,
        deciderSubject: null,
        deciderIssuer: null,
        decisionNote: null,
        expiresAtUs: 9_000_000_000_000_000,
      };
      await writer.insertReview(review);
      assert.equal(await writer.insertAccessRequest(request), true);
      assert.ok(!(await raw.getReview(review.id))!.params.includes('marker-secret-2'));
      assert.ok(!(await raw.getAccessRequest(request.id))!.reason.includes('marker-secret-3'));
      const reader = readableStore(raw, coldCopy(keyring));
      assert.deepEqual(await reader.getReview(review.id), review);
      assert.deepEqual(await reader.getAccessRequest(request.id), request);
      const blind = readableStore(raw, undefined);
      const listed = (await blind.listReviews({ limit: 100 })).find((r) => r.id === review.id)!;
      assert.equal(listed.rule, 'prod-writes');
      assert.match(JSON.parse(listed.params).unreadable, /encrypted under KEK 'k1', which this config does not have/);
      const asked = (await blind.listAccessRequests({ limit: 100 })).find((r) => r.id === request.id)!;
      assert.match(asked.reason, /^\(unreadable: the recording of access:ar-enc-\S+ is encrypted under KEK 'k1'/);
    });

    it('the audit stream reads payloads plain, and an unreadable one as why', async () => {
      const { session, plain } = await writeRecordedSession(raw, { keyring, signer });
      const shipped = await readableStore(raw, coldCopy(keyring)).auditEvents([{ sessionId: session.id, seq: -1 }], 100);
      assert.deepEqual(
        shipped.map((e) => e.payload),
        plain.map((e) => e.payload),
      );
      const blind = await readableStore(raw, undefined).auditEvents([{ sessionId: session.id, seq: -1 }], 100);
      assert.equal(blind.length, plain.length);
      assert.match(JSON.parse(blind[0]!.payload).unreadable, /KEK 'k1'/);
    });
  });
}
