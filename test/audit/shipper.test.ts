import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { auditSchema } from '../../src/audit/config.js';
import { AuditShipper } from '../../src/audit/shipper.js';
import type { AuditEventKind } from '../../src/audit/sink.js';
import { Recorder } from '../../src/recording/recorder.js';
import { openingDetails } from '../../src/recording/session-facts.js';
import { SessionRecording } from '../../src/recording/session-recording.js';
import { nowUs } from '../../src/recording/time.js';
import type { Store } from '../../src/store/store.js';
import { openSessionRow } from '../../src/store/types.js';
import { AuditCollector, assertShippedWhole } from '../helpers/audit-collector.js';
import { testSigner } from '../helpers/encryption.js';
import { allEvents } from '../helpers/recorded.js';
import { backends, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The shipper on its own, with a real recorder, store and HTTP collector: what a commit tells it is shipped from the
 * batch, without reading it back; the store is read for what it was not told of (a backlog at start, a batch missed)
 * and after it let go of what it held (a sink down long). The store is wrapped only to count the shipper's reads and
 * to make it fail for a while; whatever happens, every event arrives, each first seen in order.
 */

const quiet = pino({ level: 'silent' });

/** The real store, its audit methods counted, and any of them made to throw while `failing` names it. */
function watched(store: Store) {
  const calls = new Map<string, number>();
  const failing = new Set<string>();
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || !/audit/i.test(prop) || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (...args: unknown[]) => {
        calls.set(prop, (calls.get(prop) ?? 0) + 1);
        if (failing.has(prop)) throw new Error(`the store is down (${prop}, in the test)`);
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
  return { store: proxy, calls: (name: string) => calls.get(name) ?? 0, failing };
}

function shipper(store: Store, collector: AuditCollector, name: string, o: { events?: AuditEventKind[]; maxHeldEvents?: number } = {}): AuditShipper {
  const [sink] = auditSchema({ env: {}, readFile: () => '' }).parse({
    sinks: [{ name, http: { url: collector.url, batch: 5 }, ...(o.events ? { events: o.events } : {}) }],
  }).sinks;
  return new AuditShipper({
    store,
    sink: sink!.create({ log: quiet, name }),
    kind: 'http',
    events: sink!.events,
    othersAlive: () => [],
    log: quiet,
    // No periodic scan during a test: the store is read only when the shipper needs it.
    pollMs: 3_600_000,
    retryMs: 20,
    maxRetryMs: 80,
    gatherMs: 20,
    ...(o.maxHeldEvents === undefined ? {} : { maxHeldEvents: o.maxHeldEvents }),
  });
}

let sessionNumber = 0;

type Recording = SessionRecording & { sessionId: string };

function openSession(recorder: Recorder, prefix: string): Recording {
  const row = openSessionRow({ id: `${prefix}-${++sessionNumber}`, instanceId: recorder.instanceId, connection: 'c', subject: 'u', openedAtUs: nowUs() });
  const rec = new SessionRecording(recorder, recorder.openSession(row));
  rec.lifecycle('open', openingDetails(row));
  return Object.assign(rec, { sessionId: row.id });
}

async function calls(rec: Recording, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    rec.message('toServer', 'received', `{"jsonrpc":"2.0","id":${i},"method":"tools/call","params":{"name":"echo","arguments":{"n":${i}}}}`);
    rec.message('toClient', 'received', `{"jsonrpc":"2.0","id":${i},"result":{"content":[{"type":"text","text":"echo ${i}"}]}}`);
    await rec.barrier();
  }
}

for (const backend of backends) {
  describe(`audit shipper: from the committed batch, the store for the rest (${backend.name})`, () => {
    let ts: TestStore;
    let store: Store;
    let collector: AuditCollector;
    const signing = testSigner().key;

    before(async () => {
      ts = backend.make();
      store = await ts.open();
      collector = await AuditCollector.start();
    });
    after(async () => {
      await collector?.stop();
      await store?.close();
      await ts?.destroy();
    });

    /**
     * A recorder of its own (instance gw-<name>) and a shipper told of its commits (unless `untold` says to skip one),
     * started and past its first whole scan: sessions opened from now on are the sink's.
     */
    async function startShipping(name: string, o: { maxHeldEvents?: number; untold?: () => boolean } = {}) {
      const recorder = await Recorder.start({ store, instanceId: `gw-${name}`, key: signing, mode: 'write-ahead', log: quiet });
      const w = watched(store);
      const s = shipper(w.store, collector, name, o.maxHeldEvents === undefined ? {} : { maxHeldEvents: o.maxHeldEvents });
      recorder.onCommitted((sessions, batch) => {
        if (!o.untold?.()) s.committed(sessions, batch);
      });
      s.start();
      const stop = async () => {
        await s.stop();
        await recorder.close();
      };
      try {
        await waitFor(() => w.calls('auditBacklog') >= 1, 'the first scan');
      } catch (err) {
        await stop();
        throw err;
      }
      return { recorder, w, s, stop };
    }

    it('ships what commits tell it from the batch, never reading the events back; a sink takes only its kinds', async () => {
      collector.records.length = 0;
      const lifecycleOnly = await AuditCollector.start();
      const w = watched(store);
      const recorder = await Recorder.start({ store, instanceId: `gw-mem-${backend.name}`, key: signing, mode: 'write-ahead', log: quiet });
      const all = shipper(w.store, collector, `mem-all-${backend.name}`);
      const some = shipper(w.store, lifecycleOnly, `mem-lifecycle-${backend.name}`, { events: ['lifecycle'] });
      recorder.onCommitted((sessions, batch) => {
        all.committed(sessions, batch);
        some.committed(sessions, batch);
      });
      try {
        all.start();
        some.start();
        // The first whole scan of each (at start) is done: from now on the store is read only for what it was not told.
        await waitFor(() => w.calls('auditBacklog') >= 2, 'the shippers to have scanned the store once');
        const readsBefore = w.calls('auditEvents') + w.calls('auditPending');
        const sessions = [openSession(recorder, 'mem'), openSession(recorder, 'mem'), openSession(recorder, 'mem')];
        await Promise.all(sessions.map((s) => calls(s, 0, 6)));
        await Promise.all(sessions.map((s) => s.close('done')));
        const ids = sessions.map((s) => s.sessionId);
        await waitFor(() => ids.every((id) => collector.closed(id) && lifecycleOnly.closed(id)), 'every session to arrive whole at both sinks');
        for (const id of ids) await assertShippedWhole(store, collector.of(id), id);
        assert.equal(w.calls('auditEvents') + w.calls('auditPending'), readsBefore, 'no event was read back from the store');
        for (const id of ids) {
          const lifecycle = (await allEvents(store, id)).filter((e) => e.kind !== 'message' && e.kind !== 'verdict');
          assert.deepEqual(
            lifecycleOnly.of(id).map((r) => [r.seq, r.kind]),
            lifecycle.map((e) => [e.seq, 'lifecycle']),
            'the lifecycle-only sink took only the lifecycle events',
          );
        }
        // The cursors are durable: each session is marked shipped whole for both sinks, nothing is pending.
        for (const name of [`mem-all-${backend.name}`, `mem-lifecycle-${backend.name}`]) {
          const pending = await store.auditPending(name, { fromUs: 0, exceptInstances: [], sessionIds: ids, limit: 10 });
          assert.deepEqual(pending, [], `nothing of the sessions pending for ${name}`);
        }
        assert.ok(!collector.records.some((r, i) => collector.records.findIndex((o) => o.session === r.session && o.seq === r.seq) !== i), 'no duplicate');
      } finally {
        await all.stop();
        await some.stop();
        await recorder.close();
        await lifecycleOnly.stop();
      }
    });

    it('a restart with a backlog: what was recorded meanwhile is read from the store, and an open session goes on from memory', async () => {
      collector.records.length = 0;
      const name = `restart-${backend.name}`;
      const recorder = await Recorder.start({ store, instanceId: `gw-restart-${backend.name}`, key: signing, mode: 'write-ahead', log: quiet });
      const w1 = watched(store);
      const first = shipper(w1.store, collector, name);
      recorder.onCommitted((sessions, batch) => first.committed(sessions, batch));
      first.start();
      // Sessions opened before a sink was first started are not its to ship: these are opened after its first scan.
      await waitFor(() => w1.calls('auditBacklog') >= 1, 'the first scan');
      const before = openSession(recorder, 'restart');
      const left = openSession(recorder, 'restart');
      await calls(before, 0, 2);
      await before.close('done');
      await calls(left, 0, 2);
      await waitFor(() => collector.closed(before.sessionId) && collector.of(left.sessionId).length >= 5, 'the first shipper to ship');
      await first.stop();
      // Recorded while no shipper runs (the gateway down, in effect): only the store has it.
      const during = openSession(recorder, 'restart');
      await calls(during, 0, 3);
      await during.close('done');
      await calls(left, 2, 4);
      const w = watched(store);
      const second = shipper(w.store, collector, name);
      recorder.onCommitted((sessions, batch) => second.committed(sessions, batch));
      second.start();
      try {
        await waitFor(() => collector.closed(during.sessionId) && collector.of(left.sessionId).length >= 9, 'the backlog to be shipped');
        const reads = w.calls('auditEvents');
        assert.ok(reads > 0, 'the backlog was read from the store');
        // The session left open across the restart: its cursor is known now, so its next events go out from memory.
        await calls(left, 4, 6);
        await left.close('done');
        await waitFor(() => collector.closed(left.sessionId), 'the open session to arrive whole');
        assert.equal(w.calls('auditEvents'), reads, 'its events after the backlog were not read back');
        for (const s of [before, during, left]) await assertShippedWhole(store, collector.of(s.sessionId), s.sessionId);
        const keys = collector.records.map((r) => `${r.session}/${r.seq}`);
        assert.equal(new Set(keys).size, keys.length, 'nothing the collector took was sent again');
      } finally {
        await second.stop();
        await recorder.close();
      }
    });

    it('a batch it was not told of (a gap in the sequence) is read from the store; the rest of the session from memory again', async () => {
      collector.records.length = 0;
      let dropNext = false;
      // As when a batch lands after the recorder gave up on it: durable, but nobody is told.
      const untold = () => {
        const drop = dropNext;
        dropNext = false;
        return drop;
      };
      const { recorder, w, stop } = await startShipping(`gap-${backend.name}`, { untold });
      try {
        const rec = openSession(recorder, 'gap');
        await calls(rec, 0, 2);
        await waitFor(() => collector.of(rec.sessionId).length >= 5, 'its first events to be shipped');
        const reads = w.calls('auditEvents');
        dropNext = true;
        await calls(rec, 2, 3);
        assert.equal(dropNext, false, 'a batch went untold');
        await calls(rec, 3, 5);
        await rec.close('done');
        await waitFor(() => collector.closed(rec.sessionId), 'the session to arrive whole');
        assert.ok(w.calls('auditEvents') > reads, 'the events after the gap were read from the store');
        await assertShippedWhole(store, collector.of(rec.sessionId), rec.sessionId);
      } finally {
        await stop();
      }
    });

    it('a sink down for long: past what it holds it lets go and reads the store, and everything arrives once the sink is back', async () => {
      collector.records.length = 0;
      const { recorder, w, s, stop } = await startShipping(`down-${backend.name}`, { maxHeldEvents: 10 });
      try {
        collector.refused = 0;
        collector.failing = true;
        const sessions = [openSession(recorder, 'down'), openSession(recorder, 'down')];
        await calls(sessions[0]!, 0, 2);
        await waitFor(() => collector.refused >= 2, 'the collector to refuse');
        // Many more events than it holds while the sink refuses; the sessions' calls are not held up by it.
        await Promise.all(sessions.map((r) => calls(r, 2, 12)));
        await Promise.all(sessions.map((r) => r.close('done')));
        const reads = w.calls('auditEvents');
        collector.failing = false;
        await waitFor(() => sessions.every((r) => collector.closed(r.sessionId)), 'every session to arrive once the sink is back', 30_000);
        assert.ok(w.calls('auditEvents') > reads, 'what it let go of was read from the store');
        for (const r of sessions) await assertShippedWhole(store, collector.of(r.sessionId), r.sessionId);
        assert.equal(s.status().failingSinceMs, undefined, 'it works again');
      } finally {
        collector.failing = false;
        await stop();
      }
    });

    it('the store failing under the shipper: reported, the recording goes on, and everything arrives once it answers', async () => {
      collector.records.length = 0;
      const { recorder, w, s, stop } = await startShipping(`storefail-${backend.name}`);
      try {
        // Cursor writes and reads fail (the recorder's own writes do not: the store is down only for the shipper).
        for (const m of ['advanceAuditCursors', 'auditPending', 'auditEvents']) w.failing.add(m);
        const rec = openSession(recorder, 'storefail');
        await calls(rec, 0, 3);
        await waitFor(() => s.status().failures >= 2, 'the shipper to have failed on the store');
        assert.match(s.status().lastError ?? '', /the store is down \(/);
        assert.notEqual(s.status().failingSinceMs, undefined);
        // The recording is not held up by it.
        await calls(rec, 3, 6);
        await rec.close('done');
        w.failing.clear();
        await waitFor(() => collector.closed(rec.sessionId), 'the session to arrive whole once the store answers');
        // At least once: what the sink took before a cursor write failed may come again, each first seen in order.
        await assertShippedWhole(store, collector.of(rec.sessionId), rec.sessionId);
        await waitFor(() => s.status().failingSinceMs === undefined, 'the shipper to report it works again');
        const pending = await store.auditPending(`storefail-${backend.name}`, { fromUs: 0, exceptInstances: [], sessionIds: [rec.sessionId], limit: 10 });
        assert.deepEqual(pending, [], 'its cursor is durable: shipped whole');
      } finally {
        await stop();
      }
    });
  });
}
