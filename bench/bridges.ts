import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { demoServerEntry } from '../src/config/load.js';
import { freePort } from '../test/helpers/ports.js';
import { everythingStdioConnection, type Proc, startGateway } from './processes.js';
import { callsPerSession, connect as connectClient, echo, type SessionTarget, sessionsClosedLoop, shortSession } from './sessions.js';

/**
 * What users pick instead of a gateway: the bare stdio→HTTP bridges `supergateway` and `mcp-proxy`, in front of the
 * same stdio server (server-everything) as Portcullis, each started as its README says. Both speak Streamable HTTP,
 * so the official v1 SDK client's Streamable HTTP transport drives every target. Clients make short-lived sessions
 * (sessions.ts). The bridges are found in the project's node_modules, or in `$PORTCULLIS_BENCH_BRIDGES/node_modules`.
 */

export type Verdicts = Array<{ target: string; value: number; limit: string; pass: boolean }>;

export interface SessionBenchSettings {
  /** Rounds; the verdict is the median of the rounds' ratios. */
  rounds: number;
  /** Sequential sessions per target per round, after `warmSessions` once. */
  seqSessions: number;
  /**
   * The pause between two sequential sessions (not timed): an agent's turn between its tasks. Without it, sessions
   * opened back to back with nothing in between are a throughput test, which the concurrent part measures.
   */
  thinkMs: number;
  warmSessions: number;
  clients: number;
  /** Each target's closed-loop window per round, after one unmeasured window of `concWarmMs`. */
  concMs: number;
  concWarmMs: number;
}

const bridgePackages = { supergateway: '4.0.0', 'mcp-proxy': '6.7.19' } as const;

/** The entry script of a package's bin, from the project's node_modules or $PORTCULLIS_BENCH_BRIDGES/node_modules. */
function binOf(name: string, bin: string): string | undefined {
  const roots = [process.env.PORTCULLIS_BENCH_BRIDGES, fileURLToPath(new URL('../../', import.meta.url))].filter((r): r is string => r !== undefined);
  for (const root of roots) {
    const dir = join(root, 'node_modules', name);
    if (!existsSync(join(dir, 'package.json'))) continue;
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string; bin: string | Record<string, string> };
    if (pkg.version !== bridgePackages[name as keyof typeof bridgePackages]) {
      console.log(`(${name} ${pkg.version} found; the figures in BENCHMARKS.md are of ${bridgePackages[name as keyof typeof bridgePackages]})`);
    }
    return join(dir, typeof pkg.bin === 'string' ? pkg.bin : pkg.bin[bin]!);
  }
  return undefined;
}

/** Resolves once something accepts TCP connections on the port; rejects when `child` exits first or after 30 s. */
async function listening(child: ChildProcess, port: number, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`${what} exited before it listened`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startBridge(what: string, args: (port: number) => string[]): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, args(port), { stdio: ['ignore', 'ignore', 'inherit'] });
  await listening(child, port, what);
  return {
    child,
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await once(child, 'exit');
      clearTimeout(timer);
    },
  };
}

const serverCommand = () => [process.execPath, demoServerEntry(), 'stdio'];

/** supergateway, stdio → Streamable HTTP, stateful (a server process per session, as Portcullis; its stateless mode starts one per request). */
function startSupergateway(entry: string): Promise<Proc> {
  return startBridge('supergateway', (port) => [
    entry,
    '--stdio',
    serverCommand().join(' '),
    '--outputTransport',
    'streamableHttp',
    '--stateful',
    '--port',
    String(port),
    '--logLevel',
    'none',
  ]);
}

/** mcp-proxy, Streamable HTTP only (one server process for every session). */
function startMcpProxy(entry: string): Promise<Proc> {
  return startBridge('mcp-proxy', (port) => [entry, '--port', String(port), '--host', '127.0.0.1', '--server', 'stream', '--', ...serverCommand()]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p50 = (xs: number[]) => median(xs);
const fmt = (n: number, digits = 2) => n.toFixed(digits);

interface RoundResult {
  sessionP50: number;
  callP50: number;
  callsPerSec: number;
  sessionsPerSec: number;
}

/**
 * Sequential sessions and `clients` concurrent clients, for every target, `rounds` times with the targets' order
 * rotated; returns each target's figures per round.
 */
export async function compareSessions(targets: SessionTarget[], s: SessionBenchSettings): Promise<Map<string, RoundResult[]>> {
  for (const t of targets) for (let i = 0; i < s.warmSessions; i++) await shortSession(t);
  for (const t of targets) await sessionsClosedLoop(t, s.clients, s.concWarmMs);
  const results = new Map<string, RoundResult[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < s.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    const seq = new Map<string, { sessions: number[]; calls: number[] }>();
    for (const t of order) {
      const sessions: number[] = [];
      const calls: number[] = [];
      for (let i = 0; i < s.seqSessions; i++) {
        const timing = await shortSession(t);
        sessions.push(timing.sessionMs);
        calls.push(...timing.callMs);
        await new Promise((r) => setTimeout(r, s.thinkMs));
      }
      seq.set(t.name, { sessions, calls });
    }
    for (const t of order) {
      const conc = await sessionsClosedLoop(t, s.clients, s.concMs);
      const q = seq.get(t.name)!;
      results.get(t.name)!.push({
        sessionP50: p50(q.sessions),
        callP50: p50(q.calls),
        callsPerSec: conc.calls / (conc.ms / 1000),
        sessionsPerSec: conc.sessions / (conc.ms / 1000),
      });
    }
  }
  return results;
}

/** Prints one table per round and the medians of the ratios against `baseline` (the names of the targets it is the best of). */
function report(
  targets: SessionTarget[],
  results: Map<string, RoundResult[]>,
  baseline: string[],
  baselineName: string,
): Map<string, { sessionP50: number; callP50: number; callsPerSec: number }> {
  const rounds = results.get(targets[0]!.name)!.length;
  const ratios = new Map<string, { sessionP50: number[]; callP50: number[]; callsPerSec: number[] }>(
    targets.map((t) => [t.name, { sessionP50: [], callP50: [], callsPerSec: [] }]),
  );
  console.log('round  target                      session p50 ms   call p50 ms   calls/s   sessions/s   session p50 ×   call p50 ×   calls/s ×');
  for (let r = 0; r < rounds; r++) {
    const of = (name: string) => results.get(name)![r]!;
    const best = {
      sessionP50: Math.min(...baseline.map((b) => of(b).sessionP50)),
      callP50: Math.min(...baseline.map((b) => of(b).callP50)),
      callsPerSec: Math.max(...baseline.map((b) => of(b).callsPerSec)),
    };
    for (const t of targets) {
      const x = of(t.name);
      const q = ratios.get(t.name)!;
      q.sessionP50.push(x.sessionP50 / best.sessionP50);
      q.callP50.push(x.callP50 / best.callP50);
      q.callsPerSec.push(x.callsPerSec / best.callsPerSec);
      console.log(
        `${String(r + 1).padEnd(7)}${t.name.padEnd(28)}${fmt(x.sessionP50).padStart(14)}${fmt(x.callP50).padStart(14)}${fmt(x.callsPerSec, 0).padStart(10)}${fmt(x.sessionsPerSec, 1).padStart(13)}${fmt(x.sessionP50 / best.sessionP50).padStart(15)}×${fmt(x.callP50 / best.callP50).padStart(12)}×${fmt(x.callsPerSec / best.callsPerSec).padStart(11)}×`,
      );
    }
  }
  console.log(`median of ${rounds} round(s), against ${baselineName}:`);
  const out = new Map<string, { sessionP50: number; callP50: number; callsPerSec: number }>();
  for (const t of targets) {
    const q = ratios.get(t.name)!;
    const m = { sessionP50: median(q.sessionP50), callP50: median(q.callP50), callsPerSec: median(q.callsPerSec) };
    out.set(t.name, m);
    console.log(
      `       ${t.name.padEnd(28)}${''.padStart(56)}${fmt(m.sessionP50).padStart(15)}×${fmt(m.callP50).padStart(12)}×${fmt(m.callsPerSec).padStart(11)}×`,
    );
  }
  return out;
}

/**
 * Portcullis (recording on in SQLite, masking on, every request authenticated) against supergateway and mcp-proxy,
 * with short-lived sessions; ratios against the faster bridge of each round (the lower p50, the higher calls/s). First
 * with 2025-era clients (the v1 SDK), a Portcullis without warm spares beside it for the before/after of the spares,
 * and one whose connection has `upstreamSessions: pooled` (the opt-in: a principal's sessions share server processes);
 * then with the v2 client pinned to 2026-07-28, which all three serve (Portcullis through pooled upstream sessions).
 */
export async function bridgesComparison(verdicts: Verdicts, s: SessionBenchSettings): Promise<Record<string, unknown>> {
  const sg = binOf('supergateway', 'supergateway');
  const mp = binOf('mcp-proxy', 'mcp-proxy');
  if (sg === undefined || mp === undefined) {
    const missing = Object.entries(bridgePackages)
      .map(([n, v]) => `${n}@${v}`)
      .join(' ');
    console.log(`\nBridges comparison skipped: install ${missing} (devDependencies), or set PORTCULLIS_BENCH_BRIDGES to a directory with them in node_modules`);
    return { skipped: 'bridges not installed' };
  }
  console.log(
    `\nBridges: short-lived sessions (connect, tools/list, ${callsPerSession} tools/call, close) in front of server-everything over stdio; ${s.rounds} round(s) of ${s.seqSessions} sequential sessions (${s.thinkMs} ms apart) and ${s.clients} clients for ${s.concMs} ms per target`,
  );
  const procs: Proc[] = [];
  try {
    const supergateway = await startSupergateway(sg);
    procs.push(supergateway);
    const mcpProxy = await startMcpProxy(mp);
    procs.push(mcpProxy);
    // As shipped: recording on (SQLite, write-ahead), masking on, a bearer token checked on every request.
    const portcullis = await startGateway({ everything: everythingStdioConnection() });
    procs.push(portcullis);
    const cold = await startGateway({ everything: { stdio: { ...(everythingStdioConnection().stdio as object), spares: 0 } } });
    procs.push(cold);
    // Opt-in: the 2025-era client sessions of one principal share pooled upstream sessions (upstreamSessions: pooled).
    const pooled = await startGateway({ everything: { ...everythingStdioConnection(), upstreamSessions: 'pooled' } });
    procs.push(pooled);
    const auth = (p: Proc) => ({ authorization: `Bearer ${p.token}` });
    const targets: SessionTarget[] = [
      { name: 'supergateway', url: `http://127.0.0.1:${supergateway.port}/mcp`, headers: {}, client: 'v1' },
      { name: 'mcp-proxy', url: `http://127.0.0.1:${mcpProxy.port}/mcp`, headers: {}, client: 'v1' },
      { name: 'Portcullis', url: `http://127.0.0.1:${portcullis.port}/mcp/everything`, headers: auth(portcullis), client: 'v1' },
      { name: 'Portcullis, spares: 0', url: `http://127.0.0.1:${cold.port}/mcp/everything`, headers: auth(cold), client: 'v1' },
      { name: 'Portcullis, pooled', url: `http://127.0.0.1:${pooled.port}/mcp/everything`, headers: auth(pooled), client: 'v1' },
    ];
    const legacy = await bridgesPass('2025-era client (v1 SDK)', targets, ['supergateway', 'mcp-proxy'], ['Portcullis', 'Portcullis, pooled'], verdicts, s);
    // The same sessions with the v2 client pinned to 2026-07-28, where the target serves that era (both bridges do):
    // Portcullis then serves them through pooled upstream sessions instead of a process per session.
    const modernTargets = targets
      .filter((t) => t.name !== 'Portcullis, spares: 0' && t.name !== 'Portcullis, pooled')
      .map((t): SessionTarget => ({ ...t, client: 'v2-modern' }));
    console.log(`\nThe same with the v2 client pinned to 2026-07-28 (${modernTargets.map((t) => t.name).join(', ')})`);
    const modern = await bridgesPass('2026-07-28 client (v2 SDK, pinned)', modernTargets, ['supergateway', 'mcp-proxy'], ['Portcullis'], verdicts, s);
    return { legacy, modern };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

/**
 * One client era against the targets that serve it (a target that fails its first session is left out, and said so):
 * ratios against the faster of `bridges`, verdicts for each of `subjects`.
 */
async function bridgesPass(
  era: string,
  all: SessionTarget[],
  bridges: string[],
  subjects: string[],
  verdicts: Verdicts,
  s: SessionBenchSettings,
): Promise<Record<string, unknown>> {
  console.log(era);
  const targets: SessionTarget[] = [];
  const unavailable: Record<string, string> = {};
  for (const t of all) {
    try {
      await shortSession(t);
      targets.push(t);
    } catch (err) {
      unavailable[t.name] = (err as Error).message;
      console.log(
        `${t.name}: unavailable with this client${t.name === 'Portcullis' && t.client === 'v2-modern' ? ' (modern edge unavailable)' : ''}: ${(err as Error).message.slice(0, 200)}`,
      );
    }
  }
  const present = bridges.filter((b) => targets.some((t) => t.name === b));
  const judged = subjects.filter((subject) => targets.some((t) => t.name === subject));
  if (present.length === 0 || judged.length === 0) return { unavailable };
  const results = await compareSessions(targets, s);
  const ratios = report(targets, results, present, `the faster bridge of each round (${present.join(', ')})`);
  for (const subject of judged) {
    const p = ratios.get(subject)!;
    verdicts.push({
      target: `session p50 ${subject} / faster bridge, ${era} (short sessions, median)`,
      value: p.sessionP50,
      limit: '< 1',
      pass: p.sessionP50 < 1,
    });
    verdicts.push({
      target: `calls/s ${subject} / faster bridge, ${era} (32 clients, short sessions, median)`,
      value: p.callsPerSec,
      limit: '≥ 1',
      pass: p.callsPerSec >= 1,
    });
  }
  return { rounds: Object.fromEntries(results), ratios: Object.fromEntries(ratios), unavailable };
}

/**
 * Long-lived clients, for contrast: each target's clients connect once and then only call (sequential p50 over one
 * client; `clients` clients in a closed loop), in rotated rounds. Printed, not judged: the targets are about
 * short sessions, and here neither path starts anything per session.
 */
async function longLived(targets: SessionTarget[], s: SessionBenchSettings): Promise<Record<string, { callP50: number[]; callsPerSec: number[] }>> {
  const calls = s.seqSessions * 20;
  const out: Record<string, { callP50: number[]; callsPerSec: number[] }> = Object.fromEntries(targets.map((t) => [t.name, { callP50: [], callsPerSec: [] }]));
  const pools = new Map<string, Awaited<ReturnType<typeof connectClient>>[]>();
  for (const t of targets) pools.set(t.name, await Promise.all(Array.from({ length: s.clients }, () => connectClient(t))));
  try {
    for (const t of targets) for (let i = 0; i < 200; i++) await echo(pools.get(t.name)![0]!.client);
    for (let round = 0; round < s.rounds; round++) {
      for (const t of targets.map((_, i) => targets[(i + round) % targets.length]!)) {
        const pool = pools.get(t.name)!;
        const times: number[] = [];
        for (let i = 0; i < calls; i++) {
          const t0 = performance.now();
          await echo(pool[0]!.client);
          times.push(performance.now() - t0);
        }
        let done = 0;
        const start = performance.now();
        const end = start + s.concMs;
        await Promise.all(
          pool.map(async (c) => {
            while (performance.now() < end) {
              await echo(c.client);
              done++;
            }
          }),
        );
        out[t.name]!.callP50.push(p50(times));
        out[t.name]!.callsPerSec.push(done / ((performance.now() - start) / 1000));
      }
    }
  } finally {
    for (const pool of pools.values()) {
      await Promise.all(
        pool.map(async (c) => {
          await c.end().catch(() => {});
          await c.client.close();
        }),
      );
    }
  }
  const [base] = targets;
  console.log(`Long-lived clients (connected once; ${calls} sequential calls and ${s.clients} clients for ${s.concMs} ms per round), medians:`);
  for (const t of targets) {
    const o = out[t.name]!;
    const b = out[base!.name]!;
    console.log(
      `       ${t.name.padEnd(28)} call p50 ${fmt(median(o.callP50))} ms (${fmt(median(o.callP50.map((x, i) => x / b.callP50[i]!)))}×)   ${fmt(median(o.callsPerSec), 0)} calls/s (${fmt(median(o.callsPerSec.map((x, i) => x / b.callsPerSec[i]!)))}×)`,
    );
  }
  return out;
}

/**
 * The modern era: a v2 client pinned to 2026-07-28 → the gateway → server-everything over stdio, against the legacy
 * path (the same v2 client in its default mode, the 2025 handshake) through the same gateway, in the same run. A
 * gateway without the modern edge answers the pinned client's `server/discover` with 400: reported as unavailable.
 */
export async function modernEra(verdicts: Verdicts, s: SessionBenchSettings): Promise<Record<string, unknown>> {
  const gateway = await startGateway({ everything: everythingStdioConnection() });
  try {
    const url = `http://127.0.0.1:${gateway.port}/mcp/everything`;
    const headers = { authorization: `Bearer ${gateway.token}` };
    const legacy: SessionTarget = { name: 'legacy (v2, 2025-11-25)', url, headers, client: 'v2-legacy' };
    const modern: SessionTarget = { name: 'modern (v2, 2026-07-28)', url, headers, client: 'v2-modern' };
    console.log(
      `\nModern era: the v2 client pinned to 2026-07-28 vs its default (legacy) mode, one gateway (recording, masking, authentication on) → server-everything over stdio; short-lived sessions as above`,
    );
    try {
      await shortSession(modern);
    } catch (err) {
      console.log(`modern edge unavailable: ${(err as Error).message.slice(0, 300)}`);
      return { unavailable: (err as Error).message };
    }
    const targets = [legacy, modern];
    const results = await compareSessions(targets, s);
    const ratios = report(targets, results, [legacy.name], 'the legacy path');
    const m = ratios.get(modern.name)!;
    verdicts.push({ target: 'session p50 modern / legacy (short sessions, median)', value: m.sessionP50, limit: '≤ 1', pass: m.sessionP50 <= 1 });
    verdicts.push({ target: 'calls/s modern / legacy (32 clients, short sessions, median)', value: m.callsPerSec, limit: '≥ 1', pass: m.callsPerSec >= 1 });
    return { rounds: Object.fromEntries(results), ratios: Object.fromEntries(ratios), longLived: await longLived(targets, s) };
  } finally {
    await gateway.stop();
  }
}
