import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { eventAad, isSealed, newDataKey, sealText } from '../src/encryption/envelope.js';
import { eventHash } from '../src/recording/chain.js';
import { openStore } from '../src/store/open.js';
import type { Verdicts } from './bridges.js';
import { alternatingPair, type Concurrent } from './gateway-pair.js';
import { benchPostgresStore } from './postgres.js';
import { everythingStdioConnection, startGateway } from './processes.js';

/**
 * Recordings encrypted at rest (issue 21) vs plain: gateways in front of server-everything over stdio, recording
 * write-ahead on both, one with a local KEK (a data key per session, every payload sealed with AES-256-GCM before it
 * is hashed), 32 concurrent clients in alternating rounds, on SQLite and on PostgreSQL, repeated with fresh gateways
 * (the verdict is the median ratio). After each run the encrypted gateway's store is read: a run that stored plain
 * payloads, or no data keys, cannot pass.
 */

// The encrypted gateways inherit the environment: their KEK, which their config names (`${env:…}`).
process.env.PORTCULLIS_BENCH_KEK ??= randomBytes(32).toString('base64');

/** recording.encryption of the encrypted gateways: one local KEK, from the environment. */
const benchEncryption = { encryption: { current: 'bench', keys: [{ id: 'bench', local: '${env:PORTCULLIS_BENCH_KEK}' }] } };

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function encryptionOnOff(
  verdicts: Verdicts,
  o: { repetitions: number; clients: number; concurrent: Concurrent },
): Promise<Record<string, unknown>> {
  const backends = ['SQLite', ...(process.env.PORTCULLIS_BENCH_NO_POSTGRES === undefined ? ['PostgreSQL'] : [])] as const;
  const out: Record<string, unknown> = { sealUs: sealCost() };
  for (const backend of backends) {
    const ratios: number[] = [];
    const runs: unknown[] = [];
    console.log(
      `\nRecording encrypted vs plain (write-ahead, ${backend}), gateway→stdio, ${o.clients} concurrent clients; ${o.repetitions} repetition(s) with fresh gateways`,
    );
    console.log('repetition          plain calls/s   encrypted calls/s   encrypted / plain   sessions   data keys');
    for (let rep = 0; rep < o.repetitions; rep++) {
      const stores = backend === 'PostgreSQL' ? [await benchPostgresStore(), await benchPostgresStore()] : [];
      try {
        const storeOf = (i: number) => (stores[i] === undefined ? {} : { store: stores[i]!.url });
        const plain = async () => startGateway({ everything: everythingStdioConnection() }, storeOf(0));
        const encrypted = async () => startGateway({ everything: everythingStdioConnection() }, { ...storeOf(1), recording: benchEncryption });
        const sides = { off: { name: 'plain', start: plain }, on: { name: 'encrypted', start: encrypted } };
        await alternatingPair(rep, sides, o.concurrent, async ({ on: gEnc }, { off: plainRate, on: encRate }) => {
          ratios.push(encRate / plainRate);
          const stored = await encryptedStore(stores[1]?.url ?? `sqlite:${join(gEnc.dataDir!, 'portcullis.db')}`);
          console.log(
            `${String(rep + 1).padEnd(18)}${fmt(plainRate, 0).padStart(15)}${fmt(encRate, 0).padStart(20)}${`${fmt(encRate / plainRate)}×`.padStart(20)}${String(stored.sessions).padStart(11)}${String(stored.dataKeys).padStart(12)}`,
          );
          runs.push({ plainCallsPerSec: plainRate, encryptedCallsPerSec: encRate, ...stored });
        });
      } finally {
        for (const s of stores) await s.drop();
      }
    }
    const ratio = median(ratios);
    if (o.repetitions > 1) console.log(`median            ${`${fmt(ratio)}×`.padStart(55)}`);
    verdicts.push({ target: `calls/s recording encrypted / plain (${backend}, 32 clients), median`, value: ratio, limit: '≥ 0.95', pass: ratio >= 0.95 });
    out[backend] = { ratios, runs };
  }
  return out;
}

/**
 * The recorder's added work per event, on its own: one payload sealed (AES-256-GCM, a fresh nonce, the event's place as
 * associated data, base64), for a payload the size of an echo call's message and of a 4 KiB one: CPU time on one core,
 * the best of five trials, which the machine's load disturbs far less than the closed-loop rates.
 */
function sealCost(): Record<string, number> {
  const key = newDataKey();
  const out: Record<string, number> = {};
  for (const bytes of [300, 4096]) {
    const text = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'x'.repeat(bytes - 60) }] } });
    // The best of five trials: the machine's load only ever adds to CPU time (cache misses, another thread's core).
    const n = 10_000;
    for (let i = 0; i < 5000; i++) sealText(key, eventAad('s', i, 'payload'), text);
    const event = { sessionId: 's', seq: 1, timeUs: 1, monoUs: 1, kind: 'message' as const, direction: null, boundary: null, payload: text, forwarded: null };
    const best = (fn: (i: number) => unknown) => {
      let min = Number.POSITIVE_INFINITY;
      for (let trial = 0; trial < 5; trial++) {
        const start = process.cpuUsage();
        for (let i = 0; i < n; i++) fn(i);
        const used = process.cpuUsage(start);
        min = Math.min(min, (used.user + used.system) / n);
      }
      return min;
    };
    out[`seal ${bytes} B`] = best((i) => sealText(key, eventAad('s', i, 'payload'), text));
    out[`hash ${bytes} B`] = best(() => eventHash('0'.repeat(64), event));
  }
  console.log(
    `\nCPU per recorded value, sealing it (what encryption adds) and hashing it into the chain (what recording already does): ${Object.entries(out)
      .map(([k, v]) => `${k} ${fmt(v, 1)} µs`)
      .join(', ')}`,
  );
  return out;
}

/** What the encrypted gateway stored: its sessions, each with a data key, and not one plain payload among their events. */
async function encryptedStore(url: string): Promise<{ sessions: number; dataKeys: number }> {
  const store = await openStore(url);
  try {
    const sessions = await store.listSessions({ limit: 1000 });
    const keys = await store.dataKeys(sessions.map((s) => s.id));
    if (sessions.length === 0 || keys.length !== sessions.length) {
      throw new Error(`the encrypted gateway's store holds ${sessions.length} sessions and ${keys.length} data keys: encryption did not run`);
    }
    for (const s of sessions.slice(0, 5)) {
      const plain = (await store.events(s.id, -1, 1000)).filter((e) => !isSealed(e.payload) || (e.forwarded !== null && !isSealed(e.forwarded)));
      if (plain.length > 0) throw new Error(`session ${s.id} of the encrypted gateway stored ${plain.length} plain payloads`);
    }
    return { sessions: sessions.length, dataKeys: keys.length };
  } finally {
    await store.close();
  }
}
