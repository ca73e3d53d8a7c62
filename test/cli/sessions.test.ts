import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { cliPath } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `portcullis sessions list|show|replay|verify|export --config FILE` against the recordings of a running
 * gateway (the same config file), as real processes.
 */

describe('portcullis sessions', () => {
  let dir: string;
  let configFile: string;
  let gw: TestGateway;
  const ids: string[] = [];

  async function session(calls: (client: Client) => Promise<void>): Promise<string> {
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'cli-test-client', version: '3.1.4' });
    await client.connect(transport);
    const id = transport.sessionId!;
    await calls(client);
    await transport.terminateSession();
    await client.close();
    return id;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-sessions-cli-'));
    const config = {
      dataDir: join(dir, 'data'),
      store: `sqlite:${join(dir, 'data', 'recordings.db')}`,
      connections: { everything: { stdio: everythingStdio(), tools: { deny: ['get-env'] } } },
    };
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, stringify({ ...config, listen: '127.0.0.1:1' }));
    gw = await startTestGateway(config);
    ids.push(
      await session(async (c) => {
        await c.callTool({ name: 'echo', arguments: { message: 'first session' } });
      }),
    );
    ids.push(
      await session(async (c) => {
        await c.callTool({ name: 'echo', arguments: { message: 'second session' } });
        await c.callTool({ name: 'get-env', arguments: {} }).catch(() => {});
      }),
    );
  });

  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCli([...args, '--config', configFile]);

  it('list: a table of sessions, newest first', async () => {
    const r = await cli('sessions', 'list');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^SESSION +OPENED \(UTC\) +DURATION +USER +CONNECTION +ERA +STATUS +EVENTS +CLIENT$/);
    assert.ok(lines[1]!.startsWith(ids[1]!), 'newest first');
    assert.ok(lines[2]!.startsWith(ids[0]!));
    assert.match(lines[1]!, /tester +everything +legacy +closed +\d+ +cli-test-client 3\.1\.4$/);
  });

  it('list: filters and JSON lines', async () => {
    const json = await cli('sessions', 'list', '--json', '--user', 'tester', '--connection', 'everything', '--status', 'closed', '--since', '1h');
    assert.equal(json.code, 0, json.stderr);
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; denials: number });
    assert.deepEqual(
      rows.map((r) => r.id),
      [ids[1], ids[0]],
    );
    assert.equal(rows[0]!.denials, 1, 'the refused get-env call is counted');
    assert.equal((await cli('sessions', 'list', '--user', 'mallory')).stdout, 'no sessions match\n');
    assert.equal((await cli('sessions', 'list', '--until', '2000-01-01')).stdout, 'no sessions match\n');
    assert.equal((await cli('sessions', 'list', '--limit', '1', '--json')).stdout.trim().split('\n').length, 1);
  });

  it('list: bad flags are named with what is expected', async () => {
    const status = await cli('sessions', 'list', '--status', 'done');
    assert.equal(status.code, 2);
    assert.match(status.stderr, /--status expects one of open, closed, cut-off, found "done"/);
    const since = await cli('sessions', 'list', '--since', 'yesterday');
    assert.equal(since.code, 2);
    assert.match(since.stderr, /--since expects an ISO date or time .* or a duration ago/);
  });

  it('show: the facts and a readable transcript, with decisions marked', async () => {
    const r = await cli('sessions', 'show', ids[1]!);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Session +${ids[1]}$`, 'm'));
    assert.match(r.stdout, /^Client +cli-test-client 3\.1\.4 +Server +mcp-servers\/everything/m);
    assert.match(r.stdout, /client {2}→ gateway → server {2}request tools\/call #\d+ echo +\{"message":"second session"\}/);
    assert.match(r.stdout, /server {2}→ gateway → client {2}result {2}#\d+ +Echo: second session/);
    // A refused call is shown as received, then the decision, then the gateway's own answer.
    assert.match(r.stdout, /client +→ gateway +request tools\/call #\d+ get-env/);
    assert.match(r.stdout, /s +gateway → client +error +#\d+ -31003/);
    assert.match(r.stdout, /⚑ tool-filter answer tools\/call #\d+: tool 'get-env' is not allowed/);
    assert.match(r.stdout, /■ closed +client ended the session$/m);
    const missing = await cli('sessions', 'show', 'no-such-session');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no session "no-such-session"/);
  });

  it('export: JSON lines a SIEM can ingest, with the exact payloads', async () => {
    const r = await cli('sessions', 'export', ids[0]!, '--format', 'jsonl');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines[0]!.type, 'session');
    assert.equal(lines[0]!.schema, 'portcullis.recording/v1');
    const events = lines.slice(1);
    const stored = await gw.gateway.recorder!.store.events(ids[0]!, -1, 1000);
    assert.equal(events.length, stored.length);
    events.forEach((e, i) => {
      assert.equal(e.type, 'event');
      assert.equal(e.seq, i);
      assert.equal(e.payload, stored[i]!.payload);
      assert.equal(e.hash, stored[i]!.hash);
      assert.equal(e.subject, 'tester');
      assert.match(String(e.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    });
    const call = events.find((e) => (e.rpc as { tool?: string } | undefined)?.tool === 'echo')!;
    assert.deepEqual(call.rpc, {
      kind: 'request',
      method: 'tools/call',
      id: (JSON.parse(String(call.payload)) as { id: number }).id,
      tool: 'echo',
      protocolVersion: '2025-11-25',
    });
    const file = join(dir, 'export.jsonl');
    assert.equal((await cli('sessions', 'export', ids[0]!, '--output', file)).code, 0);
    assert.equal(readFileSync(file, 'utf8'), r.stdout);
    const bad = await cli('sessions', 'export', ids[0]!, '--format', 'csv');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--format expects jsonl/);
  });

  it('replay: plays the exchange with its timing, sped up', async () => {
    const r = await cli('sessions', 'replay', ids[0]!, '--speed', '50');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /■ opened/);
    assert.match(lines.at(-1)!, /■ closed/);
    assert.ok(lines.some((l) => /Echo: first session/.test(l)));
    assert.equal((await cli('sessions', 'replay', ids[0]!, '--speed', '0')).code, 2);
  });

  it('replay --follow: shows a live session as it happens, and ends with it', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'live', version: '1' });
    await client.connect(transport);
    const id = transport.sessionId!;
    await gw.gateway.recorder!.drain();
    const child = spawn(process.execPath, [cliPath, 'sessions', 'replay', id, '--follow', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await waitFor(() => out.includes('■ agreed'), `the replay to show the session so far; it printed: ${out}`);
    await client.callTool({ name: 'echo', arguments: { message: 'said while followed' } });
    await waitFor(() => out.includes('said while followed'), 'the replay to show the call made while it followed');
    await transport.terminateSession();
    await client.close();
    assert.equal(await exited, 0);
    assert.match(out, /■ closed +client ended the session/);
  });

  it('verify: a session, then all of them; exit 0 when intact', async () => {
    const one = await cli('sessions', 'verify', ids[0]!);
    assert.equal(one.code, 0, one.stdout + one.stderr);
    assert.match(one.stdout, new RegExp(`^${ids[0]} +verified +\\d+ events, 2 exchanges \\(2 complete\\); sealed by key [0-9a-f]{16}$`, 'm'));
    // The refused get-env call is an exchange like any other: its request, the refusal and the gateway's answer.
    const second = await cli('sessions', 'verify', ids[1]!, '--exchanges');
    assert.match(second.stdout, /^ {4}#\d+ tools\/call \(event \d+\): refused, 1 verdict$/m);
    assert.match(second.stdout, /^ {4}#\d+ tools\/call \(event \d+\): result$/m);
    const all = await cli('sessions', 'verify', '--all');
    assert.equal(all.code, 0, all.stdout);
    assert.match(all.stdout, /3 sessions: 3 verified, 0 not sealed yet \(live\), 0 FAILED; 1 ledger: intact/);
    const usage = await cli('sessions', 'verify');
    assert.equal(usage.code, 2);
  });

  it('verify: a tampered session fails with exit code 1, naming the event', async () => {
    const db = new Database(join(dir, 'data', 'recordings.db'));
    db.prepare("UPDATE events SET payload = replace(payload, 'first session', 'forged session') WHERE session_id = ? AND payload LIKE '%first session%'").run(
      ids[0]!,
    );
    db.close();
    const r = await cli('sessions', 'verify', ids[0]!);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`^${ids[0]} +FAILED`, 'm'));
    assert.match(r.stdout, /event \d+: event \d+ does not match its hash/);
    const all = await cli('sessions', 'verify', '--all');
    assert.equal(all.code, 1);
    assert.match(all.stdout, /1 FAILED/);
  });
});
