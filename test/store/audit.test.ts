import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ledgerCursorKey } from '../../src/store/audit.js';
import type { Store } from '../../src/store/store.js';
import { emptyBatch, type EventRow, openSessionRow, type SealFields } from '../../src/store/types.js';
import { backends, type TestStore } from '../helpers/stores.js';

/** The audit streams' cursors (migration 11), on both backends: what the shipper reads and writes (src/audit/shipper.ts). */

const t0 = 1_790_000_000_000_000;

function event(sessionId: string, seq: number): EventRow {
  return {
    sessionId,
    seq,
    timeUs: t0 + seq,
    monoUs: seq,
    kind: seq === 0 ? 'open' : 'message',
    direction: seq === 0 ? null : 'toServer',
    boundary: seq === 0 ? null : 'received',
    payload: '{}',
    forwarded: null,
    hash: `${seq}`.padStart(64, 'a'),
  };
}

const sealed = (eventCount: number): SealFields => ({
  status: 'closed',
  closedAtUs: t0 + 10_000_000,
  closeReason: 'client closed',
  eventCount,
  lastHash: 'f'.repeat(64),
  seal: 'sig',
  sealKeyId: 'k',
  denials: 0,
  redactions: 0,
});

for (const backend of backends) {
  describe(`store contract, audit cursors: ${backend.name}`, () => {
    let ts: TestStore;
    let store: Store;

    before(async () => {
      ts = backend.make();
      store = await ts.open();
      // Three sessions: two of replica a (one sealed after 3 events, one open with 2), one of replica b (open, 1 event).
      const sessions = [
        openSessionRow({ id: 'a-sealed', instanceId: 'gw-a', connection: 'c', subject: 'alice', openedAtUs: t0 + 1000 }),
        openSessionRow({ id: 'a-open', instanceId: 'gw-a', connection: 'c', subject: 'alice', openedAtUs: t0 + 2000 }),
        openSessionRow({ id: 'b-open', instanceId: 'gw-b', connection: 'c', subject: 'bob', openedAtUs: t0 + 3000 }),
      ];
      await store.write({
        ...emptyBatch(),
        sessionsOpened: sessions,
        events: [event('a-sealed', 0), event('a-sealed', 1), event('a-sealed', 2), event('a-open', 0), event('a-open', 1), event('b-open', 0)],
        sealed: [{ id: 'a-sealed', ...sealed(3) }],
      });
    });
    after(async () => {
      await store?.close();
      await ts?.destroy();
    });

    const pending = async (q: Partial<Parameters<Store['auditPending']>[1]> = {}) =>
      (await store.auditPending('siem', { fromUs: t0, exceptInstances: [], limit: 100, ...q })).map((p) => [p.sessionId, p.cursor, p.lastSeq, p.sealed]);

    it('makes a sink row once, with both times at the first start; a second start keeps them', async () => {
      assert.deepEqual(await store.auditSink('siem', t0), { name: 'siem', sinceUs: t0, watermarkUs: t0 });
      assert.deepEqual(await store.auditSink('siem', t0 + 99), { name: 'siem', sinceUs: t0, watermarkUs: t0 });
    });

    it('lists the sessions with events not taken, oldest first, leaving out the instances given, the sessions before the start, or all but those named', async () => {
      assert.deepEqual(await pending(), [
        ['a-sealed', -1, 2, true],
        ['a-open', -1, 1, false],
        ['b-open', -1, 0, false],
      ]);
      assert.deepEqual(await pending({ exceptInstances: ['gw-b'] }), [
        ['a-sealed', -1, 2, true],
        ['a-open', -1, 1, false],
      ]);
      assert.deepEqual(await pending({ fromUs: t0 + 2000 }), [
        ['a-open', -1, 1, false],
        ['b-open', -1, 0, false],
      ]);
      assert.deepEqual(await pending({ sessionIds: ['b-open', 'nothing'] }), [['b-open', -1, 0, false]]);
      assert.equal(await store.auditBacklog('siem', { fromUs: t0, exceptInstances: [] }), 6, 'every event of the three sessions');
      assert.equal(await store.auditBacklog('siem', { fromUs: t0, exceptInstances: ['gw-b'] }), 5);
      assert.deepEqual(await pending({ limit: 1, after: { openedAtUs: t0 + 1000, id: 'a-sealed' } }), [['a-open', -1, 1, false]]);
    });

    it('reads the events of several sessions, each after its own seq, by session then seq, at most the limit', async () => {
      const read = async (after: Array<[string, number]>, limit = 100) =>
        (
          await store.auditEvents(
            after.map(([sessionId, seq]) => ({ sessionId, seq })),
            limit,
          )
        ).map((e) => `${e.sessionId}/${e.seq}`);
      assert.deepEqual(
        await read([
          ['a-sealed', 0],
          ['a-open', -1],
          ['b-open', 0],
        ]),
        ['a-open/0', 'a-open/1', 'a-sealed/1', 'a-sealed/2'],
      );
      assert.deepEqual(
        await read(
          [
            ['a-sealed', 0],
            ['a-open', -1],
          ],
          3,
        ),
        ['a-open/0', 'a-open/1', 'a-sealed/1'],
      );
      assert.deepEqual(await read([]), []);
    });

    it('moves cursors forward only: an open session caught up drops out, a sealed one stays until marked whole', async () => {
      await store.advanceAuditCursors('siem', [
        { sessionId: 'a-sealed', seq: 2, done: false },
        { sessionId: 'a-open', seq: 1, done: false },
      ]);
      assert.deepEqual(await pending(), [
        ['a-sealed', 2, 2, true],
        ['b-open', -1, 0, false],
      ]);
      await store.advanceAuditCursors('siem', [
        { sessionId: 'a-sealed', seq: 1, done: true },
        { sessionId: 'a-open', seq: 0, done: false },
      ]);
      assert.deepEqual(await pending(), [['b-open', -1, 0, false]], 'sealed and whole: gone from the list; cursors never move back');
      assert.equal(await store.auditBacklog('siem', { fromUs: t0, exceptInstances: [] }), 1);
      await store.write({ ...emptyBatch(), events: [event('a-open', 2)] });
      assert.deepEqual(await pending(), [
        ['a-open', 1, 2, false],
        ['b-open', -1, 0, false],
      ]);
      assert.deepEqual(
        (await store.auditPending('other-sink', { fromUs: t0, exceptInstances: [], limit: 100 })).map((p) => p.cursor),
        [-1, -1, -1],
        'cursors are per sink',
      );
    });

    it('moves the watermark to the oldest session not shipped whole, never past the cap or back', async () => {
      assert.equal(await store.advanceAuditWatermark('siem', t0 + 10_000), t0 + 2000, 'a-open is the oldest not shipped whole');
      assert.deepEqual(await pending({ fromUs: t0 + 2000 }), [
        ['a-open', 1, 2, false],
        ['b-open', -1, 0, false],
      ]);
      assert.equal(await store.advanceAuditWatermark('siem', t0 + 1500), t0 + 2000, 'never back');
      await store.write({ ...emptyBatch(), events: [event('a-open', 3), event('b-open', 1)], sealed: [{ id: 'a-open', ...sealed(4) }] });
      await store.advanceAuditCursors('siem', [{ sessionId: 'a-open', seq: 3, done: true }]);
      assert.equal(await store.advanceAuditWatermark('siem', t0 + 10_000), t0 + 3000);
      await store.advanceAuditCursors('siem', [{ sessionId: 'b-open', seq: 1, done: false }]);
      assert.equal(await store.advanceAuditWatermark('siem', t0 + 2500), t0 + 3000, 'b-open is open: the watermark stays at it');
      assert.equal((await store.auditSink('siem', t0)).watermarkUs, t0 + 3000);
      assert.deepEqual(await pending({ fromUs: t0 + 3000 }), []);
    });

    it("lists an instance's just-in-time access events (ledger rows of kind access) after the sink's cursor, from a time on", async () => {
      const row = (seq: number, kind: 'opened' | 'access', timeUs: number) => ({
        instanceId: 'gw-a',
        seq,
        timeUs,
        kind,
        sessionId: kind === 'access' ? `ar-${seq}` : 'a-sealed',
        detail: JSON.stringify({ event: 'requested' }),
        hash: `${seq}`.padStart(64, 'c'),
      });
      await store.write({
        ...emptyBatch(),
        ledger: [row(0, 'opened', t0), row(1, 'access', t0 + 1), row(2, 'opened', t0 + 2), row(3, 'access', t0 + 3), row(4, 'access', t0 + 4)],
      });
      const seqs = async (fromUs: number, limit = 10) => {
        const p = await store.auditAccessPending('siem', 'gw-a', fromUs, limit);
        return [p.cursor, p.rows.map((r) => r.seq)];
      };
      assert.deepEqual(await seqs(t0), [-1, [1, 3, 4]]);
      assert.deepEqual(await seqs(t0 + 2), [-1, [3, 4]], 'recorded before the sink started: not its business');
      assert.deepEqual(await seqs(t0, 2), [-1, [1, 3]]);
      await store.advanceAuditCursors('siem', [{ sessionId: ledgerCursorKey('gw-a'), seq: 3, done: false }]);
      assert.deepEqual(await seqs(t0), [3, [4]]);
      assert.deepEqual((await store.auditAccessPending('siem', 'gw-b', t0, 10)).rows, []);
      assert.equal(await store.advanceAuditWatermark('siem', t0 + 10_000), t0 + 3000, 'a ledger cursor is no session: the watermark is as it was');
      assert.deepEqual(await seqs(t0), [3, [4]], 'and it is kept');
    });

    it('retention keeps the sessions a configured sink has not shipped whole', async () => {
      await store.write({
        ...emptyBatch(),
        sessionsOpened: [openSessionRow({ id: 'c-sealed', instanceId: 'gw-a', connection: 'c', subject: 'carol', openedAtUs: t0 + 5000 })],
        events: [event('c-sealed', 0)],
        sealed: [{ id: 'c-sealed', ...sealed(1) }],
      });
      const expired = async (keep?: string[]) => (await store.expiredSessions(t0 + 20_000_000, 10, keep)).map((r) => r.id).sort();
      assert.deepEqual(await expired(), ['a-open', 'a-sealed', 'c-sealed']);
      assert.deepEqual(await expired(['siem']), ['a-open', 'a-sealed'], 'c-sealed is past the watermark and not shipped whole');
      assert.deepEqual(await expired(['never-started']), ['a-open', 'a-sealed', 'c-sealed'], 'a sink never started has no sessions yet');
      await store.advanceAuditCursors('siem', [{ sessionId: 'c-sealed', seq: 0, done: true }]);
      assert.deepEqual(await expired(['siem']), ['a-open', 'a-sealed', 'c-sealed']);
    });
  });
}
