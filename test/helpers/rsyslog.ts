import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/**
 * Debian's rsyslog (`rsyslog`, and `rsyslog-gnutls` for TLS; .ci/run installs them) as the syslog receiver a test
 * ships audit records to. Its own config in the test's directory: an imtcp input on a loopback port (octet-counted
 * framing is on by default), a ruleset with a Direct queue (a message read is written before the next is read, so
 * a stop loses only what sat unread in the socket) whose action writes each message raw (`%rawmsg%`, one a line,
 * no rsyslog header) to a file; its own pid file (`-i`), in the foreground (`-n`), as the test's user.
 */

export const rsyslogBinary = ['/usr/sbin/rsyslogd', '/usr/bin/rsyslogd'].find((p) => existsSync(p)) ?? 'rsyslogd';

export interface RsyslogTls {
  ca: string;
  cert: string;
  key: string;
}

export interface Rsyslog {
  port: number;
  /** The running rsyslogd (the latest one after a restart). */
  readonly child: ChildProcess;
  /** Where every message received goes, one a line. */
  file: string;
  /** The messages received so far (none before the first arrives). */
  lines(): string[];
  /** Waits until `check` holds for the messages received. */
  waitForLines(check: (lines: string[]) => boolean, what: string, ms?: number): Promise<void>;
  /** Stops rsyslog (SIGTERM, as a service stop does) and waits for it to exit. */
  stop(): Promise<void>;
  /** Freezes it (SIGSTOP): connections stay open, nothing is read; what is sent sits in its socket buffer. */
  freeze(): void;
  /** Kills it (SIGKILL, frozen or not) and waits for it to exit: what sat unread in its sockets is lost. */
  kill(): Promise<void>;
  /** Starts it again on the same port and file; resolves once it takes connections. */
  start(): Promise<void>;
}

export function rsyslogConfig(dir: string, port: number, tls?: RsyslogTls): string {
  const file = join(dir, 'received.log');
  const tlsGlobals = tls
    ? ` defaultNetstreamDriverCAFile="${tls.ca}" defaultNetstreamDriverCertFile="${tls.cert}" defaultNetstreamDriverKeyFile="${tls.key}"`
    : '';
  return [
    // maxMessageSize before any module: audit payloads (tool results) are larger than the 8 KiB default.
    `global(workDirectory="${dir}" maxMessageSize="4m"${tlsGlobals})`,
    tls
      ? // gtls: TLS (RFC 5425); x509/certvalid: the client must present a certificate the CA signed.
        'module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")'
      : 'module(load="imtcp")',
    'template(name="raw" type="string" string="%rawmsg%\\n")',
    'ruleset(name="audit" queue.type="Direct") {',
    `  action(type="omfile" file="${file}" template="raw")`,
    '}',
    `input(type="imtcp" address="127.0.0.1" port="${port}" ruleset="audit")`,
    '',
  ].join('\n');
}

/** Writes the config into `dir`, checks it (`-N1`), starts rsyslog and waits until it takes connections. */
export async function startRsyslog(dir: string, tls?: RsyslogTls): Promise<Rsyslog> {
  const port = await freePort();
  const conf = join(dir, 'rsyslog.conf');
  const pidFile = join(dir, 'rsyslog.pid');
  const file = join(dir, 'received.log');
  writeFileSync(conf, rsyslogConfig(dir, port, tls));
  execFileSync(rsyslogBinary, ['-N1', '-f', conf, '-i', pidFile], { stdio: 'pipe' });

  let child: ChildProcess | undefined;
  let out = '';
  const exited = () => child === undefined || child.exitCode !== null || child.signalCode !== null;
  const lines = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(0, -1) : []);

  const start = async () => {
    out = '';
    child = spawn(rsyslogBinary, ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (out += d));
    const accepts = () =>
      new Promise<boolean>((resolve) => {
        if (exited()) throw new Error(`rsyslogd exited: ${out}`);
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
    await waitFor(accepts, `rsyslogd to listen on 127.0.0.1:${port}`);
  };
  const stop = async () => {
    if (exited()) return;
    const c = child!;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await once(c, 'exit');
    clearTimeout(timer);
  };
  const kill = async () => {
    if (exited()) return;
    const c = child!;
    c.kill('SIGKILL');
    await once(c, 'exit');
  };
  await start();
  return {
    port,
    get child() {
      return child!;
    },
    file,
    lines,
    waitForLines: (check, what, ms = 30_000) => waitFor(() => check(lines()), `${what} (rsyslogd said: ${out.slice(-500)})`, ms),
    stop,
    start,
    freeze: () => child!.kill('SIGSTOP'),
    kill,
  };
}

/** The files a TLS test needs, made with openssl in `dir`: a CA, a server certificate for `serverName`, a client certificate. */
export function makeCertificates(dir: string, serverName: string): { ca: string; server: RsyslogTls; client: { cert: string; key: string } } {
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=portcullis test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  let serial = Date.now();
  const issue = (name: string, subject: string, extensions: string) => {
    writeFileSync(p(`${name}.ext`), extensions);
    openssl(['req', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${subject}`]);
    openssl([
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p('ca.pem'),
      '-CAkey',
      p('ca.key'),
      '-set_serial',
      String(serial++),
      '-days',
      '2',
      '-out',
      p(`${name}.pem`),
      '-extfile',
      p(`${name}.ext`),
    ]);
  };
  issue('server', serverName, `subjectAltName=DNS:${serverName}\nextendedKeyUsage=serverAuth\n`);
  issue('client', 'portcullis', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: p('ca.pem'),
    server: { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') },
    client: { cert: p('client.pem'), key: p('client.key') },
  };
}
