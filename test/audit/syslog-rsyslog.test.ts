import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import type { AuditRecord } from '../../src/audit/sink.js';
import { syslogSinkKind } from '../../src/audit/sinks/syslog.js';
import { processSecretSources } from '../../src/core/secrets.js';
import { connectClient } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents } from '../helpers/recorded.js';
import { makeCertificates, type Rsyslog, startRsyslog } from '../helpers/rsyslog.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The syslog sink against Debian's rsyslog, started by the test with its own config: a session through the gateway
 * arrives event by event, in order, over plain TCP with rsyslog stopped and restarted in the middle, and over TLS
 * (gtls, a client certificate, the server's name checked) as CEF.
 */

/** What rsyslog wrote of one message: the RFC 5424 header fields and the record's identity. */
interface Received {
  pri: number;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  session: string;
  seq: number;
  hash: string;
}

const header = /^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) - (?:\uFEFF)?(.*)$/;

function parseJsonLine(line: string): Received {
  const m = header.exec(line);
  assert.ok(m, `an RFC 5424 message: ${line.slice(0, 200)}`);
  const r = JSON.parse(m[7]!) as AuditRecord;
  return { pri: Number(m[1]), hostname: m[3]!, appName: m[4]!, procId: m[5]!, msgId: m[6]!, session: r.session, seq: r.seq, hash: r.hash };
}

function parseCefLine(line: string): Received {
  const m = header.exec(line);
  assert.ok(m, `an RFC 5424 message: ${line.slice(0, 200)}`);
  const cef = m[7]!;
  assert.match(cef, /^CEF:0\|Portcullis\|Portcullis\|/);
  const field = (key: string) => new RegExp(` ${key}=(\\S+)`).exec(cef)?.[1] ?? '';
  return {
    pri: Number(m[1]),
    hostname: m[3]!,
    appName: m[4]!,
    procId: m[5]!,
    msgId: m[6]!,
    session: field('cs1'),
    seq: Number(field('cn1')),
    hash: field('cs5'),
  };
}

/** The session's seqs in the order they first arrived (duplicates, which at-least-once allows, dropped). */
function firstArrivals(received: Received[], session: string): number[] {
  const seen = new Set<number>();
  const out: number[] = [];
  for (const r of received) {
    if (r.session !== session || seen.has(r.seq)) continue;
    seen.add(r.seq);
    out.push(r.seq);
  }
  return out;
}

async function echo(client: Awaited<ReturnType<typeof connectClient>>['client'], message: string): Promise<void> {
  const result = await client.callTool({ name: 'echo', arguments: { message } });
  assert.match(JSON.stringify(result), new RegExp(`Echo: ${message}`));
}

/** Waits until the recording holds the whole (closed) session, then until rsyslog holds every one of its events. */
async function everyEventArrives(gw: TestGateway, rs: Rsyslog, session: string, parse: (line: string) => Received) {
  const store = gw.gateway.recorder!.store;
  await waitFor(async () => (await store.getSession(session))?.status === 'closed', 'the session to be sealed');
  const recorded = await allEvents(store, session);
  assert.ok(recorded.length > 10, `a real session (${recorded.length} events)`);
  const expected = recorded.map((e) => e.seq);
  await rs.waitForLines(
    (lines) => firstArrivals(lines.map(parse), session).length >= expected.length,
    `rsyslog to have all ${expected.length} events of the session`,
    60_000,
  );
  const received = rs.lines().map(parse);
  // In order: each event first arrived after every event before it.
  assert.deepEqual(firstArrivals(received, session), expected);
  // And it is the recorded event: its hash is the one in the session's chain.
  const hashes = new Map(recorded.map((e) => [e.seq, e.hash]));
  for (const r of received.filter((r) => r.session === session)) assert.equal(r.hash, hashes.get(r.seq), `seq ${r.seq}'s hash`);
  return received.filter((r) => r.session === session);
}

/** The sink's failed sends so far, as /metrics reports them. */
async function failures(gw: TestGateway): Promise<number | undefined> {
  const text = await (await fetch(new URL('/metrics', gw.url), { headers: gw.apiAuth })).text();
  const line = text.split('\n').find((l) => l.startsWith('portcullis_audit_failures_total{sink="siem"}'));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('syslog to rsyslog over TCP', () => {
  let dir: string;
  let rs: Rsyslog;
  let gw: TestGateway;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-rsyslog-'));
    rs = await startRsyslog(dir);
    gw = await startTestGateway({
      connections: { everything: { stdio: everythingStdio() } },
      audit: { sinks: [{ name: 'siem', syslog: { address: `127.0.0.1:${rs.port}`, appName: 'portcullis-test', hostname: 'gw.test', facility: 'local4' } }] },
    });
  });
  after(async () => {
    await gw?.stop();
    await rs?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every event of a session arrives in order, with rsyslog stopped and restarted in the middle', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    const { client } = await connectClient(transport);
    const session = transport.sessionId!;
    for (let i = 0; i < 5; i++) await echo(client, `before-${i}`);
    await rs.waitForLines((lines) => lines.some((l) => l.includes(`before-4`)), 'the first calls to reach rsyslog');

    await rs.stop();
    await waitFor(() => gw.log.text.includes('syslog: the connection to the receiver failed'), 'the sink to see rsyslog go');
    // The data path does not wait for the sink: calls go on while rsyslog is down.
    for (let i = 0; i < 5; i++) await echo(client, `during-${i}`);
    await waitFor(async () => ((await failures(gw)) ?? 0) > 0, 'the shipper to fail sending to the stopped rsyslog (/metrics)');

    await rs.start();
    for (let i = 0; i < 5; i++) await echo(client, `after-${i}`);
    await transport.terminateSession();
    await client.close();

    const received = await everyEventArrives(gw, rs, session, parseJsonLine);
    const first = received[0]!;
    // local4 (20) * 8 + informational (6); the configured host and app name; the recording instance; the audit kind.
    assert.equal(first.pri, 20 * 8 + 6);
    assert.deepEqual([first.hostname, first.appName, first.msgId], ['gw.test', 'portcullis-test', 'lifecycle']);
    assert.equal(first.procId, (await gw.gateway.recorder!.store.getSession(session))!.instanceId);
    assert.ok(
      rs.lines().some((l) => l.includes('during-4')),
      'what was recorded during the outage arrived',
    );
  });

  it('what rsyslog took into its socket buffer but never read (frozen, then killed) is sent again: nothing is lost', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    const { client } = await connectClient(transport);
    const session = transport.sessionId!;
    const store = gw.gateway.recorder!.store;
    for (let i = 0; i < 3; i++) await echo(client, `warm-${i}`);
    await rs.waitForLines((lines) => lines.some((l) => l.includes('warm-2')), 'the first calls to reach rsyslog');

    rs.freeze();
    for (let i = 0; i < 5; i++) await echo(client, `frozen-${i}`);
    // The sink has acknowledged them (the kernel took them, the connection is up), so the shipper moved its cursor
    // past them: from here on only the sink's own memory of what it wrote can bring them back.
    const recorded = (await allEvents(store, session)).at(-1)!.seq;
    // A session the sink has taken every event of is not pending.
    const taken = async () => {
      const [pending] = await store.auditPending('siem', { fromUs: 0, exceptInstances: [], sessionIds: [session], limit: 1 });
      return pending === undefined || pending.cursor >= recorded;
    };
    await waitFor(taken, 'the shipper to have the frozen calls acknowledged');
    assert.ok(!rs.lines().some((l) => l.includes('frozen-')), 'rsyslog, frozen, has written none of them');

    await rs.kill();
    await waitFor(() => gw.log.text.includes('closed by the receiver') || /ECONNRESET/.test(gw.log.text), 'the sink to see the connection go');
    await rs.start();
    for (let i = 0; i < 3; i++) await echo(client, `later-${i}`);
    await transport.terminateSession();
    await client.close();

    await everyEventArrives(gw, rs, session, parseJsonLine);
    assert.ok(rs.lines().some((l) => l.includes('frozen-4')));
  });
});

describe('syslog to rsyslog over TLS', () => {
  let dir: string;
  let rs: Rsyslog;
  let certs: ReturnType<typeof makeCertificates>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-rsyslog-tls-'));
    certs = makeCertificates(dir, 'syslog.test');
    rs = await startRsyslog(dir, certs.server);
  });
  after(async () => {
    await rs?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a session arrives in order as CEF over TLS with a client certificate, the receiver checked by name', async () => {
    const gw = await startTestGateway({
      connections: { everything: { stdio: everythingStdio() } },
      audit: {
        sinks: [
          {
            name: 'siem',
            syslog: {
              address: `127.0.0.1:${rs.port}`,
              format: 'cef',
              tls: { ca: `\${file:${certs.ca}}`, cert: `\${file:${certs.client.cert}}`, key: `\${file:${certs.client.key}}`, serverName: 'syslog.test' },
            },
          },
        ],
      },
    });
    try {
      const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
      const { client } = await connectClient(transport);
      const session = transport.sessionId!;
      for (let i = 0; i < 5; i++) await echo(client, `tls-${i}`);
      await transport.terminateSession();
      await client.close();
      const received = await everyEventArrives(gw, rs, session, parseCefLine);
      assert.equal(received[0]!.appName, 'portcullis');
      assert.ok(!gw.log.text.includes('BEGIN'), 'no key or certificate in a log line');
    } finally {
      await gw.stop();
    }
  });

  /** A sink on its own (no gateway): what it does with a receiver it must not trust, or one that refuses it. */
  function sink(tls: Record<string, string>) {
    const config = syslogSinkKind.schema(processSecretSources).parse({ address: `127.0.0.1:${rs.port}`, tls });
    return syslogSinkKind.create(config, { log: pino({ level: 'silent' }), name: 'probe' });
  }
  const probe: AuditRecord = {
    instance: 'probe',
    session: 'never-delivered',
    seq: 0,
    time: '2026-12-05T10:00:00.000000Z',
    kind: 'lifecycle',
    event: 'open',
    connection: 'c',
    subject: 's',
    edge: 'modern',
    payload: {},
    hash: '00',
  };

  it('a receiver whose certificate does not carry the expected name, or that refuses the client certificate, gets nothing acknowledged', async () => {
    const wrongName = sink({
      ca: `\${file:${certs.ca}}`,
      cert: `\${file:${certs.client.cert}}`,
      key: `\${file:${certs.client.key}}`,
      serverName: 'other.test',
    });
    await assert.rejects(wrongName.send([probe]), /syslog receiver at 127\.0\.0\.1:\d+: Hostname\/IP does not match certificate's altnames/);
    await wrongName.close();
    // TLS 1.3: the handshake completes on the client's side before rsyslog refuses the missing certificate.
    const noCert = sink({ ca: `\${file:${certs.ca}}`, serverName: 'syslog.test' });
    await assert.rejects(noCert.send([probe]), /dropped the connection|ECONNRESET|closed/);
    await noCert.close();
    assert.ok(!rs.lines().some((l) => l.includes('never-delivered')));
  });
});
