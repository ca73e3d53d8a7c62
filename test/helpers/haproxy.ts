import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { answersReady, waitFor } from './wait.js';

/**
 * HAProxy (Debian's `haproxy` package; .ci/run installs it) as the plain load balancer in front of gateway
 * replicas: round-robin per request, no stickiness, HTTP mode, replicas health-checked on /readyz. It runs in the
 * foreground (`-db`) as a child of the test, which kills it at the end.
 */

export const haproxyBinary = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p)) ?? 'haproxy';

/** The response header naming the replica that served a request (its HAProxy server name, the instance id). */
export const servedByHeader = 'X-Served-By';

export interface Backend {
  /** The server's name in HAProxy (its stats and logs). */
  name: string;
  port: number;
}

export interface HaproxyOptions {
  /** The loopback port clients use. */
  port: number;
  /** A second loopback port for HAProxy's CSV stats (`/stats;csv`): which servers it takes as up. */
  statsPort: number;
  backends: Backend[];
  /** How often each replica's /readyz is checked; three failures in a row take it out, one success puts it back. */
  checkInterval?: string;
}

/**
 * The config the tests (and docs/deploy.md, as the plain-LB example) use. Why each line:
 *  - `balance roundrobin` and no `cookie`/`stick` lines: any request may land on any replica.
 *  - HTTP mode balances each request, even on a kept-alive client connection (no `prefer-last-server`).
 *  - `option httpchk` on /readyz: a draining or store-less replica answers 503 and gets no new requests, while the
 *    requests it has keep flowing; `timeout check` is generous, since a replica busy serving answers late.
 *  - no `http-buffer-request`, no compression: a response (an SSE stream) is forwarded as it is written.
 *  - `timeout server`/`timeout client` above the gateway's SSE keep-alive (15 s) so an idle stream is not cut;
 *    `timeout tunnel` for upgraded connections (the agents' WebSocket tunnels).
 *  - `retries`/`option redispatch`: a connection refused by a dead replica is retried on another one (only
 *    connection failures, never a request a replica may have started to serve).
 *  - `X-Served-By` (the replica's name, as in the stats) on every answer: a test sees where a request landed.
 *  - the internal hop refused from outside (`refuseHop`).
 */
/**
 * The frontend rule that refuses the replicas' internal hop (/_portcullis/hop/…) from outside, as examples/haproxy.cfg
 * has it: any path with a `_portcullis` segment, since the gateway resolves dot segments and reads `\` as `/`.
 */
export const refuseHop = "http-request deny deny_status 404 if { path -m reg -i '[/\\\\]_portcullis[/\\\\]' }";

export function haproxyConfig(o: HaproxyOptions): string {
  const inter = o.checkInterval ?? '500ms';
  return [
    'global',
    '  maxconn 4096',
    '  nbthread 1',
    '',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  timeout connect 2s',
    '  timeout client 5m',
    '  timeout server 5m',
    '  timeout tunnel 1h',
    '  timeout http-request 10s',
    '  timeout queue 10s',
    // A busy replica may answer its health check late without being taken out; a dead one refuses it at once.
    '  timeout check 5s',
    '  retries 2',
    '  option redispatch 1',
    '',
    'frontend mcp',
    `  bind 127.0.0.1:${o.port}`,
    `  ${refuseHop}`,
    '  default_backend replicas',
    '',
    'backend replicas',
    '  balance roundrobin',
    `  http-response set-header ${servedByHeader} %s`,
    '  option httpchk',
    '  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1',
    '  http-check expect status 200',
    `  default-server check inter ${inter} fall 3 rise 1`,
    ...o.backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port}`),
    '',
    'listen stats',
    `  bind 127.0.0.1:${o.statsPort}`,
    '  stats enable',
    '  stats uri /stats',
    '',
  ].join('\n');
}

export type ServerState = 'UP' | 'DOWN';

export interface Haproxy {
  url: string;
  child: ChildProcess;
  /** HAProxy's own view of each backend server (`UP`, `DOWN`, `UP 1/2`…), from its CSV stats. */
  states(): Promise<Map<string, string>>;
  /** Waits until HAProxy takes `server` as `state` (its health checks have seen the change). */
  waitFor(server: string, state: ServerState, ms?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Writes `haproxy.cfg` into `dir`, checks it (`haproxy -c`), starts HAProxy and waits until every backend is up. */
export async function startHaproxy(dir: string, backends: Backend[], port?: number): Promise<Haproxy> {
  const o: HaproxyOptions = { port: port ?? (await freePort()), statsPort: await freePort(), backends };
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, haproxyConfig(o));
  const check = spawn(haproxyBinary, ['-c', '-q', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let checkOut = '';
  check.stdout!.on('data', (d: Buffer) => (checkOut += d));
  check.stderr!.on('data', (d: Buffer) => (checkOut += d));
  const [checkCode] = (await once(check, 'exit')) as [number | null];
  if (checkCode !== 0) throw new Error(`haproxy -c refused ${file}: ${checkOut}`);

  const child = spawn(haproxyBinary, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = () => child.exitCode !== null || child.signalCode !== null;

  const states = async (): Promise<Map<string, string>> => {
    const res = await fetch(`http://127.0.0.1:${o.statsPort}/stats;csv`);
    const lines = (await res.text()).split('\n');
    const header = lines[0]!.replace(/^# /, '').split(',');
    const [px, sv, status] = ['pxname', 'svname', 'status'].map((c) => header.indexOf(c));
    const out = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const cells = line.split(',');
      if (cells[px!] === 'replicas' && cells[sv!] !== 'BACKEND' && cells[sv!] !== undefined) out.set(cells[sv!]!, cells[status!]!);
    }
    return out;
  };
  const reachable = async () => {
    if (exited()) throw new Error(`haproxy exited: ${out}`);
    return states().then(
      () => true,
      () => false,
    );
  };
  const haproxy: Haproxy = {
    url: `http://127.0.0.1:${o.port}`,
    child,
    states,
    waitFor: (server, state, ms = 20_000) =>
      waitFor(async () => (await states()).get(server) === state, `HAProxy to take ${server} as ${state} (${out.slice(-500)})`, ms),
    stop: async () => {
      if (exited()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await once(child, 'exit');
      clearTimeout(timer);
    },
  };
  try {
    await waitFor(reachable, `haproxy to listen: ${out}`);
    for (const b of backends) await haproxy.waitFor(b.name, 'UP');
    // And through the front end, as a client sees it.
    await waitFor(() => answersReady(haproxy.url), 'a ready replica through HAProxy');
  } catch (err) {
    await haproxy.stop();
    throw err;
  }
  return haproxy;
}
