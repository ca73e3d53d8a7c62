import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DevIdentity, devKeyFile } from '../../src/identity/dev-identity.js';
import { loadSigningKey } from '../../src/recording/keys.js';
import { childPids, isAlive } from './everything.js';
import { GatewayProcess } from './gateway-process.js';
import { type Backend, type Haproxy, startHaproxy } from './haproxy.js';
import { freePort } from './ports.js';
import { createPostgresTestDatabase, type TestStore } from './stores.js';
import { waitFor } from './wait.js';

/**
 * N gateway replicas as an operator runs them (issue 18): each `portcullis gateway --config FILE` in its own process,
 * with its own instance id, data directory, port and seal-signing key, all on one fresh PostgreSQL database, behind
 * HAProxy (round-robin, no stickiness). What the replicas share is what a deployment shares: the store, the identity
 * (here the dev identity's key, copied into every data directory, as an IdP would be shared), the API token, the
 * public URL (HAProxy's) and the list of every replica's public key that seals are checked with. Another load
 * balancer may stand in for HAProxy (`frontEnd`).
 */

/** Dev users of a cluster: `tester` uses connections, `auditor` sees every session in the console and the API. */
export const clusterUsers: Record<string, string[]> = { tester: ['testers'], other: ['testers'], auditor: ['auditors'] };

export interface ReplicaPlace {
  index: number;
  instanceId: string;
  port: number;
  dataDir: string;
  /** The cluster's scratch directory (shared files: the API token). */
  dir: string;
}

export interface ClusterOptions {
  count: number;
  /** Connections as in a config file; one without `access` is open to every signed-in user. */
  connections: Record<string, Record<string, unknown>>;
  /** Config keys every replica gets (limits, log, sessions…), merged over the cluster's own. */
  extra?: Record<string, unknown>;
  /** Config keys of one replica, merged last: where the cluster's own keys go (cluster.internalUrl…). */
  perReplica?: (place: ReplicaPlace) => Record<string, unknown>;
  users?: Record<string, string[]>;
  /** How long the replicas wait for their banner; the default suits a loaded machine. */
  startMs?: number;
  /**
   * Another load balancer in front of the replicas instead of HAProxy (examples/nginx.conf): started once they are,
   * listening on loopback `port` (the replicas' http.publicUrl), stopped by the cluster's stop().
   */
  frontEnd?: (dir: string, backends: Backend[], port: number) => Promise<FrontEnd>;
}

/** A load balancer the cluster runs in front of its replicas. */
export interface FrontEnd {
  stop(): Promise<void>;
}

export interface Replica extends ReplicaPlace {
  /** Its own URL, HAProxy bypassed. */
  url: string;
  configFile: string;
  process: GatewayProcess;
  /** Whether it runs (it may have been killed). */
  readonly running: boolean;
}

export interface Cluster {
  /** The load balancer's URL (HAProxy's, or the `frontEnd`'s): where clients go. */
  url: string;
  mcp(connection: string): URL;
  sse(connection: string): URL;
  replicas: Replica[];
  /** HAProxy in front of the replicas; undefined with another `frontEnd`. */
  haproxy: Haproxy | undefined;
  store: TestStore;
  /** A dev-identity token every replica accepts. */
  token(user?: string): Promise<string>;
  /** The Authorization header of `tester`. */
  auth: Record<string, string>;
  /** The Authorization header with the API token every replica accepts (/api/sessions, /metrics). */
  apiAuth: Record<string, string>;
  /** The dev identity's console key (the `#dev=` of the sign-in link), the same on every replica. */
  consoleKey: string;
  /** Every replica's seal-signing public key (PEM), as each replica's `recording.trustedKeys` lists them. */
  trustedKeys: string[];
  /**
   * kill -9 of one replica (its stdio servers, left without their gateway, end on their stdin's EOF); by default also
   * waits until HAProxy's health checks take it out (with HAProxy in front).
   */
  kill(index: number, options?: { untilDown?: boolean }): Promise<void>;
  /** Starts a stopped or killed replica again with the same config (instance id, data directory, port). */
  restart(index: number): Promise<void>;
  /** Stops HAProxy and every replica (SIGTERM, then SIGKILL), leaves no process behind, drops the database. */
  stop(): Promise<void>;
}

const exited = (p: GatewayProcess) => p.child.exitCode !== null || p.child.signalCode !== null;

/** Stops a gateway process with `signal`, SIGKILL after `ms`; then waits for the stdio servers it had to end. */
async function stopProcess(p: GatewayProcess, signal: NodeJS.Signals, ms = 15_000): Promise<void> {
  if (exited(p)) return;
  const servers = childPids(p.child.pid!);
  const gone = once(p.child, 'exit');
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), ms);
  await gone;
  clearTimeout(timer);
  await waitFor(() => servers.every((pid) => !isAlive(pid)), "the stopped replica's stdio servers to exit", 10_000).catch(() => {
    // Never leave one behind: what is still alive now is ours, killed by its id.
    for (const pid of servers) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-replicas-'));
  const users = o.users ?? clusterUsers;
  const store = await createPostgresTestDatabase();
  const lbPort = await freePort();
  const lbUrl = `http://127.0.0.1:${lbPort}`;
  const apiTokenFile = join(dir, 'api-token');
  const apiToken = randomBytes(24).toString('base64url');
  writeFileSync(apiTokenFile, apiToken, { mode: 0o600 });
  // The hop's secret, the same on every replica (cluster.secret), so a replica forwards what another owns.
  const clusterSecretFile = join(dir, 'cluster-secret');
  writeFileSync(clusterSecretFile, randomBytes(32).toString('base64url'), { mode: 0o600 });

  // Each replica's data directory, its seal-signing key created up front so that every replica can trust all of them.
  const places: ReplicaPlace[] = [];
  for (let index = 0; index < o.count; index++) {
    const dataDir = join(dir, `replica-${index + 1}`);
    mkdirSync(dataDir, { mode: 0o700 });
    places.push({ index, instanceId: `replica-${index + 1}`, port: await freePort(), dataDir, dir });
  }
  const trustedKeys = places.map((p) => loadSigningKey(p.dataDir).publicKeyPem);
  // One dev identity for all: the key the first replica would create, in every data directory.
  const devConfig = { users, allowNonLoopback: false, tokenLifetimeMs: 8 * 3_600_000 };
  const dev = await DevIdentity.load(places[0]!.dataDir, devConfig);
  for (const p of places.slice(1)) {
    copyFileSync(join(places[0]!.dataDir, devKeyFile), join(p.dataDir, devKeyFile));
    chmodSync(join(p.dataDir, devKeyFile), 0o600);
  }

  const connections = Object.fromEntries(Object.entries(o.connections).map(([name, c]) => [name, { access: { groups: ['*'] }, ...c }]));
  const replicas: Replica[] = places.map((p) => {
    const configFile = join(p.dataDir, 'gateway.yaml');
    const extra = o.extra ?? {};
    const config = {
      listen: `127.0.0.1:${p.port}`,
      dataDir: p.dataDir,
      store: store.url,
      identity: { dev: { users } },
      roles: { auditors: ['auditors'] },
      api: { token: `\${file:${apiTokenFile}}` },
      ...extra,
      http: { publicUrl: lbUrl, ...(extra.http as object | undefined) },
      recording: { instanceId: p.instanceId, trustedKeys, ...(extra.recording as object | undefined) },
      cluster: { secret: `\${file:${clusterSecretFile}}`, ...(extra.cluster as object | undefined) },
      connections,
      ...(o.perReplica?.(p) ?? {}),
    };
    writeFileSync(configFile, stringify(config));
    const replica: Replica = {
      ...p,
      url: `http://127.0.0.1:${p.port}`,
      configFile,
      process: undefined as unknown as GatewayProcess,
      get running() {
        return !exited(replica.process);
      },
    };
    return replica;
  });

  const start = async (r: Replica) => {
    r.process = new GatewayProcess(r.configFile);
    try {
      await r.process.ready();
    } catch (err) {
      await stopProcess(r.process, 'SIGKILL');
      throw err;
    }
  };
  let haproxy: Haproxy | undefined;
  let frontEnd: FrontEnd | undefined;
  const stop = async () => {
    await frontEnd?.stop();
    await Promise.all(replicas.filter((r) => r.process !== undefined).map((r) => stopProcess(r.process, 'SIGTERM')));
    await store.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // One after the other: the first creates the store's tables, which the others then find.
    for (const r of replicas) await start(r);
    const backends = replicas.map((r) => ({ name: r.instanceId, port: r.port }));
    if (o.frontEnd === undefined) frontEnd = haproxy = await startHaproxy(dir, backends, lbPort);
    else frontEnd = await o.frontEnd(dir, backends, lbPort);
  } catch (err) {
    await stop();
    throw err;
  }
  const token = async (user = 'tester') => (await dev.mint(user)).token;
  const testerToken = await token();
  return {
    url: lbUrl,
    mcp: (c) => new URL(`/mcp/${c}`, lbUrl),
    sse: (c) => new URL(`/sse/${c}`, lbUrl),
    replicas,
    haproxy,
    store,
    token,
    auth: { authorization: `Bearer ${testerToken}` },
    apiAuth: { authorization: `Bearer ${apiToken}` },
    consoleKey: dev.consoleKey,
    trustedKeys,
    kill: async (index, { untilDown = true } = {}) => {
      const r = replicas[index]!;
      await stopProcess(r.process, 'SIGKILL');
      if (untilDown) await haproxy?.waitFor(r.instanceId, 'DOWN');
    },
    restart: async (index) => {
      const r = replicas[index]!;
      if (!exited(r.process)) throw new Error(`${r.instanceId} is still running`);
      await start(r);
      await haproxy?.waitFor(r.instanceId, 'UP');
    },
    stop,
  };
}

/** A counter of a replica's /metrics (the sum over its label sets that match `labels`), e.g. messages received. */
export async function metric(cluster: Cluster, replica: Replica, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(new URL('/metrics', replica.url), { headers: cluster.apiAuth });
  if (res.status !== 200) throw new Error(`/metrics of ${replica.instanceId}: HTTP ${res.status}`);
  let sum = 0;
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const set = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => set[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** A console cookie of `user`, signed in through HAProxy (the sign-in lives in the shared store, so any replica takes it). */
export async function consoleCookie(cluster: Cluster, user = 'auditor'): Promise<string> {
  const signIn = await fetch(new URL('/auth/dev', cluster.url), {
    method: 'POST',
    headers: { origin: cluster.url, 'content-type': 'application/json' },
    body: JSON.stringify({ user, key: cluster.consoleKey }),
  });
  if (signIn.status !== 200) throw new Error(`console sign-in of ${user}: HTTP ${signIn.status} ${await signIn.text()}`);
  return (signIn.headers.get('set-cookie') ?? '').split(';')[0]!;
}
