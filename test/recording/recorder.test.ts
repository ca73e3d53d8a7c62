import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { resolveSecretString } from '../../src/core/secrets.js';
import { loadSigningKey, type SigningKey } from '../../src/recording/keys.js';
import type { RecorderOptions } from '../../src/recording/recorder-options.js';
import { Recorder } from '../../src/recording/recorder.js';
import { SessionRecording } from '../../src/recording/session-recording.js';
import { nowUs } from '../../src/recording/time.js';
import { trustedKeys, verifyLedger, verifySession } from '../../src/recording/verify.js';
import { sqlitePath } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { openingDetails } from '../../src/recording/session-facts.js';
import { openSessionRow, type SessionRow } from '../../src/store/types.js';
import pg from 'pg';
import { backends, postgresTestStore, postgresUrl, schemaOf, sqliteTestStore, storeSql, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/** The recorder on its own: group commit, retention with tombstones, best-effort gaps, recovery of silent gateways. */

const quiet = pino({ level: 'silent' });

function key(): SigningKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  process.env.PORTCULLIS_TEST_KEY = pem;
  return loadSigningKey('/nonexistent', resolveSecretString('${env:PORTCULLIS_TEST_KEY}'));
}

function row(recorder: Recorder, id: string): SessionRow {
  return openSessionRow({ id, instanceId: recorder.instanceId, connection: 'c', subject: 'u', openedAtUs: nowUs() });
}

function open(recorder: Recorder, id: string): SessionRecording {
  const r = row(recorder, id);
  const rec = new SessionRecording(recorder, recorder.openSession(r));
  rec.lifecycle('open', openingDetails(r));
  return rec;
}

const start = (store: Store, instanceId: string, signing: SigningKey, extra: Partial<RecorderOptions> = {}) =>
  Recorder.start({ store, instanceId, key: signing, mode: 'write-ahead', log: quiet, ...extra });

for (const backend of backends) {
  describe(`recorder (${backend.name})`, () => {
    let ts: TestStore;
    let store: Store;
    const signing = key();
    let trusted: Map<string, string>;

    before(async () => {
      ts = backend.make();
      store = await ts.open();
      trusted = await trustedKeys([{ keyId: signing.keyId, publicKeyPem: signing.publicKeyPem }]);
    });
    after(async () => {
      await store?.close();
      await ts?.destroy();
    });

    it('group commit: what many sessions append at once lands in a few transactions', async () => {
      const recorder = await start(store, 'gw-group', signing);
      const before = recorder.stats;
      const sessions = Array.from({ length: 50 }, (_, i) => open(recorder, `group-${backend.name}-${i}`));
      for (let n = 0; n < 10; n++) for (const s of sessions) s.message('toServer', 'received', `{"jsonrpc":"2.0","id":${n},"method":"ping"}`);
      await Promise.all(sessions.map((s) => s.barrier()));
      const after = recorder.stats;
      assert.equal(after.events - before.events, 50 * 11);
      assert.ok(after.commits - before.commits <= 3, `commits: ${after.commits - before.commits}`);
      await Promise.all(sessions.map((s) => s.close('done')));
      const r = await verifySession(store, `group-${backend.name}-7`, trusted);
      assert.equal(r.status, 'verified', JSON.stringify(r.problems));
      assert.equal(r.events, 12);
      await recorder.close();
    });

    it('retention deletes old closed sessions and leaves tombstones that verify understands', async () => {
      const recorder = await start(store, `gw-ret-${backend.name}`, signing, { retentionMs: 60_000, sweepMs: 3_600_000 });
      const old = open(recorder, `old-${backend.name}`);
      old.message('toServer', 'received', '{"jsonrpc":"2.0","id":1,"method":"ping"}');
      await old.close('done');
      const live = open(recorder, `live-${backend.name}`);
      await live.barrier();
      // Closed two minutes ago, as the store tells it: no sleeping past a short retention that a slow sweep could overrun.
      await storeSql(ts, backend.name)('UPDATE sessions SET closed_at_us = closed_at_us - 120000000 WHERE id = ?', `old-${backend.name}`);
      const fresh = open(recorder, `fresh-${backend.name}`);
      await fresh.close('done');
      await recorder.sweep();
      assert.equal(await store.getSession(`old-${backend.name}`), undefined, 'the old closed session is deleted');
      assert.deepEqual(await store.events(`old-${backend.name}`, -1, 10), []);
      assert.ok(await store.getSession(`live-${backend.name}`), 'an open session is never deleted');
      assert.ok(await store.getSession(`fresh-${backend.name}`), 'a recent one is kept');
      const r = await verifySession(store, `old-${backend.name}`, trusted);
      assert.equal(r.status, 'deleted');
      assert.match(r.notes[0]!, /deleted .* by gw-ret-\S+ \(retention: closed more than 60000 ms ago\); its 3 events were sealed before deletion/);
      assert.deepEqual((await verifyLedger(store, `gw-ret-${backend.name}`)).problems, []);
      await live.close('done');
      await recorder.close();
    });

    it('a silent gateway’s open sessions are sealed as cut off by another one', async () => {
      const a = await start(store, `gw-silent-${backend.name}`, signing);
      const s = open(a, `orphan-${backend.name}`);
      s.message('toServer', 'received', '{"jsonrpc":"2.0","id":1,"method":"ping"}');
      await s.barrier();
      await a.close(); // stops without sealing its session, as a crashed gateway would
      await store.heartbeat(`gw-silent-${backend.name}`, { nowUs: nowUs() - 10 * 60_000_000 });
      const b = await start(store, `gw-rescuer-${backend.name}`, signing, { staleAfterMs: 60_000 });
      const recovered = (await store.getSession(`orphan-${backend.name}`))!;
      assert.equal(recovered.status, 'cut-off');
      assert.match(
        recovered.closeReason!,
        new RegExp(`gateway instance gw-silent-${backend.name} stopped without closing the session; recovered by gw-rescuer-${backend.name}`),
      );
      const r = await verifySession(store, `orphan-${backend.name}`, trusted);
      assert.equal(r.status, 'verified', JSON.stringify(r.problems));
      await b.close();
    });

    it('a recovered session states the refusals and redactions it recorded, not what its row was rewritten to', async () => {
      const a = await start(store, `gw-counted-${backend.name}`, signing);
      const s = open(a, `counted-${backend.name}`);
      s.verdict({ stage: 'guard', action: 'answer', direction: 'toServer', reason: 'denied by rule' });
      s.verdict({ stage: 'mask', action: 'rewrite', direction: 'toClient', sensitive: true });
      await s.barrier();
      await a.close(); // a crash: the session stays open
      await storeSql(ts, backend.name)('UPDATE sessions SET denials = 0, redactions = 9 WHERE id = ?', `counted-${backend.name}`);
      const b = await start(store, `gw-counted-${backend.name}`, signing); // the same gateway restarts and recovers it
      const row = (await store.getSession(`counted-${backend.name}`))!;
      assert.equal(row.status, 'cut-off');
      assert.deepEqual([row.denials, row.redactions], [1, 1]);
      const close = (await store.lastEvent(row.id))!;
      assert.deepEqual(JSON.parse(close.payload), { status: 'cut-off', reason: row.closeReason, denials: 1, redactions: 1 });
      const r = await verifySession(store, row.id, trusted);
      assert.equal(r.status, 'verified', JSON.stringify(r.problems));
      await b.close();
    });

    it('a gateway the membership sees alive keeps its open sessions, however old its heartbeat’s time (its clock is behind)', async () => {
      const a = await start(store, `gw-behind-${backend.name}`, signing);
      const s = open(a, `behind-${backend.name}`);
      await s.barrier();
      // Its clock is ten minutes behind: each heartbeat it writes looks stale to everyone else's clock.
      await store.heartbeat(`gw-behind-${backend.name}`, { nowUs: nowUs() - 10 * 60_000_000 });
      const b = await start(store, `gw-judge-${backend.name}`, signing, { staleAfterMs: 60_000, alive: (id) => id === `gw-behind-${backend.name}` });
      await b.sweep();
      assert.equal((await store.getSession(`behind-${backend.name}`))!.status, 'open');
      await s.close('done');
      await a.close();
      await b.close();
    });

    it('a gateway the membership finds alive only once it reads again keeps its open sessions (the answer may come later)', async () => {
      const a = await start(store, `gw-late-${backend.name}`, signing);
      const s = open(a, `late-${backend.name}`);
      await s.barrier();
      await store.heartbeat(`gw-late-${backend.name}`, { nowUs: nowUs() - 10 * 60_000_000 });
      // The membership's answer comes after a read of its own (Membership.aliveNow): a promise.
      const alive = async (id: string) => id === `gw-late-${backend.name}`;
      const b = await start(store, `gw-asker-${backend.name}`, signing, { staleAfterMs: 60_000, alive });
      await b.sweep();
      assert.equal((await store.getSession(`late-${backend.name}`))!.status, 'open');
      await s.close('done');
      await a.close();
      await b.close();
    });

    it('a live gateway’s open sessions are left alone', async () => {
      const a = await start(store, `gw-alive-${backend.name}`, signing);
      const s = open(a, `alive-${backend.name}`);
      await s.barrier();
      const b = await start(store, `gw-other-${backend.name}`, signing, { staleAfterMs: 60_000 });
      await b.sweep();
      assert.equal((await store.getSession(`alive-${backend.name}`))!.status, 'open');
      await s.close('done');
      await a.close();
      await b.close();
    });
  });
}

describe('recorder (postgres): the next batch gathers while one is in flight', () => {
  let ts: TestStore;
  let store: Store;
  const ping = '{"jsonrpc":"2.0","id":1,"method":"ping"}';
  before(async () => {
    ts = postgresTestStore();
    store = await ts.open();
  });
  after(async () => {
    await store?.close();
    await ts?.destroy();
  });

  /** Holds every batch's event inserts on a lock another connection takes, until `release`. */
  async function holdEvents(): Promise<{ waiting(): Promise<number>; release(): Promise<void> }> {
    const locker = new pg.Client({ connectionString: postgresUrl });
    // Watched from outside the locker's transaction, whose view of pg_stat_activity is a snapshot taken once.
    const watcher = new pg.Client({ connectionString: postgresUrl });
    await locker.connect();
    await watcher.connect();
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE "${schemaOf(ts.url)}".events IN SHARE MODE`);
    const lockerPid = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    return {
      // Only backends this lock holds up: other tests may be waiting on locks of their own at the same time.
      waiting: async () => (await watcher.query('SELECT 1 FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))', [lockerPid])).rowCount ?? 0,
      release: async () => {
        await locker.query('COMMIT');
        await locker.end();
        await watcher.end();
      },
    };
  }

  const settled = (p: Promise<void> | undefined) => {
    const state = { done: false };
    void p?.then(
      () => (state.done = true),
      () => (state.done = true),
    );
    return state;
  };

  async function verifyAll(ids: string[], signing: SigningKey): Promise<void> {
    const trusted = await trustedKeys([{ keyId: signing.keyId, publicKeyPem: signing.publicKeyPem }]);
    for (const id of ids) {
      const r = await verifySession(store, id, trusted);
      assert.equal(r.status, 'verified', JSON.stringify(r.problems));
    }
  }

  it('what sessions append while a batch is in flight goes as one next batch, the moment the first lands', async () => {
    const signing = key();
    // A window far longer than the test: the next batch can only start because the first one landed.
    const recorder = await start(store, 'gw-gather', signing, { gatherMs: 600_000 });
    const ids = Array.from({ length: 10 }, (_, i) => `gather-${i}`);
    const sessions = ids.map((id) => open(recorder, id));
    await Promise.all(sessions.map((s) => s.barrier()));
    const hold = await holdEvents();
    const before = recorder.stats;
    sessions[0]!.message('toServer', 'received', ping);
    const first = sessions[0]!.barrier();
    await waitFor(async () => (await hold.waiting()) === 1, 'the first batch to wait on the lock');
    // The others append one at a time, each in a later turn of the event loop, while that batch is in flight.
    const later: Array<{ done: boolean }> = [];
    for (const s of sessions.slice(1)) {
      s.message('toServer', 'received', ping);
      later.push(settled(s.barrier()));
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await hold.waiting(), 1, 'no second batch beside the first');
    // Write-ahead: none of them is confirmed before its own commit.
    assert.ok(later.every((l) => !l.done));
    await hold.release();
    await first;
    await Promise.all(sessions.map((s) => s.barrier()));
    const after = recorder.stats;
    assert.equal(after.events - before.events, 10);
    assert.equal(after.commits - before.commits, 2, 'the batch in flight, then everything that arrived meanwhile');
    await Promise.all(sessions.map((s) => s.close('done')));
    await verifyAll(ids, signing);
    await recorder.close();
  });

  it('the gathering is bounded: past the window the next batch starts beside one that has not landed', async () => {
    const signing = key();
    const recorder = await start(store, 'gw-gather-bound', signing, { gatherMs: 20 });
    const ids = ['bound-0', 'bound-1'];
    const sessions = ids.map((id) => open(recorder, id));
    await Promise.all(sessions.map((s) => s.barrier()));
    const hold = await holdEvents();
    try {
      sessions[0]!.message('toServer', 'received', ping);
      const first = settled(sessions[0]!.barrier());
      await waitFor(async () => (await hold.waiting()) === 1, 'the first batch to wait on the lock');
      sessions[1]!.message('toServer', 'received', ping);
      const second = settled(sessions[1]!.barrier());
      // The first batch stays held: only the window can start the second.
      await waitFor(async () => (await hold.waiting()) === 2, 'the second batch to start while the first is held');
      assert.ok(!first.done && !second.done, 'neither is confirmed before its commit');
    } finally {
      await hold.release();
    }
    await Promise.all(sessions.map((s) => s.barrier()));
    await Promise.all(sessions.map((s) => s.close('done')));
    await verifyAll(ids, signing);
    await recorder.close();
  });
});

describe('recorder: best-effort mode (SQLite)', () => {
  let ts: TestStore;
  let store: Store;
  before(async () => {
    ts = sqliteTestStore();
    store = await ts.open();
  });
  after(async () => {
    await store?.close();
    await ts?.destroy();
  });

  it('never blocks or throws, and marks the events it lost as a gap in the chain', async () => {
    const signing = key();
    const recorder = await start(store, 'gw-best', signing, { mode: 'best-effort', probeMs: 50 });
    const s = open(recorder, 'best-1');
    s.message('toServer', 'received', '{"jsonrpc":"2.0","id":1,"method":"ping"}');
    assert.equal(s.barrier(), undefined, 'best-effort waits for nothing');
    await recorder.drain();
    const lock = new Database(sqlitePath(ts.url));
    lock.exec('BEGIN EXCLUSIVE');
    s.message('toServer', 'received', '{"jsonrpc":"2.0","id":2,"method":"ping"}');
    s.message('toClient', 'delivered', '{"jsonrpc":"2.0","id":2,"result":{}}');
    await recorder.drain();
    assert.equal(recorder.healthy, false);
    assert.equal(recorder.accepting, true, 'best-effort takes new sessions while the store is down');
    s.message('toServer', 'received', '{"jsonrpc":"2.0","id":3,"method":"ping"}');
    lock.exec('ROLLBACK');
    lock.close();
    const deadline = Date.now() + 5000;
    while (!recorder.healthy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(recorder.healthy, true);
    s.message('toServer', 'received', '{"jsonrpc":"2.0","id":4,"method":"ping"}');
    await s.close('done');
    const events = await store.events('best-1', -1, 100);
    const gap = events.find((e) => e.kind === 'gap')!;
    assert.ok(gap, 'a gap event stands where events were lost');
    assert.ok((JSON.parse(gap.payload) as { lost: number }).lost >= 2);
    assert.ok(events.some((e) => e.payload.includes('"id":4')));
    assert.ok(!events.some((e) => e.payload.includes('"id":2')), 'what was lost is not invented');
    const r = await verifySession(store, 'best-1', await trustedKeys([{ keyId: signing.keyId, publicKeyPem: signing.publicKeyPem }]));
    assert.equal(r.status, 'verified', JSON.stringify(r.problems));
    assert.ok(r.notes.some((n) => /best-effort recording lost \d+ events here/.test(n)));
    await recorder.close();
  });
});
