import { type Cluster, startCluster } from '../test/helpers/replicas.js';
import type { Verdicts } from './bridges.js';
import { type CpuBreakdown, cpuSince, cpuSnapshot } from './cluster-cpu.js';
import { benchLimits, everythingStdioConnection } from './processes.js';
import { type ClientKind, connect, echo, shortSession } from './sessions.js';

/**
 * Issue 18: three gateway replicas on one PostgreSQL database behind HAProxy (round-robin, no stickiness) against one
 * replica behind the same HAProxy setup, 32 long-lived clients in a closed loop of `tools/call` (echo), for each client
 * era: v2 clients pinned to 2026-07-28 (each request served where it lands) and v1 SDK clients (2025-era sessions: a
 * request that lands on a replica other than its session's owner is forwarded over the internal hop, src/cluster/hop.ts,
 * so with three replicas two requests in three take it). Everything shares this machine's cores, so the ratio measures
 * what coordination and the extra processes cost, not scaling: on separate machines each replica would bring its own cores.
 * Recording is on (write-ahead, PostgreSQL), as a replicated deployment runs.
 */

export interface ReplicaBenchSettings {
  clients: number;
  rounds: number;
  /** Each target warms until its rate stops climbing, for at least `warmMs` and at most `warmMaxMs`; then `roundMs` per target per round. */
  warmMs: number;
  warmMaxMs: number;
  roundMs: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, digits = 2) => n.toFixed(digits);

type Connected = Awaited<ReturnType<typeof connect>>;

/**
 * `pool` calling in a closed loop for `ms`: calls/s completed. A failed call does not count, and is tallied with its
 * first message: HAProxy in front means a transport error can come from it, which the figures must show, not hide.
 */
async function closedLoop(pool: Connected[], ms: number, failures: Map<string, number>): Promise<number> {
  return (await countedLoop(pool, ms, failures)).rate;
}

/** The same, with the number of calls completed; paced to at most `perSecond` calls a second over the pool when given. */
async function countedLoop(pool: Connected[], ms: number, failures: Map<string, number>, perSecond?: number): Promise<{ rate: number; calls: number }> {
  let calls = 0;
  const start = performance.now();
  const end = start + ms;
  // Each client starts its next call no sooner than its share of the rate allows.
  const interval = perSecond === undefined ? 0 : (pool.length * 1000) / perSecond;
  await Promise.all(
    pool.map(async (c, i) => {
      let next = start + (interval * i) / pool.length;
      while (performance.now() < end) {
        if (interval > 0) {
          const wait = next - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          next += interval;
          if (performance.now() >= end) break;
        }
        try {
          await echo(c.client);
          calls++;
        } catch (err) {
          tally(failures, err);
        }
      }
    }),
  );
  return { rate: calls / ((performance.now() - start) / 1000), calls };
}

/** Counts a failure under its first message and its cause's. */
function tally(failures: Map<string, number>, err: unknown): void {
  const cause = (err as { cause?: { message?: string } }).cause?.message;
  const key = `${(err as Error).message.slice(0, 120)}${cause ? ` (${cause})` : ''}`;
  failures.set(key, (failures.get(key) ?? 0) + 1);
}

/**
 * Connects one long-lived client, again after a failure (tallied like a failed call), waiting a little longer each
 * time: a connection HAProxy resets, or a moment when its health checks (answered late by replicas on a loaded machine)
 * leave no replica up, must not end the part, and the figures still show it.
 */
async function connectTallied(target: Parameters<typeof connect>[0], failures: Map<string, number>): Promise<Connected> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect(target);
    } catch (err) {
      tally(failures, err);
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, attempt * 1000));
    }
  }
}

/**
 * Runs the pool in windows until its rate stops climbing (three windows without a new best by more than 5%), after
 * at least `warmMs` and at most `warmMaxMs`: each replica's JIT and each pooled server process warm only on the
 * requests they get, so three replicas, each seeing a third of them, take longer to reach their steady state.
 */
async function warmUp(pool: Connected[], s: ReplicaBenchSettings, failures: Map<string, number>): Promise<number> {
  const start = performance.now();
  let best = 0;
  let sinceBest = 0;
  for (;;) {
    const rate = await closedLoop(pool, 3000, failures);
    if (rate > best * 1.05) {
      best = rate;
      sinceBest = 0;
    } else {
      sinceBest++;
    }
    const elapsed = performance.now() - start;
    if (elapsed >= s.warmMaxMs || (elapsed >= s.warmMs && sinceBest >= 3)) return elapsed;
  }
}

function startReplicas(count: number): Promise<Cluster> {
  return startCluster({
    count,
    connections: { everything: everythingStdioConnection() },
    extra: { log: { level: 'warn' }, limits: benchLimits, sessions: { idleTimeout: '1h' } },
  });
}

/** One era's comparison: calls/s per round of each cluster, and the median ratio three / one. */
async function era(kind: ClientKind, label: string, clusters: Map<string, Cluster>, s: ReplicaBenchSettings): Promise<Record<string, unknown>> {
  const pools = new Map<string, Connected[]>();
  try {
    const targets = new Map([...clusters].map(([name, cluster]) => [name, { name, url: cluster.mcp('everything').href, headers: cluster.auth, client: kind }]));
    // A short session on each cluster first: it fails at once where a cluster cannot serve this era, before any pool.
    for (const [name, target] of targets) {
      try {
        await shortSession(target);
      } catch (err) {
        console.log(`${label}: ${name} unavailable: ${(err as Error).message.slice(0, 200)}`);
        return { unavailable: `${name}: ${(err as Error).message}` };
      }
    }
    const failures = new Map<string, number>();
    for (const [name, target] of targets) pools.set(name, await Promise.all(Array.from({ length: s.clients }, () => connectTallied(target, failures))));
    for (const [name, pool] of pools) console.log(`${label.padEnd(30)} ${name}: warm after ${fmt((await warmUp(pool, s, failures)) / 1000, 0)} s`);
    const rates = new Map<string, number[]>([...clusters.keys()].map((n) => [n, []]));
    const cpu = new Map<string, CpuBreakdown[]>([...clusters.keys()].map((n) => [n, []]));
    const names = [...clusters.keys()];
    for (let round = 0; round < s.rounds; round++) {
      for (const name of names.map((_, i) => names[(i + round) % names.length]!)) {
        const before = await cpuSnapshot(clusters.get(name)!);
        const { rate, calls } = await countedLoop(pools.get(name)!, s.roundMs, failures);
        rates.get(name)!.push(rate);
        cpu.get(name)!.push(perCall(await cpuSince(clusters.get(name)!, before), calls));
      }
    }
    const [one, three] = names;
    const ratios = rates.get(three!)!.map((r, i) => r / rates.get(one!)![i]!);
    // CPU per call, one / three: how much of one replica's efficiency three keep (1 = coordination costs nothing).
    const cpuRatios = cpu.get(three!)!.map((c, i) => cpu.get(one!)![i]!.total / c.total);
    for (let round = 0; round < s.rounds; round++) {
      console.log(
        `${label.padEnd(30)} round ${round + 1}: ${names.map((n) => `${n} ${fmt(rates.get(n)![round]!, 0)} calls/s`).join(', ')}; ${fmt(ratios[round]!)}×`,
      );
      for (const n of names) console.log(`${label.padEnd(30)}   ${n}: CPU per call ${describeCpu(cpu.get(n)![round]!)}`);
    }
    // The control: one replica carrying what each of three carries (a third of the clients, paced to a third of the
    // three replicas' rate in that round). If its CPU per call is near the three replicas', their extra cost is that
    // of a less loaded process (fewer messages per wake-up, smaller batches per commit), not of anything they coordinate.
    const thirdClients = Math.max(1, Math.round(s.clients / 3));
    const thirdCpu: CpuBreakdown[] = [];
    const thirdRates: number[] = [];
    for (let round = 0; round < s.rounds; round++) {
      const before = await cpuSnapshot(clusters.get(one!)!);
      const { rate, calls } = await countedLoop(pools.get(one!)!.slice(0, thirdClients), s.roundMs, failures, rates.get(three!)![round]! / 3);
      thirdRates.push(rate);
      thirdCpu.push(perCall(await cpuSince(clusters.get(one!)!, before), calls));
    }
    for (const [round, c] of thirdCpu.entries())
      console.log(
        `${label.padEnd(30)} control round ${round + 1}: 1 replica, ${thirdClients} clients: ${fmt(thirdRates[round]!, 0)} calls/s, CPU per call ${describeCpu(c)}`,
      );
    const ratio = median(ratios);
    const cpuRatio = median(cpuRatios);
    const controlRatio = median(thirdCpu.map((c, i) => c.total / cpu.get(three!)![i]!.total));
    console.log(
      `${label.padEnd(30)} CPU per call, 1 replica with ${thirdClients} clients / 3 replicas with ${s.clients}: median ${fmt(controlRatio)}× (1 = the three cost no more than one process as loaded as each)`,
    );
    console.log(`${label.padEnd(30)} median ${fmt(ratio)}× (three replicas / one)`);
    console.log(`${label.padEnd(30)} CPU per call, one replica / three: median ${fmt(cpuRatio)}× (rounds ${cpuRatios.map((r) => fmt(r)).join(', ')})`);
    for (const [message, count] of failures) console.log(`${label.padEnd(30)} ${count} failed call(s): ${message}`);
    return {
      rates: Object.fromEntries(rates),
      ratios,
      ratio,
      cpuPerCall: Object.fromEntries(cpu),
      cpuRatios,
      cpuRatio,
      control: { clients: thirdClients, rates: thirdRates, cpuPerCall: thirdCpu, ratio: controlRatio },
      failures: Object.fromEntries(failures),
    };
  } finally {
    for (const pool of pools.values())
      await Promise.all(
        pool.map(async (c) =>
          c
            .end()
            .catch(() => {})
            .then(() => c.client.close()),
        ),
      );
  }
}

/** A cluster's CPU over a round, in ms per call. */
function perCall(c: CpuBreakdown, calls: number): CpuBreakdown {
  const per = (ms: number) => (calls === 0 ? 0 : ms / calls);
  return {
    gateways: per(c.gateways),
    servers: per(c.servers),
    haproxy: per(c.haproxy),
    postgres: per(c.postgres),
    total: per(c.total),
    serverProcesses: c.serverProcesses,
  };
}

const describeCpu = (c: CpuBreakdown) =>
  `${fmt(c.total, 3)} ms (gateways ${fmt(c.gateways, 3)}, ${c.serverProcesses} servers ${fmt(c.servers, 3)}, HAProxy ${fmt(c.haproxy, 3)}, PostgreSQL ${fmt(c.postgres, 3)})`;

/** An era's figures, or the error that stopped it (printed): the other era and the other parts still run. */
async function reported(label: string, run: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  try {
    return await run();
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    const message = `${(err as Error).message}${cause ? ` (${cause})` : ''}`;
    console.log(`${label.padEnd(30)} FAILED: ${message.slice(0, 300)}`);
    return { failed: message };
  }
}

export async function replicasBehindHaproxy(verdicts: Verdicts, s: ReplicaBenchSettings): Promise<Record<string, unknown>> {
  console.log(
    `\nReplicas behind HAProxy (round-robin, no stickiness), one PostgreSQL database each cluster, recording on: ${s.clients} long-lived clients, closed loop of tools/call (echo); ${s.rounds} round(s) of ${s.roundMs} ms per cluster after warming each until its rate stopped climbing`,
  );
  const clusters = new Map<string, Cluster>();
  try {
    clusters.set('1 replica', await startReplicas(1));
    clusters.set('3 replicas', await startReplicas(3));
    const modern = await reported('v2 pinned to 2026-07-28', () => era('v2-modern', 'v2 pinned to 2026-07-28', clusters, s));
    if (typeof modern.ratio === 'number') {
      verdicts.push({
        target: 'calls/s 3 replicas / 1 replica behind HAProxy, modern clients (32 clients, median)',
        value: modern.ratio,
        limit: '≥ 0.85',
        pass: modern.ratio >= 0.85,
      });
    }
    const legacy = await reported('v1 SDK (legacy sessions)', () => era('v1', 'v1 SDK (legacy sessions)', clusters, s));
    if (typeof legacy.ratio === 'number') {
      verdicts.push({
        target: 'calls/s 3 replicas / 1 replica behind HAProxy, legacy clients (32 clients, median)',
        value: legacy.ratio,
        limit: '≥ 0.85',
        pass: legacy.ratio >= 0.85,
      });
    }
    return { modern, legacy };
  } finally {
    await Promise.all([...clusters.values()].map((c) => c.stop()));
  }
}
