import type { Cluster } from '../cluster/cluster.js';
import type { GatewayConfig } from '../config/schema.js';
import type { HealthSources } from '../metrics/health-metrics.js';
import type { Recorder } from '../recording/recorder.js';
import type { MemberHealth } from '../virtual/member-health.js';

/** What the health gauges read (src/metrics/health-metrics.ts), from the parts of this gateway that are on. */
export function healthSources(config: GatewayConfig, recording: { recorder?: Recorder; cluster?: Cluster }, members: MemberHealth | undefined): HealthSources {
  const { recorder, cluster } = recording;
  const servers = [...config.connections.values()].filter((c) => c.upstream.kind === 'virtual').map((c) => c.name);
  return {
    ...(recorder === undefined ? {} : { recordingHealthy: () => recorder.healthy }),
    ...(cluster === undefined ? {} : { replicas: () => cluster.membership.members().map((m) => ({ id: m.id, alive: cluster.membership.isAlive(m.id) })) }),
    ...(members === undefined || servers.length === 0
      ? {}
      : { virtualMembers: () => servers.flatMap((server) => members.of(server).map((m) => ({ server, member: m.member, up: m.up }))) }),
  };
}
