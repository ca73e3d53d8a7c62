import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { bootNonce, earlierProcessDead, placeOf, thisProcess } from '../../src/cluster/boot.js';

/** Boot nonces: where a process runs, and when an earlier process with an instance id is known dead without waiting. */

describe('boot nonces', () => {
  it('name the host, the pid, the kernel and the PID namespace of this process', () => {
    const place = thisProcess();
    assert.equal(place.host, hostname());
    assert.equal(place.pid, process.pid);
    // The kernel's boot id and the namespace's inode, as /proc says (this suite runs on Linux).
    const inode = /\d+/.exec(readlinkSync('/proc/self/ns/pid'))![0];
    assert.equal(place.pidNamespace, `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}:${inode}`);
    const boot = bootNonce();
    assert.deepEqual(placeOf(boot), place);
    assert.notEqual(bootNonce(), boot, 'each nonce its own');
  });

  // A process that ran and exited: its pid names no process now.
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;

  it('know an earlier process dead only when it ran in this PID namespace and its pid names no process', () => {
    const here = thisProcess();
    assert.equal(earlierProcessDead(bootNonce({ ...here, pid: dead })), true);
    assert.equal(earlierProcessDead(bootNonce({ ...here, pid: process.ppid })), false, 'a live process');
    assert.equal(earlierProcessDead(bootNonce(here)), false, 'this process');
  });

  it('never in another PID namespace or on another host: the pid means nothing here', () => {
    const here = thisProcess();
    const [bootId, inode] = here.pidNamespace!.split(':') as [string, string];
    // Another container sharing this host's name (Docker --network host), another kernel, another host.
    assert.equal(earlierProcessDead(bootNonce({ ...here, pid: dead, pidNamespace: `${bootId}:${Number(inode) + 1}` })), false);
    assert.equal(earlierProcessDead(bootNonce({ ...here, pid: dead, pidNamespace: `00000000-0000-0000-0000-000000000000:${inode}` })), false);
    assert.equal(earlierProcessDead(bootNonce({ ...here, host: `${here.host}-other`, pid: dead })), false);
    // Where this process cannot tell its namespace, nor when the nonce does not say one (an earlier version's).
    assert.equal(earlierProcessDead(bootNonce({ ...here, pid: dead, pidNamespace: null }), { ...here, pidNamespace: null }), false);
    assert.equal(earlierProcessDead(`${here.host}/${dead}/x`), false);
    assert.equal(earlierProcessDead(null), false);
  });
});
