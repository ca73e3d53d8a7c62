/**
 * The cost of the internal hop (issue 18): the p50/p99 of sequential `tools/call` (echo) on one legacy session, sent to
 * the replica that owns it (local) and to the other replica (forwarded over the hop), in alternating blocks so that
 * drift hits both alike. Two gateways in this process on one PostgreSQL schema, recording on, server-everything over
 * stdio; client, gateways and servers share the machine's cores, so this is the hop's added latency, not a scaling
 * figure. A part of `npm run bench` (`--only hop`), or alone: `node dist/bench/hop.js [calls]`
 * (PORTCULLIS_BENCH_POSTGRES, default the test database).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { stringify } from 'yaml';
import type { PeerDirectory } from '../src/cluster/peer-directory.js';
import { demoServerEntry, parseConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { destroyAgent, openSession } from './mcp-client.js';
import { benchClusterSecret, benchPostgresStore } from './postgres.js';

export interface HopBenchSettings {
  /** Calls measured on each path. */
  calls: number;
  /** Calls on each path before measuring. */
  warm: number;
}

/** Calls on one path before switching to the other. */
const block = 50;
const bench = { identity: { subject: 'bench', issuer: 'urn:bench', groups: ['bench'] } };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Local vs forwarded legacy requests: each path's p50 and p99 (ms), and what the hop adds at p50. */
export async function forwardedVsLocal(s: HopBenchSettings): Promise<Record<string, unknown>> {
  const addresses = new Map<string, string>();
  const peers: PeerDirectory = { addressOf: (id) => addresses.get(id) };
  const store = await benchPostgresStore();
  const dirs: string[] = [];
  const replica = async (): Promise<Gateway> => {
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-hop-bench-'));
    dirs.push(dataDir);
    const config = parseConfig(
      stringify({
        listen: '127.0.0.1:0',
        dataDir,
        store: store.url,
        cluster: { secret: benchClusterSecret() },
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
  };
  const gateways: Gateway[] = [];
  try {
    const a = await replica();
    gateways.push(a);
    const b = await replica();
    gateways.push(b);
    for (const gw of gateways) addresses.set(gw.replicas.instance, gw.url);
    // Both sessions are owned by a; the forwarded one's calls are sent to b, which forwards them to a.
    const local = await openSession(`${a.url}/mcp/everything`);
    const forwarded = await openSession(`${a.url}/mcp/everything`, undefined, `${b.url}/mcp/everything`);
    for (let i = 0; i < s.warm; i++) {
      await local.echo();
      await forwarded.echo();
    }
    const times = { local: [] as number[], forwarded: [] as number[] };
    for (let done = 0; done < s.calls; done += block) {
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
    await local.close();
    await forwarded.close();
    const summary = Object.fromEntries(
      Object.entries(times).map(([name, ms]) => {
        const sorted = [...ms].sort((x, y) => x - y);
        return [name, { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), calls: ms.length }];
      }),
    ) as Record<'local' | 'forwarded', { p50: number; p99: number; calls: number }>;
    const addedP50Ms = summary.forwarded.p50 - summary.local.p50;
    const ratio = summary.forwarded.p50 / summary.local.p50;
    console.log(
      `\nForwarded legacy request vs local: two replicas on one PostgreSQL (recording on), one legacy session owned by the first, sequential tools/call (echo), ${summary.local.calls} calls each after ${s.warm} warm-up`,
    );
    console.log(`  local      p50 ${summary.local.p50.toFixed(3)} ms   p99 ${summary.local.p99.toFixed(3)} ms`);
    console.log(`  forwarded  p50 ${summary.forwarded.p50.toFixed(3)} ms   p99 ${summary.forwarded.p99.toFixed(3)} ms`);
    console.log(`  the hop adds ${addedP50Ms.toFixed(3)} ms at p50 (×${ratio.toFixed(2)})`);
    return { ...summary, addedP50Ms, ratio };
  } finally {
    await Promise.all(gateways.map((gw) => gw.stop()));
    await store.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await forwardedVsLocal({ calls: Number(process.argv[2] ?? 2000), warm: 200 });
  } finally {
    destroyAgent();
  }
}
