import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { demoServerEntry } from '../src/config/load.js';
import { DevIdentity } from '../src/identity/dev-identity.js';
import { freePort } from '../test/helpers/ports.js';

/** The processes a benchmark compares, each started the way an operator would start it. */
export interface Proc {
  child: ChildProcess;
  port: number;
  /** For a gateway: a dev-identity token its connections accept. */
  token?: string;
  /** For a gateway: its data directory (its SQLite store). */
  dataDir?: string;
  stop(): Promise<void>;
}

const cli = fileURLToPath(new URL('../../bin/portcullis.js', import.meta.url));

/** Resolves with the output seen once it matches `pattern`. */
async function waitForOutput(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${seen}`)), 20_000);
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${seen}`)));
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return seen;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await once(child, 'exit');
    clearTimeout(timer);
  };
}

/** server-everything's own Streamable HTTP transport: the direct baseline. */
export async function startDirectServer(): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, [demoServerEntry(), 'streamableHttp'], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await waitForOutput(child, /listening on port/i, 'server-everything');
  return { child, port, stop: stopper(child) };
}

/** The do-nothing pass-through proxy (null-proxy.ts) in front of `targetPort`: the floor of one more Node.js hop. */
export async function startNullProxy(targetPort: number): Promise<Proc> {
  const script = fileURLToPath(new URL('./null-proxy.js', import.meta.url));
  const child = spawn(process.execPath, [script, String(targetPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen = await waitForOutput(child, /listening \d+\n/, 'the null proxy');
  const port = Number(/listening (\d+)/.exec(seen)![1]);
  return { child, port, stop: stopper(child) };
}

/** A live HTTP audit collector (audit-collector.ts) in its own process: counts the records it takes, GET /count. */
export async function startAuditCollector(): Promise<Proc> {
  const script = fileURLToPath(new URL('./audit-collector.js', import.meta.url));
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen = await waitForOutput(child, /listening \d+\n/, 'the audit collector');
  const port = Number(/listening (\d+)/.exec(seen)![1]);
  return { child, port, stop: stopper(child) };
}

/**
 * One principal (`bench`) does here what many would: a thousand idle sessions, thousands of calls a second. The
 * limits are raised to let it, not removed: every request still goes through them, so their cost is measured.
 */
export const benchLimits = {
  principal: {
    sessions: 5000,
    stdioProcesses: 5000,
    sessionOpens: { perSecond: 1_000_000, burst: 5000 },
    requestsInFlight: 1000,
    requests: { perSecond: 1_000_000, burst: 1_000_000 },
  },
  connection: { sessions: 5000 },
  global: { sessions: 5000 },
};

/**
 * `portcullis gateway` with the given connections, in its own process, with a fresh data directory (its
 * SQLite store, when recording uses the default one). `extra` adds config keys (recording, store, roles).
 * `authOff` starts the benchmark's no-authentication baseline instead (auth-off-gateway.ts).
 */
/** Bench-only entry points beside the CLI (script, arguments after the config file): authentication replaced by a fixed identity. */
const seams = {
  'auth-off': ['./auth-off-gateway.js'],
} as const;

export async function startGateway(connections: Record<string, unknown>, extra: Record<string, unknown> = {}, seam?: keyof typeof seams): Promise<Proc> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-data-'));
  const file = join(dataDir, 'gateway.yaml');
  // Every client signs in, as in production: the dev identity, a user in the group every connection admits.
  const dev = { users: { bench: ['bench'] } };
  const admitted = Object.fromEntries(Object.entries(connections).map(([name, c]) => [name, { access: { groups: ['bench'] }, ...(c as object) }]));
  writeFileSync(
    file,
    stringify({
      listen: `127.0.0.1:${port}`,
      dataDir,
      log: { level: 'warn' },
      sessions: { idleTimeout: '1h' },
      identity: { dev },
      ...extra,
      limits: { ...benchLimits, ...(extra.limits as object | undefined) },
      connections: admitted,
    }),
  );
  const [script, ...args] = seam === undefined ? [] : seams[seam];
  const entry = script !== undefined ? [fileURLToPath(new URL(script, import.meta.url)), file, ...args] : [cli, 'gateway', '--config', file];
  // PORTCULLIS_BENCH_CPU_PROF=<dir>: each gateway writes a CPU profile there when it stops (to see where its time goes).
  const profileDir = process.env.PORTCULLIS_BENCH_CPU_PROF;
  const profile = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const child = spawn(process.execPath, [...profile, ...entry], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForOutput(child, /Portcullis is running/, 'the gateway');
  const stop = stopper(child);
  const { token } = await (await DevIdentity.load(dataDir, { ...dev, allowNonLoopback: false, tokenLifetimeMs: 24 * 3_600_000 })).mint('bench');
  return {
    child,
    port,
    token,
    dataDir,
    stop: async () => {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * `portcullis agent` serving `connections` for the gateway at `gatewayPort`, its token created in the gateway's
 * store as `portcullis agents create` does.
 */
export async function startAgent(gateway: Proc, name: string, connections: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Proc> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-agent-'));
  const create = spawn(process.execPath, [cli, 'agents', 'create', name, '--config', join(gateway.dataDir!, 'gateway.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let token = '';
  create.stdout!.on('data', (d: Buffer) => (token += d.toString()));
  await once(create, 'exit');
  const file = join(dir, 'agent.yaml');
  writeFileSync(
    file,
    stringify({ gateway: `http://127.0.0.1:${gateway.port}`, name, token: '${env:AGENT_TOKEN}', log: { level: 'warn' }, ...extra, connections }),
  );
  const child = spawn(process.execPath, [cli, 'agent', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', AGENT_TOKEN: token.trim() },
  });
  await waitForOutput(child, /is connected to/, 'the agent');
  const stop = stopper(child);
  return {
    child,
    port: gateway.port,
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** server-everything over stdio behind bench/null-relay.ts: one more process on the path, doing nothing. */
export function relayedStdioConnection(): Record<string, unknown> {
  return {
    stdio: { command: process.execPath, args: [fileURLToPath(new URL('./null-relay.js', import.meta.url)), process.execPath, demoServerEntry(), 'stdio'] },
  };
}

export function everythingStdioConnection(): Record<string, unknown> {
  return { stdio: { command: process.execPath, args: [demoServerEntry(), 'stdio'] } };
}

/** Resident memory of a process in bytes (Linux). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}
