import { readFileSync } from 'node:fs';
import { childPids } from '../test/helpers/everything.js';
import type { Cluster } from '../test/helpers/replicas.js';
import { postgresSql } from '../test/helpers/stores.js';

/**
 * CPU time a replica cluster spends, summed over every process that serves it: the gateways, their stdio servers,
 * HAProxy, and the PostgreSQL backends connected to the cluster's database (not the server's shared background
 * processes). Per call, it is what the cluster costs whatever else runs on the machine: the throughput of a busy
 * shared machine swings with the neighbours, the CPU a call takes much less. Linux only (/proc).
 */

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on every Linux build this runs on). */
const ticksPerSecond = 100;

/** A process's user + system CPU in ms, or 0 once it has ended. */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces): state is the first, utime the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  } catch {
    return 0;
  }
}

export interface CpuBreakdown {
  gateways: number;
  servers: number;
  haproxy: number;
  postgres: number;
  total: number;
  /** How many stdio server processes the gateways ran at the end (the pools' sessions). */
  serverProcesses: number;
}

/** The cluster's processes now (servers come and go with the pools; backends with the connection pools). */
async function processesOf(cluster: Cluster): Promise<{ gateways: number[]; servers: number[]; haproxy: number[]; postgres: number[] }> {
  const gateways = cluster.replicas.filter((r) => r.running).map((r) => r.process.child.pid!);
  const database = new URL(cluster.store.url).pathname.slice(1);
  const backends = await postgresSql('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database]);
  return {
    gateways,
    servers: gateways.flatMap((pid) => childPids(pid)),
    haproxy: cluster.haproxy?.child.pid === undefined ? [] : [cluster.haproxy.child.pid],
    postgres: backends.rows.map((r) => Number((r as { pid: number }).pid)),
  };
}

/** CPU ms each part of the cluster has used so far, by process id (a delta is taken over the same processes). */
export async function cpuSnapshot(cluster: Cluster): Promise<Map<string, Map<number, number>>> {
  const parts = await processesOf(cluster);
  return new Map(Object.entries(parts).map(([part, pids]) => [part, new Map(pids.map((pid) => [pid, processCpuMs(pid)]))]));
}

/**
 * CPU ms used between `before` and now, per part: by the processes seen at either moment (one that started meanwhile
 * counts from 0; one that ended meanwhile is lost, which pooled servers and connections living for the whole part avoid).
 */
export async function cpuSince(cluster: Cluster, before: Map<string, Map<number, number>>): Promise<CpuBreakdown> {
  const now = await cpuSnapshot(cluster);
  const part = (name: string) => {
    const a = before.get(name) ?? new Map<number, number>();
    const b = now.get(name) ?? new Map<number, number>();
    let ms = 0;
    for (const [pid, cpu] of b) ms += Math.max(0, cpu - (a.get(pid) ?? 0));
    return ms;
  };
  const out = { gateways: part('gateways'), servers: part('servers'), haproxy: part('haproxy'), postgres: part('postgres') };
  return { ...out, total: out.gateways + out.servers + out.haproxy + out.postgres, serverProcesses: now.get('servers')?.size ?? 0 };
}
