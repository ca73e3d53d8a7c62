import { isLoopbackHost } from '../net/loopback.js';
import type { MemberRow } from '../store/cluster.js';
import { onAnotherMachine, type ProcessPlace, thisProcess } from './boot.js';

/**
 * Two live replicas registered at one internal address (each listening on 127.0.0.1 on its own host, with no
 * cluster.internalUrl, say): a hop meant for one reaches the other, or the sender itself, and their legacy sessions
 * answer 404 through any replica but their owner.
 */

const fix =
  'set cluster.internalUrl on each replica to the address the others reach it at (e.g. http://10.0.1.23:8080; in Kubernetes, the pod IP), ' +
  'or listen on 0.0.0.0 (the first non-loopback address of the machine is then used)';

/** This replica would register a loopback address that a live replica on another machine registered too. */
export class InternalAddressConflictError extends Error {
  constructor(address: string, replicas: readonly string[]) {
    super(
      `this replica's internal address ${address} is a loopback address, and replica ${replicas.map((id) => `'${id}'`).join(', ')} on another machine ` +
        `is registered at it too: neither can reach the other there, and hops meant for either would reach the sender. This one does not start: ${fix}`,
    );
    this.name = 'InternalAddressConflictError';
  }
}

/** The live replicas other than `selfId` registered at `address`. */
export function sharingAddress(address: string | null, selfId: string, members: Iterable<MemberRow>, alive: (m: MemberRow) => boolean): MemberRow[] {
  if (address === null) return [];
  return [...members].filter((m) => m.id !== selfId && m.address === address && alive(m));
}

/** What is logged, as an error, of a live replica registered at this one's address. */
export function sharedAddressMessage(replica: string, address: string): string {
  return `replica '${replica}' is registered at this replica's internal address ${address} too: hops meant for one of them reach the other, and their legacy sessions answer 404 elsewhere: ${fix}`;
}

/**
 * Why this replica must not register `address`, or undefined: refused only when it is sure to be wrong, a loopback
 * address that a live replica on another machine (told by its kernel's boot id, boot.ts) registered too.
 */
export function loopbackConflict(
  address: string,
  selfId: string,
  members: Iterable<MemberRow>,
  alive: (m: MemberRow) => boolean,
  place: ProcessPlace = thisProcess(),
): InternalAddressConflictError | undefined {
  if (!isLoopbackHost(new URL(address).hostname)) return undefined;
  const elsewhere = sharingAddress(address, selfId, members, alive).filter((m) => onAnotherMachine(m.boot, place));
  return elsewhere.length === 0
    ? undefined
    : new InternalAddressConflictError(
        address,
        elsewhere.map((m) => m.id),
      );
}
