import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InstanceIdTakenError } from '../../src/cluster/membership.js';
import { RecordingUnavailableError } from '../../src/recording/recording-unavailable.js';
import { verifyLedger, verifySession } from '../../src/recording/verify.js';
import { openLive, RecorderPeers, testSigners } from '../helpers/recorder-peers.js';
import { backends } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A process whose instance id another process took over (it was silent past goneAfter, then woke) writes nothing more
 * under it: its store answering again is not a recovery when the heartbeat says the row is another's, and it never
 * sweeps, or it would seal the new holder's live sessions as its own crashed run's.
 */

const counts = { denials: 0, redactions: 0 };

for (const backend of backends) {
  describe(`an instance id taken over (${backend.name})`, () => {
    let peers: RecorderPeers;
    const { keys, trusted } = testSigners('old', 'new');

    before(() => {
      peers = new RecorderPeers(backend.make());
    });
    after(() => peers?.destroy());

    it("one whose store answers again after its id was taken gives the id up, and seals none of the new holder's sessions", async () => {
      const id = `X-${backend.name}`;
      const claims = await peers.store();
      assert.ok(await claims.claimMember({ id, address: null, startedAtUs: 0, boot: 'old' }, undefined));
      const old = await peers.start({ instanceId: id, boot: 'old', key: keys.old, probeMs: 50 });
      const oldChain = openLive(old, `old-${backend.name}`);
      await old.drain();
      const taken: Error[] = [];
      old.onIdTaken((err) => taken.push(err));

      // It goes silent; a new process takes the id over and, at its start, seals the session as its earlier run's.
      assert.ok(await claims.claimMember({ id, address: null, startedAtUs: 0, boot: 'new' }, 'old'));
      const holder = await peers.start({ instanceId: id, boot: 'new', key: keys.new });
      const live = openLive(holder, `new-${backend.name}`);
      await holder.drain();
      assert.equal((await claims.getSession(`old-${backend.name}`))!.status, 'cut-off');

      // The old one wakes: its next write fails (the new holder wrote past it), then its probe finds the store answering.
      old.append(oldChain, 'message', 'toClient', 'delivered', '{"jsonrpc":"2.0","id":1,"result":{}}');
      await assert.rejects(oldChain.lastCommit!.promise, RecordingUnavailableError);
      await waitFor(() => taken.length > 0 || old.healthy, "the old process's probe to answer");
      assert.ok(taken[0] instanceof InstanceIdTakenError, `healthy: ${old.healthy}, taken: ${taken[0]?.message}`);
      assert.equal(taken.length, 1);
      assert.equal(old.healthy, false);
      assert.equal(old.accepting, false);
      assert.throws(() => openLive(old, `refused-${backend.name}`), RecordingUnavailableError);
      await old.sweep();
      assert.equal((await claims.getSession(`new-${backend.name}`))!.status, 'open', "the new holder's live session");
      assert.equal((await claims.member(id))!.boot, 'new');

      // The new holder records on, and its ledger (the id's) is whole.
      holder.append(live, 'message', 'toClient', 'delivered', '{"jsonrpc":"2.0","id":1,"result":{}}');
      await holder.seal(live, 'closed', 'done', counts);
      assert.ok(holder.healthy, holder.lastError?.message);
      assert.equal((await verifySession(claims, `new-${backend.name}`, trusted)).status, 'verified');
      assert.deepEqual((await verifyLedger(claims, id)).problems, []);
    });

    it('closed for writes (the gateway failing closed when its id is taken): what is queued fails, sessions end, nothing is swept', async () => {
      const r = await peers.start({ instanceId: `Y-${backend.name}`, key: keys.new, recoversOthers: () => true });
      const chain = openLive(r, `live-${backend.name}`);
      await r.drain();
      // A silent instance's session, left open: a sweep of a recorder still writing would seal it.
      const silent = await peers.start({ instanceId: `Z-${backend.name}`, key: keys.old });
      openLive(silent, `left-${backend.name}`);
      await silent.drain();
      await silent.store.heartbeat(silent.instanceId, { nowUs: 1 });

      let broken: Error | undefined;
      chain.onBroken = (err) => (broken = err);
      r.append(chain, 'message', 'toClient', 'delivered', '{"jsonrpc":"2.0","id":1,"result":{}}');
      const queued = chain.lastCommit!.promise;

      r.closeForWrites(new InstanceIdTakenError(r.instanceId));
      await assert.rejects(queued, RecordingUnavailableError);
      assert.ok(broken instanceof RecordingUnavailableError);
      assert.match(broken.message, /another gateway took over instance id/);
      assert.equal(r.accepting, false);
      assert.throws(() => openLive(r, `refused-${backend.name}`), RecordingUnavailableError);
      await assert.rejects(r.recordAccess('req', { decided: true }), RecordingUnavailableError);
      await r.sweep();
      assert.equal((await r.store.getSession(`left-${backend.name}`))!.status, 'open', "the silent instance's session is not sealed");
      assert.equal((await r.store.lastEvent(`live-${backend.name}`))!.kind, 'message');
      assert.equal((await r.store.events(`live-${backend.name}`, -1, 10)).length, 2, 'the queued event was not written');
    });
  });
}
