import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLocalApiKey } from '../src/crypto/local-api-key.js';
import { startRsyslog } from '../test/helpers/rsyslog.js';
import type { Verdicts } from './bridges.js';
import { alternatingPair, type Concurrent } from './gateway-pair.js';
import { everythingStdioConnection, type Proc, startAuditCollector, startGateway } from './processes.js';

/**
 * Audit streaming on vs off (issue 20): gateways in front of server-everything over stdio, recording on (SQLite, as
 * shipped; audit streams need it), one without audit sinks and one streaming every recorded event to a live sink,
 * 32 concurrent clients in alternating rounds. Each sink kind is a line of `sinks` (T3 adds syslog). The sink runs
 * in its own process; the records it took are counted afterwards, so a run where nothing was shipped cannot pass.
 */

/** A live sink of one kind: its process, and the `audit.sinks` entry of a gateway shipping to it. */
interface LiveSink {
  kind: string;
  start(): Promise<{ proc: Proc; sink: Record<string, unknown>; taken(): Promise<number> }>;
}

// The gateways inherit the environment: the header secret is a reference, as the config requires of a credential.
process.env.PORTCULLIS_BENCH_HEC_TOKEN ??= 'bench-hec-token';

const sinks: LiveSink[] = [
  {
    kind: 'HTTP',
    async start() {
      const proc = await startAuditCollector();
      const base = `http://127.0.0.1:${proc.port}`;
      return {
        proc,
        sink: { name: 'bench-http', http: { url: `${base}/services/collector/raw`, headers: { Authorization: 'Splunk ${env:PORTCULLIS_BENCH_HEC_TOKEN}' } } },
        taken: async () => ((await (await fetch(`${base}/count`)).json()) as { records: number }).records,
      };
    },
  },
  {
    // Debian's rsyslog as the tests run it (test/helpers/rsyslog.ts): imtcp, octet-counted RFC 5424, each message to a file.
    kind: 'syslog (rsyslog)',
    async start() {
      const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-rsyslog-'));
      const rs = await startRsyslog(dir);
      const stop = async () => {
        await rs.stop();
        rmSync(dir, { recursive: true, force: true });
      };
      return {
        proc: { child: rs.child, port: rs.port, stop },
        sink: { name: 'bench-syslog', syslog: { address: `127.0.0.1:${rs.port}` } },
        taken: async () => rs.lines().length,
      };
    },
  },
];

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function auditOnOff(verdicts: Verdicts, o: { repetitions: number; clients: number; concurrent: Concurrent }): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  // `--sink syslog` (or http): only the sink kinds whose name starts so.
  const chosen = process.argv.includes('--sink') ? process.argv[process.argv.indexOf('--sink') + 1]?.toLowerCase() : undefined;
  for (const live of sinks.filter((l) => chosen === undefined || l.kind.toLowerCase().startsWith(chosen))) {
    const ratios: number[] = [];
    const runs: unknown[] = [];
    console.log(
      `\nAudit streaming to a live ${live.kind} sink on vs off (recording on, SQLite), gateway→stdio, ${o.clients} concurrent clients; ${o.repetitions} repetition(s) with fresh gateways`,
    );
    console.log('repetition        audit off calls/s   audit on calls/s   on / off   records taken   backlog at end');
    for (let rep = 0; rep < o.repetitions; rep++) {
      const sink = await live.start();
      try {
        const on = async () => startGateway({ everything: everythingStdioConnection() }, { audit: { sinks: [sink.sink] } });
        const off = async () => startGateway({ everything: everythingStdioConnection() });
        const sides = { off: { name: 'audit off', start: off }, on: { name: 'audit on', start: on } };
        await alternatingPair(rep, sides, o.concurrent, async ({ on: gOn }, { off: offRate, on: onRate }) => {
          ratios.push(onRate / offRate);
          const backlog = await backlogOf(gOn);
          const taken = await sink.taken();
          console.log(
            `${String(rep + 1).padEnd(18)}${fmt(offRate, 0).padStart(17)}${fmt(onRate, 0).padStart(19)}${`${fmt(onRate / offRate)}×`.padStart(11)}${String(taken).padStart(16)}${String(backlog).padStart(17)}`,
          );
          if (taken === 0) throw new Error(`the ${live.kind} sink took no record: audit streaming did not run`);
          runs.push({ offCallsPerSec: offRate, onCallsPerSec: onRate, recordsTaken: taken, backlogAtEnd: backlog });
        });
      } finally {
        await sink.proc.stop();
      }
    }
    const ratio = median(ratios);
    if (o.repetitions > 1) console.log(`median            ${fmt(ratio)}×`);
    verdicts.push({ target: `calls/s audit streaming to a live ${live.kind} sink on / off (32 clients)`, value: ratio, limit: '≥ 0.95', pass: ratio >= 0.95 });
    out[live.kind] = { ratios, runs };
  }
  return out;
}

/** The gateway's audit backlog gauge (events recorded and not yet shipped) as /metrics has it. */
async function backlogOf(gateway: Proc): Promise<number | undefined> {
  const key = readLocalApiKey(gateway.dataDir!);
  const text = await (await fetch(`http://127.0.0.1:${gateway.port}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith('portcullis_audit_backlog_events{'));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}
