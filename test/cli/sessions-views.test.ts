import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { closeClient, connectClient } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { recordModernSession } from '../helpers/modern-session.js';

/**
 * The session views (`sessions list|show|replay|export`, /api/sessions) on what real clients leave in a recording:
 * an elicitation answer (a result whose `content` is an object, which once crashed `show`), and a modern session's
 * exchanges with their protocol versions and trace ids.
 */

const traceA = '4bf92f3577b34da6a3ce929d0e0e4736';
const traceB = '0af7651916cd43dd8448eb211c80319c';
const traceC = '5c1a1d0d5ef44e0c8fa3b1f1f2d9e001';

describe('session views', () => {
  let dir: string;
  let configFile: string;
  let gw: TestGateway;
  let elicited: string;
  let modern: string;
  let pooledToo: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-views-cli-'));
    const config = {
      dataDir: join(dir, 'data'),
      store: `sqlite:${join(dir, 'data', 'recordings.db')}`,
      connections: { everything: { stdio: everythingStdio() } },
    };
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, stringify({ ...config, listen: '127.0.0.1:1' }));
    gw = await startTestGateway(config);

    // The v1 SDK client answers server-everything's elicitation with { action: 'accept', content: { … } }.
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    const { client, inbox } = await connectClient(transport, 'elicited-client');
    elicited = transport.sessionId!;
    const identity = gw.gateway.sessions.get(elicited)!.identity;
    await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.equal(inbox.elicitation.length, 1, 'the server asked, through the gateway');
    await closeClient(client, transport);

    // A modern session as the modern edge records one: the gateway's own session (edge 'modern'), initialized for
    // the client, each request naming its protocol version and (here) a W3C trace in _meta.
    modern = await recordModernSession(gw, 'everything', identity, [
      { id: 2, message: 'in trace A', trace: traceA },
      { id: 3, message: 'in trace B', trace: traceB },
      { id: 4, message: 'in trace A again\n\u001b[2J\u009b31m', trace: traceA },
    ]);
    // The same trace continued on another pooled session (a pool serves a principal with several).
    pooledToo = await recordModernSession(gw, 'everything', identity, [
      { id: 7, message: 'trace A elsewhere', trace: traceA },
      { id: 8, tool: 'trigger-elicitation-request', trace: traceC },
    ]);
    await gw.gateway.recorder!.drain();
  });

  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCli([...args, '--config', configFile]);

  it('show: a session holding an elicitation answer reads as a transcript', async () => {
    const r = await cli('sessions', 'show', elicited);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /server {2}→ gateway → client {2}request elicitation\/create #\d+ +\{"message":"Please provide inputs/);
    assert.match(r.stdout, /client {2}→ gateway → server {2}result {2}#\d+ +\{"action":"accept","content":\{"name":"Ada Lovelace","check":true\}\}/);
    assert.match(r.stdout, /^Era +legacy \(MCP 2025-era session\): every exchange in the protocol initialize agreed, 2025-11-25$/m);
  });

  it('replay and export: the same session, every event', async () => {
    const replay = await cli('sessions', 'replay', elicited, '--speed', '1000');
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /"action":"accept"/);
    const exported = await cli('sessions', 'export', elicited);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { type: string; session?: { era: string }; payload?: string; rpc?: { kind: string; protocolVersion?: string; method?: string } },
      );
    assert.equal(lines[0]!.session!.era, 'legacy');
    assert.ok(lines.some((l) => l.rpc?.kind === 'response' && l.payload!.includes('"action":"accept"')));
    // Each request of a legacy session is in the version its initialize agreed.
    const call = lines.find((l) => l.rpc?.method === 'tools/call')!;
    assert.equal(call.rpc!.protocolVersion, '2025-11-25');
    assert.equal((await cli('sessions', 'verify', elicited)).code, 0);
  });

  it('verify --exchanges: each request, its verdicts and how it ended', async () => {
    const r = await cli('sessions', 'verify', elicited, '--exchanges');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^${elicited} +verified +\\d+ events, 2 exchanges \\(2 complete\\); sealed by key`, 'm'));
    assert.match(r.stdout, /^ {4}#0 initialize \(event \d+\): result$/m);
    assert.match(r.stdout, /^ {4}#1 tools\/call \(event \d+\): result$/m);
    const modernRun = await cli('sessions', 'verify', modern, '--exchanges', '--json');
    const v = JSON.parse(modernRun.stdout) as {
      status: string;
      exchanges: { total: number; complete: number; all: Array<{ id: number; protocolVersion?: string; traceId?: string; outcome: string }> };
    };
    assert.equal(v.status, 'verified');
    assert.equal(v.exchanges.total, 4);
    assert.equal(v.exchanges.complete, 4);
    assert.deepEqual(
      v.exchanges.all.map((e) => [e.id, e.outcome, e.protocolVersion ?? null, e.traceId ?? null]),
      [
        [1, 'result', null, null],
        [2, 'result', '2026-07-28', traceA],
        [3, 'result', '2026-07-28', traceB],
        [4, 'result', '2026-07-28', traceA],
      ],
    );
  });

  it('list: the era of each session, and --era to pick one', async () => {
    const r = await cli('sessions', 'list');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^SESSION +OPENED \(UTC\) +DURATION +USER +CONNECTION +ERA +STATUS +EVENTS +CLIENT$/);
    assert.match(lines.find((l) => l.startsWith(modern))!, / everything +modern +closed +\d+ +modern-client 2\.4\.0$/);
    assert.match(lines.find((l) => l.startsWith(elicited))!, / everything +legacy +closed /);
    const onlyModern = await cli('sessions', 'list', '--era', 'modern', '--json');
    assert.deepEqual(
      onlyModern.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string; era: string }).id),
      [pooledToo, modern],
    );
    const onlyLegacy = await cli('sessions', 'list', '--era', 'legacy', '--json');
    assert.ok(!onlyLegacy.stdout.includes(modern) && onlyLegacy.stdout.includes(elicited));
    const withA = await cli('sessions', 'list', '--trace', traceA, '--json');
    assert.deepEqual(
      withA.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id),
      [pooledToo, modern],
      'the sessions that served the trace, newest first',
    );
    const withB = await cli('sessions', 'list', '--trace', traceB);
    assert.equal(withB.stdout.trim().split('\n').length, 2, 'the header and one session');
    assert.ok(withB.stdout.includes(modern));
    assert.equal((await cli('sessions', 'list', '--trace', 'f'.repeat(32))).stdout, 'no sessions match\n');
    assert.equal((await cli('sessions', 'list', '--trace', 'nope')).code, 2);
    const bad = await cli('sessions', 'list', '--era', '2026');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--era expects one of modern, legacy, found "2026"/);
  });

  it('show: a modern session names the protocol version and trace of each exchange', async () => {
    const r = await cli('sessions', 'show', modern);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Era +modern \(MCP 2026-07-28\)/m);
    assert.match(r.stdout, new RegExp(`request tools/call #2 echo @2026-07-28 +\\{"message":"in trace A"\\} +\\(trace ${traceA}\\)`));
    assert.match(r.stdout, new RegExp(`request tools/call #3 echo @2026-07-28 +\\{"message":"in trace B"\\} +\\(trace ${traceB}\\)`));
  });

  it('show --trace: only the exchanges of that trace, their answers included', async () => {
    const r = await cli('sessions', 'show', modern, '--trace', traceA.toUpperCase());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Trace +${traceA}: \\d+ events`, 'm'));
    assert.match(r.stdout, /"in trace A"/);
    assert.match(r.stdout, /\{"message":"in trace A again\\n/);
    assert.match(r.stdout, /result {2}#2 +Echo: in trace A/);
    // What the server echoed, control characters and all, is shown as text: a transcript cannot clear the screen.
    assert.match(r.stdout, /result {2}#4 +Echo: in trace A again⏎\\u001b\[2J\\u009b31m$/m);
    assert.doesNotMatch(r.stdout, /[\u001b\u009b]/);
    assert.doesNotMatch(r.stdout, /in trace B/);
    assert.doesNotMatch(r.stdout, /#3/);
    const json = await cli('sessions', 'show', modern, '--trace', traceB, '--json');
    const shown = JSON.parse(json.stdout) as { events: Array<{ payload: string; forwarded: string | null }> };
    assert.ok(shown.events.length >= 2, 'the request and its result');
    assert.ok(shown.events.every((e) => `${e.payload}${e.forwarded ?? ''}`.includes('in trace B')));
    // A request the server made while the traced call was the only one in flight belongs to it, with its answer.
    const rounds = await cli('sessions', 'show', pooledToo, '--trace', traceC);
    assert.match(rounds.stdout, /request tools\/call #8 trigger-elicitation-request @2026-07-28/);
    assert.match(rounds.stdout, /server {2}→ gateway → client {2}request elicitation\/create #\d+/);
    assert.match(rounds.stdout, /client {2}→ gateway → server {2}result {2}#\d+ +\{"action":"accept","content":\{"name":"Grace Hopper","check":true\}\}/);
    assert.match(rounds.stdout, /result {2}#8 +.*Grace Hopper/);
    assert.doesNotMatch(rounds.stdout, /trace A elsewhere/);
    const bad = await cli('sessions', 'show', modern, '--trace', 'not-a-trace');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--trace expects a W3C trace id/);
  });

  it('the API: era on each session and as a filter; the events of one trace', async () => {
    const api = (path: string) => fetch(new URL(path, gw.url), { headers: gw.apiAuth });
    const list = (await (await api('/api/sessions?era=modern')).json()) as { sessions: Array<{ id: string; era: string }> };
    assert.deepEqual(
      list.sessions.map((s) => [s.id, s.era]),
      [
        [pooledToo, 'modern'],
        [modern, 'modern'],
      ],
    );
    assert.equal((await api('/api/sessions?era=future')).status, 400);
    const traced = (await (await api(`/api/sessions/${modern}/events?trace=${traceB}`)).json()) as {
      events: Array<{ rpc?: { kind: string; traceId?: string; protocolVersion?: string } }>;
    };
    const request = traced.events.find((e) => e.rpc?.kind === 'request')!;
    assert.equal(request.rpc!.traceId, traceB);
    assert.equal(request.rpc!.protocolVersion, '2026-07-28');
    assert.ok(traced.events.some((e) => e.rpc?.kind === 'response'));
    assert.equal((await api(`/api/sessions/${modern}/events?trace=xyz`)).status, 400);
  });
});
