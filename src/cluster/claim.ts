import type { Logger } from 'pino';
import type { ClusterStore, MemberRow } from '../store/cluster.js';
import { earlierProcessDead } from './boot.js';

/** Taking an instance id in the membership, and the errors of two processes with one id. */

export class DuplicateInstanceError extends Error {
  constructor(id: string, address: string | null) {
    super(
      `another gateway is running with instance id '${id}'${address ? ` (at ${address})` : ''} on this store: two live gateways must not share ` +
        "one, or each would seal the other's sessions. Give each replica its own recording.instanceId (or its own data directory, where the id is kept), " +
        'or stop the other one first',
    );
    this.name = 'DuplicateInstanceError';
  }
}

/** This replica's instance id was taken by another process (another boot holds its row): it must stop serving. */
export class InstanceIdTakenError extends Error {
  constructor(id: string) {
    super(
      `another gateway took over instance id '${id}' (recording.instanceId) on this store while this one was silent past cluster.goneAfter: ` +
        "two gateways share it, and each would seal the other's sessions. This one stops. Give each replica its own recording.instanceId " +
        '(or its own data directory, where the id is kept)',
    );
    this.name = 'InstanceIdTakenError';
  }
}

export interface ClaimOptions {
  store: ClusterStore;
  instanceId: string;
  /** The claiming process's boot nonce (boot.ts). */
  boot: string;
  address: string | null;
  startedAtUs: number;
  goneAfterMs: number;
  heartbeatMs: number;
  log: Logger;
  /** Whether a row read apart from the table is alive by the membership's measure. */
  alive: (row: MemberRow) => boolean;
  /** The monotonic clock (ms) the watch of a fresh row is timed on. */
  monotonic: () => number;
}

/**
 * Registers this process under its instance id. A row of the same id whose heartbeat is fresh belongs to a live
 * process, or to one that just died (a crash, then a quick restart): unless it is known dead (boot.ts), it is watched
 * for goneAfter and a heartbeat more, and if it beats again the claim fails with DuplicateInstanceError; if not, it is
 * gone by the membership's own measure and the id is taken over (the earlier process, should it wake, finds its row
 * taken and stops: InstanceIdTakenError).
 */
export async function claimInstanceId(o: ClaimOptions): Promise<void> {
  const { store, instanceId: id, heartbeatMs } = o;
  const row = { id, address: o.address, startedAtUs: o.startedAtUs, boot: o.boot };
  for (let attempt = 0; attempt < 5; attempt++) {
    const existing = await store.member(id);
    if (existing !== undefined && o.alive(existing) && !earlierProcessDead(existing.boot)) {
      // Beating still? Watch it until it would be gone by the membership's measure, and a heartbeat more: a process
      // whose beats stall for less than that (a pause, a slow store) keeps its id.
      const deadline = o.monotonic() + o.goneAfterMs + heartbeatMs;
      o.log.warn({ instance: id, boot: existing.boot }, 'instance id has a fresh heartbeat: checking whether another gateway holds it');
      while (o.monotonic() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(250, heartbeatMs / 4)));
        const now = await store.member(id);
        if (now !== undefined && now.heartbeatAtUs !== existing.heartbeatAtUs && now.state !== 'gone') throw new DuplicateInstanceError(id, now.address);
      }
      o.log.warn({ instance: id }, 'the earlier process with this instance id is silent (it crashed or was killed): taking the id over');
    }
    if (await store.claimMember(row, existing === undefined ? undefined : existing.boot)) return;
    // Another process claimed it in between: look again.
  }
  throw new DuplicateInstanceError(id, null);
}
