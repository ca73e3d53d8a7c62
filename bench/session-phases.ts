/**
 * Where a short-lived session's time goes, phase by phase (connect, tools/list, each call, close), against any
 * Streamable HTTP endpoint, with a pause between sessions so that a gateway's warm spare is back before the next one:
 *   node dist/bench/session-phases.js URL [TOKEN] [--sessions N] [--gap MS]
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, token] = process.argv.slice(2).filter((a) => !a.startsWith('--') && !/^\d+$/.test(a));
const option = (name: string, fallback: number) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : fallback);
const sessions = option('--sessions', 10);
const gap = option('--gap', 0);
const phases: Record<string, number[]> = { connect: [], list: [], call1: [], call2: [], call3: [], close: [], total: [] };
for (let i = 0; i < sessions; i++) {
  const t0 = performance.now();
  let t = t0;
  const lap = (name: string) => {
    const now = performance.now();
    phases[name]!.push(now - t);
    t = now;
  };
  const transport = new StreamableHTTPClientTransport(new URL(url!), { requestInit: { headers: token ? { authorization: `Bearer ${token}` } : {} } });
  const client = new Client({ name: 'phases', version: '1.0.0' });
  await client.connect(transport);
  lap('connect');
  await client.listTools();
  lap('list');
  for (const n of [1, 2, 3]) {
    await client.callTool({ name: 'echo', arguments: { message: 'bench' } });
    lap(`call${n}`);
  }
  await transport.terminateSession();
  await client.close();
  lap('close');
  phases.total!.push(performance.now() - t0);
  if (gap > 0) await new Promise((r) => setTimeout(r, gap));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  Object.entries(phases)
    .map(([k, v]) => `${k} ${median(v).toFixed(1)}`)
    .join('  '),
  'ms (medians)',
);
