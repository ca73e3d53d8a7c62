import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * A process's boot nonce, the `boot` of its membership row: what tells it from an earlier run, or from a duplicate,
 * with the same instance id. It says where the process runs (`host/pid/namespace/random`), so that a restart in the
 * same place can tell at once that the earlier process is dead.
 *
 * A pid names a process only within its PID namespace, and a host name does not name one: containers that share the
 * host's name (Docker's --network host, Kubernetes' hostNetwork pods) each have their own, and two machines may share
 * a name. So the place names the kernel (its boot id) and the PID namespace (its inode) too, and the earlier process
 * is known dead only when it ran in this very namespace; anywhere else, it is watched as a process on another host is.
 */

export interface ProcessPlace {
  host: string;
  pid: number;
  /**
   * The kernel's boot id and the PID namespace's inode (`<boot id>:<inode>`); null where they cannot be read (not
   * Linux, or no /proc): then no pid is known dead by this process.
   */
  pidNamespace: string | null;
}

let here: ProcessPlace | undefined;

/** Where this process runs. */
export function thisProcess(): ProcessPlace {
  here ??= { host: hostname(), pid: process.pid, pidNamespace: pidNamespace() };
  return here;
}

function pidNamespace(): string | null {
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const inode = /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    return bootId !== '' && inode !== undefined ? `${bootId}:${inode}` : null;
  } catch {
    return null;
  }
}

/** A new boot nonce for a process at `place`. */
export function bootNonce(place: ProcessPlace = thisProcess()): string {
  return `${place.host}/${place.pid}/${place.pidNamespace ?? '-'}/${randomBytes(9).toString('base64url')}`;
}

/** Where the process of a boot nonce ran; undefined for one that does not say (written by an earlier version, or by hand). */
export function placeOf(boot: string | null): ProcessPlace | undefined {
  const parts = (boot ?? '').split('/');
  if (parts.length !== 4) return undefined;
  const [host, pid, ns] = parts as [string, string, string, string];
  const n = Number(pid);
  if (host === '' || !Number.isInteger(n) || n <= 0) return undefined;
  return { host, pid: n, pidNamespace: ns === '-' ? null : ns };
}

/**
 * Whether a boot nonce names a process on another machine than this one: another kernel (its boot id). False when it
 * cannot be told (either one's kernel unknown); containers of one machine share its kernel.
 */
export function onAnotherMachine(boot: string | null, place: ProcessPlace = thisProcess()): boolean {
  const kernel = (p: ProcessPlace | undefined) => p?.pidNamespace?.split(':')[0];
  const there = kernel(placeOf(boot));
  const here = kernel(place);
  return there !== undefined && here !== undefined && there !== here;
}

/**
 * Whether a boot nonce names a process of this PID namespace (same host, kernel and namespace) that no longer runs,
 * so that its instance id is free without waiting. `signal` is process.kill's probe (signal 0).
 */
export function earlierProcessDead(boot: string | null, place: ProcessPlace = thisProcess(), signal = (pid: number) => process.kill(pid, 0)): boolean {
  const there = placeOf(boot);
  if (there === undefined || there.host !== place.host || there.pid === place.pid) return false;
  if (place.pidNamespace === null || there.pidNamespace !== place.pidNamespace) return false;
  try {
    signal(there.pid);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
