import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { SigningKey } from '../../src/recording/keys.js';
import type { Recorder, SessionChain } from '../../src/recording/recorder.js';
import { SealContendedError, SealedElsewhereError } from '../../src/recording/sealed-elsewhere.js';
import { verifyLedger, verifySession } from '../../src/recording/verify.js';
import { openLive, RecorderPeers, testSigners } from '../helpers/recorder-peers.js';
import { backends, postgresTestStore, postgresUrl, schemaOf } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Two gateways seal one session left open (a crashed replica restarted under its id while a survivor seals its
 * sessions, two replicas each briefly the one that recovers, a paused replica waking to write on): the seal that loses
 * writes nothing and is told so, and the live sessions of the gateway it belongs to record on, its store healthy.
 */

const counts = { denials: 0, redactions: 0 };

for (const backend of backends) {
  describe(`recovery seals racing (${backend.name})`, () => {
    let peers: RecorderPeers;
    const { keys, trusted } = testSigners('a', 'b', 'c');

    /** A gateway of its own (its own store connection, key and instance id) that never sweeps by itself. */
    const gateway = (instanceId: string, key: SigningKey): Promise<Recorder> => peers.start({ instanceId, key });
    /** What a sweep does: continue the session's chain from the head the store holds. */
    const resume = async (r: Recorder, id: string): Promise<SessionChain> => {
      const row = (await r.store.getSession(id))!;
      return r.resumeChain(row, await r.store.lastEvent(id));
    };

    before(() => {
      peers = new RecorderPeers(backend.make());
    });
    after(() => peers?.destroy());

    it("the seal that loses fails alone: the loser's live session beside it records on, its recorder healthy", async () => {
      const [a, b, c] = [await gateway(`a1-${backend.name}`, keys.a), await gateway(`b1-${backend.name}`, keys.b), await gateway(`c1-${backend.name}`, keys.c)];
      const dead = `dead1-${backend.name}`;
      openLive(a, dead);
      await a.drain();
      const live = openLive(b, `live1-${backend.name}`);
      await live.lastCommit!.promise;
      let broken: Error | undefined;
      live.onBroken = (err) => (broken = err);

      // Both read the head, as their sweeps do; c's seal lands first.
      const byB = await resume(b, dead);
      await c.seal(await resume(c, dead), 'cut-off', 'recovered by c', counts);
      // b's seal is queued right beside an event of its live session.
      b.append(live, 'message', 'toClient', 'delivered', '{"jsonrpc":"2.0","id":1,"result":{}}');
      const liveCommit = live.lastCommit!.promise;
      const sealed = b.seal(byB, 'cut-off', 'recovered by b', counts);

      await liveCommit;
      await assert.rejects(sealed, SealedElsewhereError);
      assert.equal(broken, undefined);
      assert.ok(b.healthy && b.accepting, `b: ${b.lastError?.message}`);
      assert.equal(b.isLive(dead), false, "the loser's recovery chain is let go");
      b.append(live, 'message', 'toServer', 'received', '{"jsonrpc":"2.0","id":2,"method":"ping"}');
      await b.seal(live, 'closed', 'done', counts);

      const sealedDead = (await b.store.getSession(dead))!;
      assert.equal(sealedDead.closeReason, 'recovered by c');
      assert.equal(sealedDead.sealKeyId, keys.c.keyId);
      for (const id of [dead, `live1-${backend.name}`]) {
        const v = await verifySession(b.store, id, trusted);
        assert.equal(v.status, 'verified', `${id}: ${JSON.stringify(v.problems)}`);
      }
      // The seal that wrote nothing left no ledger row behind: b's ledger goes on from its true head.
      for (const r of [b, c]) assert.deepEqual((await verifyLedger(r.store, r.instanceId)).problems, []);
      assert.equal((await b.store.ledgerFor(dead)).filter((l) => l.kind === 'sealed').length, 1);
    });

    it('two seals of one session at once: exactly one is written, and neither recorder fails', async () => {
      const [a, b, c] = [await gateway(`a2-${backend.name}`, keys.a), await gateway(`b2-${backend.name}`, keys.b), await gateway(`c2-${backend.name}`, keys.c)];
      const dead = `dead2-${backend.name}`;
      openLive(a, dead);
      await a.drain();
      const [byB, byC] = [await resume(b, dead), await resume(c, dead)];
      const outcomes = await Promise.allSettled([b.seal(byB, 'cut-off', 'recovered by b', counts), c.seal(byC, 'cut-off', 'recovered by c', counts)]);
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, JSON.stringify(outcomes));
      const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      assert.ok(lost.reason instanceof SealedElsewhereError, String(lost.reason));
      assert.ok(b.healthy && c.healthy, `${b.lastError?.message} ${c.lastError?.message}`);
      assert.equal((await verifySession(b.store, dead, trusted)).status, 'verified');
      for (const r of [b, c]) assert.deepEqual((await verifyLedger(r.store, r.instanceId)).problems, []);
    });

    it('a gateway thought dead writes its next event before the seal lands: the seal writes nothing, a later one seals', async () => {
      const [a, b] = [await gateway(`a3-${backend.name}`, keys.a), await gateway(`b3-${backend.name}`, keys.b)];
      const paused = `paused3-${backend.name}`;
      const chain = openLive(a, paused);
      await a.drain();
      const byB = await resume(b, paused);
      // a wakes and writes on, at the sequence number b's close event was to take.
      a.append(chain, 'message', 'toClient', 'delivered', '{"jsonrpc":"2.0","id":1,"result":{}}');
      await chain.lastCommit!.promise;

      await assert.rejects(b.seal(byB, 'cut-off', 'recovered by b', counts), SealedElsewhereError);
      assert.ok(a.healthy && b.healthy);
      const row = (await b.store.getSession(paused))!;
      assert.equal(row.status, 'open');
      assert.equal((await b.store.lastEvent(paused))!.kind, 'message', 'no close event was written');

      // a goes silent for good this time: the next recovery goes on from the head as it is now.
      await b.seal(await resume(b, paused), 'cut-off', 'recovered by b', counts);
      const v = await verifySession(b.store, paused, trusted);
      assert.equal(v.status, 'verified', JSON.stringify(v.problems));
      assert.equal(v.events, 4);
      assert.deepEqual((await verifyLedger(b.store, b.instanceId)).problems, []);
    });
  });
}

describe('a recovery seal rolled back as a deadlock (postgres)', () => {
  const ts = postgresTestStore();
  const peers = new RecorderPeers(ts);
  const { keys } = testSigners('a', 'b');
  after(() => peers.destroy());

  it('is not sealed, and no store failure: the sealing recorder stays healthy and the next sweep seals', async () => {
    const [a, b] = [await peers.start({ instanceId: 'a-deadlock', key: keys.a }), await peers.start({ instanceId: 'b-deadlock', key: keys.b })];
    // The gateway taken for gone, alive after all: its next batch, mid-statement, as its live write does (the event
    // in, the session row next), on a connection of its own.
    const owner = new pg.Client({ connectionString: postgresUrl, options: `-c search_path="${schemaOf(ts.url)}"` });
    const watcher = new pg.Client({ connectionString: postgresUrl });
    await owner.connect();
    await watcher.connect();
    try {
      const ownerPid = (await owner.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      /**
       * One collision: b's seal locks the row and waits on the owner's event; the owner then waits on the row.
       * PostgreSQL aborts whichever backend's deadlock_timeout (1s) runs out first with the cycle closed: the seal's,
       * unless more than a second passed between its wait and the owner's update (a stalled machine). Then the owner
       * is aborted and the seal written: 'owner-aborted', and the test tries again on another session.
       */
      const collide = async (id: string): Promise<'seal-aborted' | 'owner-aborted'> => {
        openLive(a, id);
        await a.drain();
        const byB = b.resumeChain((await b.store.getSession(id))!, await b.store.lastEvent(id));
        await owner.query('BEGIN');
        await owner.query(`INSERT INTO events (session_id, seq, time_us, mono_us, kind, payload, hash) VALUES ($1, $2, 0, 0, 'message', '{}', 'h')`, [
          id,
          byB.nextSeq,
        ]);
        const sealed = b.seal(byB, 'cut-off', 'recovered by b', counts).then(
          () => 'sealed' as const,
          (err: Error) => err,
        );
        await waitFor(
          async () => ((await watcher.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [ownerPid])).rowCount ?? 0) > 0,
          "the seal to wait on the owner's event",
        );
        const updated = await owner.query('UPDATE sessions SET event_count = event_count + 1 WHERE id = $1', [id]).then(
          () => 'updated' as const,
          (err: { code?: string }) => err.code,
        );
        await owner.query(updated === 'updated' ? 'COMMIT' : 'ROLLBACK');
        const outcome = await sealed;
        if (updated === '40P01') {
          assert.equal(outcome, 'sealed');
          return 'owner-aborted';
        }
        assert.equal(updated, 'updated');
        assert.ok(outcome instanceof SealContendedError, String(outcome));
        // The store's error, as the driver's (pg's DatabaseError) wrapped: a deadlock, SQLSTATE 40P01.
        assert.equal(((outcome.cause as Error).cause as { code?: string }).code, '40P01');
        return 'seal-aborted';
      };
      let attempt = 0;
      while ((await collide(`taken-for-gone-${attempt}`)) === 'owner-aborted') assert.ok(++attempt < 5, 'the seal was never the one aborted');
      const id = `taken-for-gone-${attempt}`;
      assert.ok(b.healthy && b.accepting, `b: ${b.lastError?.message}`);
      assert.equal(b.isLive(id), false, 'the recovery chain is let go, for the next sweep');
      assert.equal((await b.store.getSession(id))!.status, 'open', 'nothing of the seal was written');
      // The next sweep (the owner gone for good this time) seals from the head as it is now.
      const byB = b.resumeChain((await b.store.getSession(id))!, await b.store.lastEvent(id));
      await b.seal(byB, 'cut-off', 'recovered by b', counts);
      assert.equal((await b.store.getSession(id))!.status, 'cut-off');
      assert.ok(b.healthy);
    } finally {
      await owner.end();
      await watcher.end();
    }
  });
});
