/**
 * The cost of the internal hop: the p50/p99 of sequential `tools/call` (echo) on one legacy session, sent to the
 * replica that owns it (local) and to the other replica (forwarded over the hop), in alternating blocks so that drift
 * hits both alike. Two gateways in this process on one PostgreSQL schema, recording on, server-everything over stdio;
 * client, gateways and servers share the machine's cores, so this is the hop's added latency, not a scaling figure.
 * Run: `node dist/bench/hop.js [calls]` (PORTCULLIS_BENCH_POSTGRES, default the test database).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import type { PeerDirectory } from '../src/cluster/peer-directory.js';
import { demoServerEntry, parseConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { destroyAgent, openSession } from './mcp-client.js';
import { benchPostgresStore } from './postgres.js';

const calls = Number(process.argv[2] ?? 2000);
const block = 50;
process.env.PORTCULLIS_BENCH_CLUSTER_SECRET ??= 'bench-cluster-secret-0123456789abcdef';

const addresses = new Map<string, string>();
const peers: PeerDirectory = { addressOf: (id) => addresses.get(id) };
const bench = { identity: { subject: 'bench', issuer: 'urn:bench', groups: ['bench'] } };
const store = await benchPostgresStore();
const dirs: string[] = [];

async function replica(): Promise<Gateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-hop-bench-'));
  dirs.push(dataDir);
  const config = parseConfig(
    stringify({
      listen: '127.0.0.1:0',
      dataDir,
      store: store.url,
      cluster: { secret: '${env:PORTCULLIS_BENCH_CLUSTER_SECRET}' },
      log: { level: 'warn' },
      connections: {
        everything: { stdio: { command: process.execPath, args: [demoServerEntry(), 'stdio'] }, access: { groups: ['*'] }, tools: { pin: false } },
      },
    }),
    '(hop bench)',
  );
  return Gateway.start(config, {
    log: pino({ level: 'error' }),
    peers,
    authenticator: { authenticate: async () => bench, authenticateGateway: async () => bench },
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

const a = await replica();
const b = await replica();
try {
  for (const gw of [a, b]) addresses.set(gw.replicas.instance, gw.url);
  const local = await openSession(`${a.url}/mcp/everything`);
  const forwarded = await openSession(`${a.url}/mcp/everything`, undefined, `${b.url}/mcp/everything`);
  for (let i = 0; i < 200; i++) {
    await local.echo();
    await forwarded.echo();
  }
  const times = { local: [] as number[], forwarded: [] as number[] };
  for (let done = 0; done < calls; done += block) {
    for (const [name, session] of [
      ['local', local],
      ['forwarded', forwarded],
    ] as const) {
      for (let i = 0; i < block; i++) {
        const t = process.hrtime.bigint();
        await session.echo();
        times[name].push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }
  }
  const summary = Object.fromEntries(
    Object.entries(times).map(([name, ms]) => {
      const sorted = [...ms].sort((x, y) => x - y);
      return [name, { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) }];
    }),
  ) as Record<'local' | 'forwarded', { p50: number; p99: number }>;
  console.log(`Forwarded legacy request vs local, sequential tools/call (echo), ${calls} calls each after 200 warm-up`);
  console.log(`  local      p50 ${summary.local.p50.toFixed(3)} ms   p99 ${summary.local.p99.toFixed(3)} ms`);
  console.log(`  forwarded  p50 ${summary.forwarded.p50.toFixed(3)} ms   p99 ${summary.forwarded.p99.toFixed(3)} ms`);
  console.log(
    `  the hop adds ${(summary.forwarded.p50 - summary.local.p50).toFixed(3)} ms at p50 (×${(summary.forwarded.p50 / summary.local.p50).toFixed(2)})`,
  );
  await local.close();
  await forwarded.close();
} finally {
  destroyAgent();
  await a.stop();
  await b.stop();
  await store.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
