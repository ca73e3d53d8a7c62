import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { trustedKeys, verifyLedger, verifySession, type SessionVerification } from '../../src/recording/verify.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { backends, storeSql, type TestStore } from '../helpers/stores.js';

/**
 * Tamper evidence: each way of altering a recording after the fact makes verify fail, at the right event,
 * with the right explanation; an untouched recording verifies.
 */

function problemsOf(r: SessionVerification): string {
  return r.problems.map((p) => `${p.seq ?? '-'}: ${p.message}`).join('\n');
}

for (const backend of backends) {
  describe(`tampering is detected (${backend.name} store)`, () => {
    let ts: TestStore;
    let store: Store;
    let trusted: Map<string, string>;
    let instanceId: string;
    let tamper: (sql: string, ...params: unknown[]) => Promise<void>;
    const sessions: string[] = [];

    before(async () => {
      ts = backend.make();
      const gw = await startTestGateway({ store: ts.url, connections: { everything: { stdio: everythingStdio() } } });
      const url = gw.mcp('everything');
      for (let i = 0; i < 9; i++) {
        const id = await rawInitialize(url, gw.auth);
        const headers = { ...mcpHeaders, ...gw.auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
        for (const [n, method] of ['ping', 'tools/list', 'ping'].entries()) {
          await (await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: n + 1, method }) })).text();
        }
        await fetch(url, { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': id } });
        sessions.push(id);
      }
      const key = gw.gateway.recorder!.key;
      instanceId = gw.gateway.recorder!.instanceId;
      trusted = await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]);
      await gw.stop();
      store = await openStore(ts.url, { reader: true });
      tamper = storeSql(ts, backend.name);
    });

    after(async () => {
      await store?.close();
      await ts?.destroy();
    });

    const verify = (id: string) => verifySession(store, id, trusted);

    it('an untouched recording verifies, and so does the ledger', async () => {
      const r = await verify(sessions[0]!);
      assert.equal(r.status, 'verified', problemsOf(r));
      assert.ok(r.events >= 12, `events: ${r.events}`);
      assert.deepEqual((await verifyLedger(store, instanceId)).problems, []);
    });

    it('flipping one byte of a payload: that event does not match its hash', async () => {
      const id = sessions[1]!;
      const target = (await store.events(id, -1, 100)).find((e) => e.seq === 5)!;
      const flipped = target.payload.replace(/"jsonrpc"/, '"jsonrpC"');
      assert.notEqual(flipped, target.payload);
      await tamper('UPDATE events SET payload = ? WHERE session_id = ? AND seq = ?', flipped, id, 5);
      const r = await verify(id);
      assert.equal(r.status, 'failed');
      assert.deepEqual(
        r.problems.map((p) => p.seq),
        [5],
        problemsOf(r),
      );
      assert.match(r.problems[0]!.message, /event 5 does not match its hash: its content, time or position was changed/);
    });

    it('deleting an event: the gap is named', async () => {
      const id = sessions[2]!;
      await tamper('DELETE FROM events WHERE session_id = ? AND seq = ?', id, 4);
      const r = await verify(id);
      assert.equal(r.status, 'failed');
      assert.equal(r.problems[0]!.seq, 4);
      assert.match(r.problems[0]!.message, /event 4 is missing \(deleted\): the recording goes from 3 to 5/);
    });

    it('reordering two events: both positions break', async () => {
      const id = sessions[3]!;
      await tamper('UPDATE events SET seq = -1 WHERE session_id = ? AND seq = ?', id, 3);
      await tamper('UPDATE events SET seq = 3 WHERE session_id = ? AND seq = ?', id, 6);
      await tamper('UPDATE events SET seq = 6 WHERE session_id = ? AND seq = -1', id);
      const r = await verify(id);
      assert.equal(r.status, 'failed');
      assert.deepEqual(
        r.problems.map((p) => p.seq),
        [3, 6],
        problemsOf(r),
      );
      for (const p of r.problems) assert.match(p.message, /does not match its hash: .*swapped/);
    });

    it('truncating the tail: the seal covers more events than remain', async () => {
      const id = sessions[4]!;
      const total = (await store.events(id, -1, 100)).length;
      await tamper('DELETE FROM events WHERE session_id = ? AND seq >= ?', id, total - 3);
      const r = await verify(id);
      assert.equal(r.status, 'failed');
      assert.ok(
        r.problems.some((p) =>
          new RegExp(`ends at event ${total - 4}, but the seal covers ${total} events: 3 were removed from the end \\(truncated\\)`).test(p.message),
        ),
        problemsOf(r),
      );
    });

    it('truncating and rewriting the seal fields to match: the signature fails', async () => {
      const id = sessions[5]!;
      const events = await store.events(id, -1, 100);
      const keep = events.length - 2;
      await tamper('DELETE FROM events WHERE session_id = ? AND seq >= ?', id, keep);
      await tamper('UPDATE sessions SET event_count = ?, last_hash = ? WHERE id = ?', keep, events[keep - 1]!.hash, id);
      const r = await verify(id);
      assert.equal(r.status, 'failed');
      assert.ok(
        r.problems.some((p) => /signature is not valid/.test(p.message)),
        problemsOf(r),
      );
      assert.ok(
        r.problems.some((p) => /differs from the one the ledger recorded/.test(p.message)),
        problemsOf(r),
      );
    });

    it('replacing the seal (with another session’s valid seal): the signature fails', async () => {
      const id = sessions[6]!;
      const other = (await store.getSession(sessions[0]!))!;
      await tamper('UPDATE sessions SET seal = ? WHERE id = ?', other.seal, id);
      const r = await verify(id);
      assert.equal(r.status, 'failed');
      assert.match(problemsOf(r), /the seal's signature is not valid for key [0-9a-f]{16}: the seal was replaced/);
    });

    it('a seal by a key that is not trusted fails, naming the key and the fix', async () => {
      const r = await verifySession(store, sessions[7]!, new Map());
      assert.equal(r.status, 'failed');
      assert.match(problemsOf(r), /sealed with key [0-9a-f]{16}, which is not trusted here: add its public key to recording\.trustedKeys/);
    });

    it('deleting a whole session outside Portcullis: the ledger notices', async () => {
      const id = sessions[8]!;
      await tamper('DELETE FROM events WHERE session_id = ?', id);
      await tamper('DELETE FROM sessions WHERE id = ?', id);
      const r = await verify(id);
      assert.equal(r.status, 'failed');
      assert.match(problemsOf(r), /in the ledger but its recording is gone, with no tombstone/);
      const ledger = await verifyLedger(store, instanceId);
      assert.ok(ledger.problems.some((p) => p.message.includes(id) && /without a tombstone/.test(p.message)));
    });
  });
}
