import { startCluster } from '../test/helpers/replicas.js';
import { benchLimits, everythingStdioConnection } from './processes.js';
import { cpuSince, cpuSnapshot } from './cluster-cpu.js';

const n = Number(process.argv[2] ?? 3);
const c = await startCluster({ count: n, connections: { everything: everythingStdioConnection() }, extra: { log: { level: 'warn' }, limits: benchLimits, sessions: { idleTimeout: '1h' } } });
await new Promise((r) => setTimeout(r, 5000));
for (let i = 0; i < 3; i++) {
  const before = await cpuSnapshot(c);
  await new Promise((r) => setTimeout(r, 5000));
  console.log(n, 'replicas idle CPU ms/s', JSON.stringify(Object.fromEntries(Object.entries(await cpuSince(c, before)).map(([k, v]) => [k, (v / 5).toFixed(1)]))));
}
await c.stop();
