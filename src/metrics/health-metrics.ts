import { Gauge, type Registry } from 'prom-client';

/** Where the health gauges read from; a part that is off (no recording, no cluster, no virtual server) is left out. */
export interface HealthSources {
  /** Whether the recording store takes writes now (in either recording mode). */
  recordingHealthy?: () => boolean;
  /** The replicas sharing the store as this one last read the membership: each, and whether it is alive. */
  replicas?: () => ReadonlyArray<{ id: string; alive: boolean }>;
  /** Each member of each virtual server, and whether it is up as the virtual sessions last found it. */
  virtualMembers?: () => ReadonlyArray<{ server: string; member: string; up: boolean }>;
}

/**
 * The gauges to alert on when a part the gateway depends on is down (docs/operations.md): the recording store, the
 * other replicas, the members of virtual servers. Read when scraped, from the state the gateway already keeps.
 */
export function registerHealthMetrics(registry: Registry, sources: HealthSources): void {
  const registers = [registry];
  const { recordingHealthy, replicas, virtualMembers } = sources;
  if (recordingHealthy !== undefined)
    new Gauge({
      name: 'portcullis_recording_store_up',
      help: 'Whether the recording store takes writes (1), or is unavailable (0: write-ahead ends sessions and refuses new ones; best-effort goes on unrecorded)',
      registers,
      collect() {
        this.set(recordingHealthy() ? 1 : 0);
      },
    });
  if (replicas !== undefined)
    new Gauge({
      name: 'portcullis_replica_alive',
      help: 'The replicas sharing the store as this one last read the membership: 1 heart-beating, 0 gone (silent past cluster.goneAfter, or left)',
      labelNames: ['instance'],
      registers,
      collect() {
        this.reset();
        for (const r of replicas()) this.set({ instance: r.id }, r.alive ? 1 : 0);
      },
    });
  if (virtualMembers !== undefined)
    new Gauge({
      name: 'portcullis_virtual_member_up',
      help: 'Each member of a virtual server: 1 up, 0 left out of its virtual server (unreachable, failing), as its sessions last found it',
      labelNames: ['virtual_server', 'member'],
      registers,
      collect() {
        this.reset();
        for (const m of virtualMembers()) this.set({ virtual_server: m.server, member: m.member }, m.up ? 1 : 0);
      },
    });
}
