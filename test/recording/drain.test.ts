import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withinBound } from '../../src/recording/batch-writer.js';
import type { Commit } from '../../src/recording/commit.js';
import type { Recorder, SessionChain } from '../../src/recording/recorder.js';
import { testSigner } from '../helpers/encryption.js';
import { openLive, RecorderPeers } from '../helpers/recorder-peers.js';
import { backends } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Recorder.drain() under load that never pauses (clients each writing their next message as soon as the last is
 * durable): it waits for what was pending when it was called, not for a moment when nothing is, which never comes.
 * The sweeper, which drains before sealing a session of this instance, seals another instance's without waiting.
 */

const clients = 16;

/** Fails saying `what` when `work` has not settled within 10 s (a failure only: success never waits on the bound). */
async function within(work: Promise<void>, what: string): Promise<void> {
  const outcome = await withinBound(work, 10_000);
  if (outcome === 'timed out') assert.fail(`${what} within 10 s while the clients wrote on`);
  if (outcome instanceof Error) throw outcome;
}

for (const backend of backends) {
  describe(`draining under saturated load (${backend.name})`, () => {
    let peers: RecorderPeers;
    let recorder: Recorder;
    let stop = false;
    let loops: Promise<void>[] = [];
    let chains: SessionChain[] = [];

    before(async () => {
      peers = new RecorderPeers(backend.make());
      recorder = await peers.start({ instanceId: `busy-${backend.name}`, key: testSigner().key, recoversOthers: () => true });
      chains = Array.from({ length: clients }, (_, i) => openLive(recorder, `s${i}-${backend.name}`));
      // Write-ahead, without a pause: each message goes on once the last one is durable.
      loops = chains.map(async (chain) => {
        while (!stop) {
          recorder.append(chain, 'message', 'toServer', 'received', '{"jsonrpc":"2.0","id":1,"method":"tools/call"}');
          await chain.lastCommit!.promise;
        }
      });
      await waitFor(() => recorder.stats.commits >= 50, 'the clients to be writing');
    });
    after(async () => {
      stop = true;
      await Promise.allSettled(loops);
      await peers?.destroy();
    });

    it('drain() resolves once the commits pending when it was called have landed', async () => {
      for (let round = 0; round < 3; round++) {
        const pending: Commit[] = chains.map((c) => c.lastCommit!).filter((c) => !c.done);
        const eventsBefore = recorder.stats.events;
        await within(recorder.drain(), 'drain() did not resolve');
        assert.ok(pending.length > 0, 'some commits were pending');
        assert.deepEqual(
          pending.filter((c) => !c.done),
          [],
          'every commit pending at the call had landed',
        );
        assert.ok(recorder.stats.events > eventsBefore);
        assert.ok(recorder.healthy, recorder.lastError?.message);
      }
    });

    it("a sweep seals another instance's session left open without waiting for this one's traffic to pause", async () => {
      // Another instance's session, left open; that instance has been silent for long, by the store's clock.
      const gone = await peers.start({ instanceId: `gone-${backend.name}`, key: testSigner().key });
      openLive(gone, `left-${backend.name}`);
      await gone.drain();
      await gone.store.heartbeat(gone.instanceId, { nowUs: 1 });
      await within(recorder.sweep(), 'the sweep did not finish');
      const left = (await recorder.store.getSession(`left-${backend.name}`))!;
      assert.equal(left.status, 'cut-off');
      assert.match(left.closeReason!, new RegExp(`gateway instance gone-${backend.name} stopped without closing the session`));
    });
  });
}
