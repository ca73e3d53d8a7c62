import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoFilesServerEntry } from '../src/config/load.js';
import type { Verdicts } from './bridges.js';
import { type McpSession, openSession } from './mcp-client.js';
import { everythingStdioConnection, type Proc, startDirectServer, startGateway } from './processes.js';
import { connect } from './sessions.js';

/**
 * Virtual servers (issue 19): one gateway serves three connections, `everything` (server-everything over stdio),
 * `files` (server-filesystem over stdio, a scratch folder) and `remote` (server-everything's own Streamable HTTP), and
 * the virtual server `toolbox` over the three. In the same run and on the same gateway:
 *   - a `tools/call` (echo) through the virtual server (`everything__echo`) against the same call on the member
 *     connection `everything` (`echo`): sequential p50, target ≤ 1.05×;
 *   - `tools/list` of the virtual server (the three members' lists merged) against the largest member's own
 *     `tools/list` on its connection: sequential p50, target ≤ 1.5×.
 * Both with the bare client (mcp-client.ts) and with the official v1 SDK client, their measurements interleaved in
 * rounds so that drift on the machine hits every target alike; the v1 client's lists also less the time it spends
 * compiling the listed tools' output schemas (its own work, which grows with the tools listed). The gateway records as shipped (write-ahead, SQLite):
 * the verdicts are on that one. The same is measured on a second gateway with recording off, to tell what the
 * recording of the member sessions beside the virtual session costs from what the in-process hop costs.
 */

export interface VirtualBenchSettings {
  /** tools/call measured per target, after `warm`. */
  calls: number;
  warm: number;
  /** tools/list measured per target, after `warm / 4`. */
  lists: number;
  rounds: number;
}

/** What one measured operation is: a name, and the operation (rejecting unless it answered right). */
interface Timed {
  name: string;
  run: () => Promise<unknown>;
  /** The client's own work within the last run, in ms: also timed without it, as `<name> net`. */
  clientMs?: () => number;
}

interface Figures {
  p50: number;
  p99: number;
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

/** `count` runs of each target after `warm` unmeasured ones, in `rounds` blocks whose order rotates. */
async function interleaved(targets: Timed[], count: number, warm: number, rounds: number): Promise<Map<string, Figures>> {
  for (const t of targets) for (let i = 0; i < warm; i++) await t.run();
  const samples = new Map<string, number[]>(
    targets.flatMap((t) =>
      t.clientMs === undefined
        ? [[t.name, []]]
        : [
            [t.name, []],
            [`${t.name} net`, []],
          ],
    ),
  );
  const perRound = Math.ceil(count / rounds);
  for (let round = 0; round < rounds; round++) {
    for (const t of targets.map((_, i) => targets[(i + round) % targets.length]!)) {
      const out = samples.get(t.name)!;
      for (let i = 0; i < perRound; i++) {
        const start = process.hrtime.bigint();
        await t.run();
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        out.push(ms);
        if (t.clientMs !== undefined) samples.get(`${t.name} net`)!.push(ms - t.clientMs());
      }
    }
  }
  return new Map(
    [...samples].map(([name, times]) => {
      const sorted = times.sort((a, b) => a - b);
      return [name, { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) }];
    }),
  );
}

/**
 * The time a v1 SDK client spends in its own `cacheToolMetadata` after each tools/list: it compiles every tool's
 * outputSchema (Ajv) anew on every list, which costs more than the gateway's whole answer and grows with the tools
 * listed, so the v1 list figures are also given without it.
 */
function clientSchemaTime(client: object): () => number {
  const c = client as { cacheToolMetadata?: (tools: unknown[]) => void };
  const original = c.cacheToolMetadata?.bind(client);
  if (original === undefined) throw new Error('the v1 SDK client has no cacheToolMetadata: update clientSchemaTime');
  let last = 0;
  let spent = 0;
  c.cacheToolMetadata = (tools) => {
    const start = process.hrtime.bigint();
    original(tools);
    spent += Number(process.hrtime.bigint() - start) / 1e6;
  };
  return () => {
    const ms = spent - last;
    last = spent;
    return ms;
  };
}

/** The v1 SDK client as this bench drives it: calls by name, lists followed to their end. */
interface V1 {
  callTool(params: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
  listTools(params?: { cursor?: string }): Promise<{ tools: unknown[]; nextCursor?: string }>;
}

async function v1Echo(client: V1, tool: string): Promise<void> {
  const result = (await client.callTool({ name: tool, arguments: { message: 'bench' } })) as { content?: Array<{ text?: string }> };
  if (result.content?.[0]?.text !== 'Echo: bench') throw new Error(`${tool} failed: ${JSON.stringify(result).slice(0, 200)}`);
}

async function v1List(client: V1): Promise<number> {
  let tools = 0;
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor === undefined ? {} : { cursor });
    tools += page.tools.length;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return tools;
}

const members = ['everything', 'files', 'remote'] as const;

/** Which side of a comparison a target times: a member connection, or the virtual server over it. */
type Side = 'member' | 'virtual';

/** The tool echo is called as, on each side. */
const echoTool: Record<Side, string> = { member: 'echo', virtual: 'everything__echo' };

/** The verdicts, on the p50 ratios virtual/member (`measure`'s `ratios`). */
const targets = [
  { ratio: 'callBare', target: 'p50 tools/call via a 3-member virtual server / on the member, bare client', limit: 1.05 },
  { ratio: 'callV1', target: 'p50 tools/call via a 3-member virtual server / on the member, v1 SDK client', limit: 1.05 },
  { ratio: 'listBare', target: 'p50 tools/list of a 3-member virtual server / largest member, bare client', limit: 1.5 },
  { ratio: 'listV1', target: 'p50 tools/list of a 3-member virtual server / largest member, v1 SDK client', limit: 1.5 },
] as const;

/** One gateway's figures: call and list p50 for each client, member vs virtual. */
async function measure(gateway: Proc, s: VirtualBenchSettings): Promise<Record<string, unknown>> {
  const url = (name: string) => `http://127.0.0.1:${gateway.port}/mcp/${name}`;
  const headers = { authorization: `Bearer ${gateway.token}` };
  const bare = new Map<string, McpSession>();
  const v1 = new Map<string, { client: V1; end: () => Promise<void>; schemaMs: () => number }>();
  try {
    for (const name of [...members, 'toolbox']) {
      bare.set(name, await openSession(url(name), gateway.token));
      const c = await connect({ name, url: url(name), headers, client: 'v1' });
      const end = async () => {
        await c.end();
        await c.client.close();
      };
      v1.set(name, { client: c.client as unknown as V1, end, schemaMs: clientSchemaTime(c.client) });
    }
    // Every member must be in the virtual server's list, or the comparison would time a smaller list.
    const counts = new Map<string, number>();
    for (const name of [...members, 'toolbox']) counts.set(name, await bare.get(name)!.listTools());
    const memberSum = members.reduce((sum, m) => sum + counts.get(m)!, 0);
    if (counts.get('toolbox') !== memberSum)
      throw new Error(`the virtual server lists ${counts.get('toolbox')} tools, its members ${members.map((m) => `${m} ${counts.get(m)}`).join(', ')}`);
    const largest = [...members].sort((a, b) => counts.get(b)! - counts.get(a)!)[0]!;
    /** `member` against the virtual server, with each client: bare member, bare virtual, v1 member, v1 virtual. */
    const versus = (
      member: string,
      onBare: (session: McpSession, side: Side) => Promise<unknown>,
      onV1: (client: V1, side: Side) => Promise<unknown>,
      /** Also time the v1 client net of its own schema compiling (what listTools costs it, not the gateway). */
      netOfSchemas = false,
    ): Timed[] => {
      const connection: Record<Side, string> = { member, virtual: 'toolbox' };
      return (['bare', 'v1'] as const).flatMap((client) =>
        (['member', 'virtual'] as const).map((side) => ({
          name: `${client} ${side}`,
          run: client === 'bare' ? () => onBare(bare.get(connection[side])!, side) : () => onV1(v1.get(connection[side])!.client, side),
          ...(client === 'v1' && netOfSchemas ? { clientMs: v1.get(connection[side])!.schemaMs } : {}),
        })),
      );
    };

    const calls = await interleaved(
      versus(
        'everything',
        (session, side) => session.echoAs(echoTool[side]),
        (client, side) => v1Echo(client, echoTool[side]),
      ),
      s.calls,
      s.warm,
      s.rounds,
    );
    // Every member's own list is timed too (bare client): the virtual server's list waits for the slowest of them.
    const lists = await interleaved(
      [
        ...versus(
          largest,
          (session) => session.listTools(),
          (client) => v1List(client),
          true,
        ),
        ...members.filter((m) => m !== largest).map((m) => ({ name: `bare ${m}`, run: () => bare.get(m)!.listTools() })),
      ],
      s.lists,
      Math.ceil(s.warm / 4),
      s.rounds,
    );
    const memberLists = Object.fromEntries(members.map((m) => [m, (m === largest ? lists.get('bare member') : lists.get(`bare ${m}`))!]));
    const row = (what: string, m: Map<string, Figures>, client: 'bare' | 'v1' | 'v1 net') => {
      const [label, suffix] = client === 'v1 net' ? ['v1 SDK, less its schema compiling', ' net'] : [client === 'v1' ? 'v1 SDK' : 'bare', ''];
      const member = m.get(`${client === 'v1 net' ? 'v1' : client} member${suffix}`)!;
      const virtual = m.get(`${client === 'v1 net' ? 'v1' : client} virtual${suffix}`)!;
      console.log(
        `${what.padEnd(11)} ${label.padEnd(8)} ${fmt(member.p50).padStart(10)} ${fmt(member.p99).padStart(10)} ${fmt(virtual.p50).padStart(11)} ${fmt(virtual.p99).padStart(11)}   ${fmt(virtual.p50 / member.p50)}×`,
      );
      return virtual.p50 / member.p50;
    };
    console.log(`  tools: ${[...counts].map(([n, c]) => `${n} ${c}`).join(', ')}; tools/list compared with the largest member, ${largest}`);
    console.log('            client    member p50  member p99  virtual p50  virtual p99   p50 virtual/member');
    const ratios = {
      callBare: row('tools/call', calls, 'bare'),
      callV1: row('tools/call', calls, 'v1'),
      listBare: row('tools/list', lists, 'bare'),
      listV1: row('tools/list', lists, 'v1'),
      listV1Net: row('tools/list', lists, 'v1 net'),
    };
    const slowest = [...members].sort((a, b) => memberLists[b]!.p50 - memberLists[a]!.p50)[0]!;
    console.log(
      `  each member's own tools/list, bare client, p50: ${members.map((m) => `${m} ${fmt(memberLists[m]!.p50)} ms`).join(', ')}; the virtual server's / the slowest's (${slowest}): ${fmt(lists.get('bare virtual')!.p50 / memberLists[slowest]!.p50)}×`,
    );
    return { counts: Object.fromEntries(counts), largest, slowest, calls: Object.fromEntries(calls), lists: Object.fromEntries(lists), memberLists, ratios };
  } finally {
    for (const s of bare.values()) await s.close();
    for (const c of v1.values()) await c.end().catch(() => {});
  }
}

/** The virtual-server bench: the gateway as shipped (recording write-ahead) and the same with recording off. */
export async function virtualVsMember(verdicts: Verdicts, s: VirtualBenchSettings): Promise<Record<string, unknown>> {
  const filesEntry = demoFilesServerEntry();
  if (filesEntry === undefined) throw new Error('@modelcontextprotocol/server-filesystem is not installed (npm install)');
  const folder = mkdtempSync(join(tmpdir(), 'portcullis-bench-files-'));
  for (let i = 0; i < 5; i++) writeFileSync(join(folder, `note-${i}.txt`), `note ${i}\n`);
  const remote = await startDirectServer();
  const connections = {
    everything: everythingStdioConnection(),
    files: { stdio: { command: process.execPath, args: [filesEntry, folder] } },
    remote: { http: { url: `http://127.0.0.1:${remote.port}/mcp` } },
  };
  const virtualServers = {
    toolbox: { access: { groups: ['bench'] }, members: members.map((connection) => ({ connection })) },
  };
  const out: Record<string, unknown> = {};
  try {
    for (const mode of ['write-ahead', 'off'] as const) {
      // A bare session of a member unused for minutes while the calls are timed (a busy machine) is not abandoned.
      const sessions = { idleTimeout: '1h', abandonedAfter: 'off' };
      const gateway = await startGateway(connections, { virtualServers, recording: { mode }, sessions });
      try {
        console.log(
          `\nVirtual server (issue 19): toolbox over everything (stdio), files (stdio), remote (Streamable HTTP), recording ${mode}; sequential, ${s.calls} calls and ${s.lists} lists per target after warm-up`,
        );
        const figures = await measure(gateway, s);
        out[mode] = figures;
        if (mode !== 'write-ahead') continue;
        const r = figures.ratios as Record<(typeof targets)[number]['ratio'], number>;
        for (const { ratio, target, limit } of targets) verdicts.push({ target, value: r[ratio], limit: `≤ ${limit}`, pass: r[ratio] <= limit });
      } finally {
        await gateway.stop();
      }
    }
    return out;
  } finally {
    await remote.stop();
    rmSync(folder, { recursive: true, force: true });
  }
}
