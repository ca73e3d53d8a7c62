import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { InternalAddressConflictError } from '../../src/cluster/address-conflicts.js';
import { bootNonce, thisProcess } from '../../src/cluster/boot.js';
import { Membership } from '../../src/cluster/membership.js';
import type { Store } from '../../src/store/store.js';
import { backends } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Two live replicas registered at one internal address (the default listen, 127.0.0.1, on several hosts and no
 * cluster.internalUrl): said as an error naming the key; refused when it is sure to be wrong (a loopback address a
 * replica on another machine holds).
 */

const silent = pino({ level: 'silent' });

/** A logger whose error lines the test reads. */
function errorLog(): { log: typeof silent; errors: Array<{ msg: string; replica?: string }> } {
  const errors: Array<{ msg: string; replica?: string }> = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line) as { msg: string; replica?: string }) });
  return { log, errors };
}

for (const backend of backends) {
  describe(`internal addresses shared by replicas (${backend.name})`, () => {
    const ts = backend.make();
    let store: Store;
    const members: Membership[] = [];
    const join = async (instanceId: string, address: string | undefined, log = silent) => {
      const m = await Membership.join({ store, instanceId, ...(address === undefined ? {} : { address }), goneAfterMs: 60_000, heartbeatMs: 100, log });
      members.push(m);
      return m;
    };
    /** A live replica on another machine (another kernel), beaten by hand. */
    const elsewhere = async (id: string, address: string) => {
      const boot = bootNonce({ host: 'another-host', pid: 7, pidNamespace: '00000000-0000-4000-8000-000000000000:4026531836' });
      assert.equal(await store.claimMember({ id, address, startedAtUs: Date.now() * 1000, boot }, undefined), true);
      await store.beatMember(id, boot, 'serving', address);
    };

    after(async () => {
      for (const m of members) await m.leave().catch(() => {});
      await store?.close();
      await ts.destroy();
    });

    it('says, as an error naming cluster.internalUrl, that another live replica is registered at the same address, once', async () => {
      store = await ts.open();
      const first = errorLog();
      const a = await join('a-one', 'http://127.0.0.1:8080', first.log);
      const second = errorLog();
      await join('a-two', 'http://127.0.0.1:8080', second.log);
      assert.equal(second.errors.length, 1);
      assert.equal(second.errors[0]!.replica, 'a-one');
      assert.match(second.errors[0]!.msg, /replica 'a-one' is registered at this replica's internal address http:\/\/127\.0\.0\.1:8080 too/);
      assert.match(second.errors[0]!.msg, /set cluster\.internalUrl on each replica/);
      await a.refresh();
      await waitFor(() => first.errors.some((e) => e.replica === 'a-two'), 'the first replica to say it too');
      await a.refresh();
      assert.equal(first.errors.length, 1, 'said once');
    });

    it('refuses to register a loopback address that a live replica on another machine holds, naming cluster.internalUrl', async () => {
      await elsewhere('a-far', 'http://127.0.0.1:9090');
      const newcomer = await join('a-new', undefined);
      await assert.rejects(newcomer.listening('http://127.0.0.1:9090'), (err: Error) => {
        assert.ok(err instanceof InternalAddressConflictError);
        assert.match(err.message, /127\.0\.0\.1:9090 is a loopback address, and replica 'a-far' on another machine is registered at it too/);
        assert.match(err.message, /set cluster\.internalUrl/);
        return true;
      });
      assert.equal((await store.member('a-new'))?.address, null, 'the address was not registered');
    });

    it('only says so for an address it cannot tell is wrong: not loopback, or a replica on this machine', async () => {
      await elsewhere('a-far-lan', 'http://10.0.0.7:8080');
      const logged = errorLog();
      const lan = await join('a-lan', undefined, logged.log);
      await lan.listening('http://10.0.0.7:8080');
      assert.ok(logged.errors.some((e) => e.replica === 'a-far-lan'));
      // Another process of this machine (a container with its own network, say), at the same loopback address.
      const near = bootNonce({ ...thisProcess(), pid: thisProcess().pid + 1 });
      assert.equal(await store.claimMember({ id: 'a-near', address: 'http://127.0.0.1:7070', startedAtUs: Date.now() * 1000, boot: near }, undefined), true);
      const local = await join('a-local', undefined);
      await local.listening('http://127.0.0.1:7070');
      assert.equal((await store.member('a-local'))?.address, 'http://127.0.0.1:7070');
    });
  });
}
