import { pino } from 'pino';
import { readFileSync } from 'node:fs';
const await_read = () => readFileSync('/proc/stat', 'utf8');
import { mkdtempSync } from 'node:fs';
import { openStore } from '/work/main/dist/src/store/open.js';
import { loadSigningKey } from '/work/main/dist/src/recording/keys.js';
import { Recorder } from '/work/main/dist/src/recording/recorder.js';
import { SessionRecording } from '/work/main/dist/src/recording/session-recording.js';
const dir = mkdtempSync('/tmp/micro-');
const url = process.argv[2] ?? `sqlite:${dir}/m.db`;
const store = await openStore(url);
const rec = await Recorder.start({ store, instanceId: 'm', key: loadSigningKey(dir), mode: 'write-ahead', log: pino({ level: 'silent' }) });
const row = (id) => ({ id, instanceId: 'm', connection: 'c', subject: 'u', email: null, groups: [], edge: 'e', remoteAddress: null, clientInfo: null, serverInfo: null, protocolVersion: null, openedAtUs: Date.now() * 1000, closedAtUs: null, status: 'open', closeReason: null, eventCount: null, lastHash: null, seal: null, sealKeyId: null, denials: 0, redactions: 0 });
const sessions = Array.from({ length: 32 }, (_, i) => new SessionRecording(rec, rec.openSession(row(`s${i}-${Math.random()}`))));
const req = JSON.stringify({ jsonrpc: '2.0', id: 12, method: 'tools/call', params: { name: 'echo', arguments: { message: 'bench' } } });
const res = JSON.stringify({ jsonrpc: '2.0', id: 12, result: { content: [{ type: 'text', text: 'Echo: bench' }] } });
const perRound = Number(process.env.PER ?? 2); // calls per session per loop turn
async function round() {
  for (const s of sessions) for (let k = 0; k < perRound; k++) { s.message('toServer', 'received', req); s.message('toServer', 'delivered', req); s.message('toClient', 'received', res); s.message('toClient', 'delivered', res); }
  await Promise.all(sessions.map((s) => s.barrier()));
}
for (let i = 0; i < 200; i++) await round();
const sys = () => { const l = (await_read()).split('\n')[0].split(/\s+/).slice(1).map(Number); return l[0] + l[1] + l[2] + l[5] + l[6]; };
const m0 = sys();
const c0 = process.cpuUsage(); const t0 = performance.now(); const st0 = rec.stats;
const rounds = 1000;
for (let i = 0; i < rounds; i++) await round();
const cpu = process.cpuUsage(c0); const m1 = sys(); const wall = performance.now() - t0; const st = rec.stats;
const calls = rounds * 32 * perRound;
console.log(url.slice(0, 10), `per call: CPU ${((cpu.user + cpu.system) / calls).toFixed(1)}µs (user ${(cpu.user / calls).toFixed(1)}, sys ${(cpu.system / calls).toFixed(1)}), wall ${(wall * 1000 / calls).toFixed(1)}µs; machine CPU ${((m1 - m0) * 10000 / calls).toFixed(1)}µs; events/commit ${((st.events - st0.events) / (st.commits - st0.commits)).toFixed(1)}`);
await Promise.all(sessions.map((s) => s.close('x')));
await rec.close(); await store.close();
