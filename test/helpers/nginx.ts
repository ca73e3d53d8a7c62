import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, isAlive } from './everything.js';
import { answersReady, waitFor } from './wait.js';

/**
 * Debian's nginx (the `nginx` package; .ci/run installs it) running examples/nginx.conf in front of gateway replicas,
 * in the foreground as a child of the test, which stops it at the end. The example is run as written but for what
 * makes it runnable here: the listen address, the replicas' addresses, and the user, pid, log and temp files.
 */

export const nginxBinary = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? 'nginx';

export const nginxExample = fileURLToPath(new URL('../../../examples/nginx.conf', import.meta.url));

export interface NginxOptions {
  /** The loopback port clients use. */
  port: number;
  /** The replicas' loopback ports. */
  backends: number[];
  /** Where its pid, temp files and derived config go. */
  dir: string;
  /** Directives added to the `server` block (a test's own response headers). */
  serverExtra?: string[];
}

/** `text` with the one line `line` matches replaced: an example that no longer has it fails here, not later. */
function replaceLine(text: string, line: RegExp, by: (indent: string, rest: string) => string): string {
  const m = line.exec(text);
  if (m === null) throw new Error(`examples/nginx.conf has no line matching ${line}`);
  return text.slice(0, m.index) + by(m[1] ?? '', m[2] ?? '') + text.slice(m.index + m[0].length);
}

/** examples/nginx.conf for loopback ports, run by the current user, its files in `o.dir`, in the foreground. */
export function nginxConfig(example: string, o: NginxOptions): string {
  let text = replaceLine(example, /^user .*;$/m, () =>
    // Workers as the test's user (root: the master would otherwise switch them to www-data); an unprivileged master
    // cannot switch and would only warn.
    process.getuid?.() === 0 ? `user ${userInfo().username};` : '',
  );
  text = replaceLine(text, /^pid .*;$/m, () => [`pid ${join(o.dir, 'nginx.pid')};`, 'daemon off;', 'error_log stderr notice;'].join('\n'));
  const files = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(o.dir, t)};`);
  text = replaceLine(text, /^http \{$/m, () => ['http {', '  access_log off;', ...files].join('\n'));
  text = replaceLine(text, /^(\s*)listen 8443;$/m, (indent) => `${indent}listen 127.0.0.1:${o.port};`);
  text = replaceLine(text, /^(\s*)(server_name .*;)$/m, (indent, line) => [indent + line, ...(o.serverExtra ?? []).map((d) => indent + d)].join('\n'));
  // The first replica's line, with its parameters, once per loopback replica; the others' lines dropped.
  text = replaceLine(text, /^(\s*)server 10\.0\.1\.21:8080( [^;\n]*)?;$/m, (indent, params) =>
    o.backends.map((port) => `${indent}server 127.0.0.1:${port}${params};`).join('\n'),
  );
  return text.replace(/^\s*server 10\.0\.\d+\.\d+:8080[^\n]*\n/gm, '');
}

/** `nginx -t` of a config file: undefined when nginx takes it, else what nginx said. */
export function nginxCheck(file: string, prefix: string): string | undefined {
  const check = spawnSync(nginxBinary, ['-t', '-q', '-e', 'stderr', '-p', prefix, '-c', file], { encoding: 'utf8' });
  return check.status === 0 ? undefined : `${check.stdout}${check.stderr}`;
}

export interface Nginx {
  url: string;
  child: ChildProcess;
  /** What it logged (its error log: startup, refused upstreams). */
  readonly output: string;
  stop(): Promise<void>;
}

/**
 * Writes the config derived from examples/nginx.conf into `o.dir`, checks it (`nginx -t`), starts nginx and waits
 * until a request to /readyz through it is answered 200.
 */
export async function startNginx(o: NginxOptions): Promise<Nginx> {
  const file = join(o.dir, 'nginx.conf');
  writeFileSync(file, nginxConfig(readFileSync(nginxExample, 'utf8'), o));
  const refused = nginxCheck(file, o.dir);
  if (refused !== undefined) throw new Error(`nginx -t refused ${file}: ${refused}`);

  const child = spawn(nginxBinary, ['-e', 'stderr', '-p', o.dir, '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const nginx: Nginx = {
    url: `http://127.0.0.1:${o.port}`,
    child,
    get output() {
      return out;
    },
    stop: async () => {
      if (exited()) return;
      // Fast shutdown: the master stops its workers and waits for them. Should it hang, it is killed, and its workers
      // with it (a worker outlives a killed master).
      const workers = childPids(child.pid!);
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        for (const pid of workers) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      }, 5000);
      await gone;
      clearTimeout(timer);
    },
  };
  try {
    const ready = () => {
      if (exited()) throw new Error(`nginx exited: ${out}`);
      return answersReady(nginx.url);
    };
    await waitFor(ready, 'a ready replica through nginx');
  } catch (err) {
    await nginx.stop();
    throw err;
  }
  return nginx;
}
