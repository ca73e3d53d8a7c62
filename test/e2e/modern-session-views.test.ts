import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { Client } from '@modelcontextprotocol/client';
import { exchangeMeta } from '../../src/recording/exchanges.js';
import type { SessionGroup } from '../../src/recording/session-groups.js';
import type { Store } from '../../src/store/store.js';
import type { EventRow, SessionRow } from '../../src/store/types.js';
import { runCli } from '../helpers/cli.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectV2, modernBody, modernHeaders, rawRequest } from '../helpers/modern.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The sessions a user sees of a modern (2026-07-28) client: its exchanges grouped per principal and connection across
 * the pooled sessions that recorded them (sessions.modernIdleTimeout closes one between the calls, so the next call is
 * recorded in another), the session that records a refused request included. Listed, shown, exported and verified alike
 * by the CLI and the API, and scoped to its owner.
 */

const traceId = '0af7651916cd43dd8448eb211c80319c';

describe('modern exchanges as sessions: groups across pooled sessions', () => {
  let dir: string;
  let configFile: string;
  let gw: TestGateway;
  let store: Store;
  /** tester's modern sessions (pooled and refusal) and the untraced requests they recorded. */
  let testerSessions: SessionRow[];
  let untracedRequests: number;

  const modernOf = async (subject: string) => (await store.listSessions({ connection: 'ev', era: 'modern', limit: 100 })).filter((s) => s.subject === subject);
  const api = async (path: string, headers: Record<string, string> = gw.apiAuth) => fetch(new URL(path, gw.url), { headers });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-views-'));
    const config = {
      dataDir: join(dir, 'data'),
      sessions: { modernIdleTimeout: '1s' },
      connections: { ev: { stdio: everythingStdio(), tools: { pin: false } } },
    };
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, stringify({ ...config, listen: '127.0.0.1:1' }));
    gw = await startTestGateway(config);
    store = gw.gateway.recorder!.store;
    const allClosed = async (subject: string) => {
      const sessions = await modernOf(subject);
      return sessions.length > 0 && sessions.every((s) => s.status !== 'open');
    };

    const client: Client = await connectV2(gw.mcp('ev'), gw.auth, { pin: '2026-07-28' });
    try {
      await client.callTool({ name: 'echo', arguments: { message: 'alpha-one' } });
      // Unused past sessions.modernIdleTimeout, the pooled session closes: the next call opens another.
      await waitFor(() => allClosed('tester'), "tester's first pooled session to close");
      const first = (await modernOf('tester')).map((s) => s.id);
      await client.callTool({ name: 'echo', arguments: { message: 'bravo-two' } });
      await client.callTool({ name: 'echo', arguments: { message: 'delta-traced' }, _meta: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
      // A request the edge refuses (its Mcp-Name names another tool): recorded in a session of its own.
      const refused = await rawRequest(
        gw.mcp('ev'),
        'POST',
        [...modernHeaders('tools/call', 'get-sum'), ['authorization', gw.auth.authorization!]],
        JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { message: 'charlie-refused' } }, 9)),
      );
      assert.equal(refused.status, 400);
      assert.ok((await modernOf('tester')).filter((s) => !first.includes(s.id)).length >= 2, 'the later calls and the refusal are in other sessions');
    } finally {
      await client.close();
    }
    const other: Client = await connectV2(gw.mcp('ev'), { authorization: `Bearer ${await gw.tokenFor('other')}` }, { pin: '2026-07-28' });
    try {
      await other.callTool({ name: 'echo', arguments: { message: 'other-was-here' } });
    } finally {
      await other.close();
    }
    // Sealed, so that each session verifies whole.
    await waitFor(async () => (await allClosed('tester')) && (await allClosed('other')), 'every pooled session to close');
    testerSessions = await modernOf('tester');
    untracedRequests = 0;
    for (const s of testerSessions)
      for (const e of await allEvents(store, s.id)) {
        if (e.kind !== 'message' || e.direction !== 'toServer' || e.boundary === 'delivered') continue;
        const m = JSON.parse(e.payload) as Record<string, unknown>;
        if (typeof m.method === 'string' && m.id !== undefined && m.method !== 'initialize' && exchangeMeta(m).traceId === undefined) untracedRequests++;
      }
  });
  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The API's listing of ev's groups. */
  async function listed(headers?: Record<string, string>): Promise<SessionGroup[]> {
    const res = await api('/api/sessions/groups?connection=ev', headers);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { idleGapMs: number; groups: SessionGroup[]; exhausted: boolean };
    assert.equal(body.idleGapMs, 300_000);
    assert.equal(body.exhausted, false);
    return body.groups;
  }

  it("the API lists one group per principal's untraced exchanges across its pooled sessions, the refusal included, and the trace apart", async () => {
    const groups = await listed();
    const tester = groups.filter((g) => g.subject === 'tester');
    const untraced = tester.find((g) => g.traceId === undefined)!;
    assert.ok(untraced, 'an untraced group of tester');
    assert.equal(untraced.exchanges, untracedRequests);
    assert.ok(untraced.sessions.length >= 3, `recorded by two pooled sessions and a refusal's: ${untraced.sessions.join(', ')}`);
    assert.equal(untraced.connection, 'ev');
    assert.equal(untraced.issuer, gw.gateway.devIdentity!.issuer.config.issuer);
    assert.ok(untraced.lastUs > untraced.firstUs);
    assert.equal(untraced.open, false);
    const traced = tester.find((g) => g.traceId === traceId)!;
    assert.equal(traced.exchanges, 1);
    assert.deepEqual(tester.map((g) => g.label).sort(), ['1', `trace ${traceId}`], 'no other group of tester');
    const other = groups.filter((g) => g.subject === 'other');
    assert.equal(other.length, 1, "other's exchanges are a group of their own");
    assert.ok(other[0]!.sessions.every((id) => !untraced.sessions.includes(id)));
    // Newest first.
    assert.deepEqual(
      groups.map((g) => g.firstUs),
      groups.map((g) => g.firstUs).sort((a, b) => b - a),
    );
  });

  it('the CLI lists the same groups (--groups), as JSON and as a table', async () => {
    const fromApi = await listed();
    const r = await runCli(['sessions', 'list', '--groups', '--connection', 'ev', '--config', configFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const fromCli = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SessionGroup);
    assert.deepEqual(
      fromCli.map((g) => [g.id, g.subject, g.exchanges, g.firstUs, g.lastUs, g.sessions]),
      fromApi.map((g) => [g.id, g.subject, g.exchanges, g.firstUs, g.lastUs, g.sessions]),
    );
    const table = await runCli(['sessions', 'list', '--groups', '--user', 'tester', '--config', configFile]);
    assert.equal(table.code, 0, table.stderr);
    const untraced = fromApi.find((g) => g.subject === 'tester' && g.traceId === undefined)!;
    assert.match(table.stdout, /GROUP +FIRST \(UTC\) +DURATION +USER +CONNECTION +EXCHANGES +BY +SESSIONS/);
    assert.match(table.stdout, new RegExp(`${untraced.id} .* tester +ev +${untraced.exchanges} +idle gap 1 +${untraced.sessions.length}`));
    assert.match(table.stdout, new RegExp(`trace ${traceId}`));
    assert.doesNotMatch(table.stdout, /\bother\b/);
    const wrong = await runCli(['sessions', 'list', '--groups', '--status', 'open', '--config', configFile]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--groups .*--status/);
  });

  it('sessions show <group> tells whose and where, and shows its exchanges from every pooled session in time order', async () => {
    const untraced = (await listed()).find((g) => g.subject === 'tester' && g.traceId === undefined)!;
    const r = await runCli(['sessions', 'show', untraced.id, '--config', configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Group +${untraced.id} \\(idle gap 1`, 'm'));
    assert.match(r.stdout, /^User +tester/m);
    assert.match(r.stdout, /^Connection +ev$/m);
    assert.match(r.stdout, new RegExp(`^Exchanges +${untraced.exchanges}, `, 'm'));
    for (const id of untraced.sessions) assert.ok(r.stdout.includes(id), `names session ${id}`);
    const transcript = r.stdout.slice(r.stdout.indexOf('\n\n'));
    assert.match(transcript, /alpha-one[\s\S]*bravo-two[\s\S]*charlie-refused/, 'every exchange, in time order');
    assert.doesNotMatch(transcript, /delta-traced|other-was-here/);
    const json = await runCli(['sessions', 'show', untraced.id, '--config', configFile, '--json']);
    const shown = JSON.parse(json.stdout) as { group: SessionGroup; events: EventRow[] };
    assert.equal(shown.group.id, untraced.id);
    assert.deepEqual(
      shown.events.map((e) => e.timeUs),
      shown.events.map((e) => e.timeUs).sort((a, b) => a - b),
    );
    assert.deepEqual(new Set(shown.events.map((e) => e.sessionId)), new Set(untraced.sessions));
    // A later request of the group names it too (the group that holds it).
    const later = shown.events.find(
      (e) => e.sessionId !== untraced.sessions[0] && e.kind === 'message' && e.direction === 'toServer' && e.payload.includes('"tools/call"'),
    )!;
    const byLater = await runCli(['sessions', 'show', `${later.sessionId}.${later.seq}`, '--config', configFile, '--json']);
    assert.equal((JSON.parse(byLater.stdout) as { group: SessionGroup }).group.id, untraced.id);
    const missing = await runCli(['sessions', 'show', `${untraced.sessions[0]}.99999`, '--config', configFile]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no group .*sessions list --groups/);
  });

  it('the API shows the group, its events, its verification, and exports it as the CLI does', async () => {
    const untraced = (await listed()).find((g) => g.subject === 'tester' && g.traceId === undefined)!;
    const path = `/api/sessions/${encodeURIComponent(untraced.id)}`;
    const one = (await (await api(path)).json()) as { group: SessionGroup; sessions: Array<{ id: string }> };
    assert.equal(one.group.exchanges, untraced.exchanges);
    assert.deepEqual(
      one.sessions.map((s) => s.id),
      untraced.sessions,
    );
    const { events } = (await (await api(`${path}/events`)).json()) as { events: Array<{ session: string; payload: string }> };
    const texts = events.map((e) => e.payload).join('\n');
    assert.match(texts, /alpha-one[\s\S]*bravo-two[\s\S]*charlie-refused/);
    assert.doesNotMatch(texts, /delta-traced|other-was-here/);
    const verified = (await (await api(`${path}/verify`)).json()) as { status: string; sessions: Array<{ sessionId: string; status: string }> };
    assert.equal(verified.status, 'verified');
    assert.deepEqual(
      verified.sessions.map((v) => v.sessionId),
      untraced.sessions,
    );
    const cliVerified = await runCli(['sessions', 'verify', untraced.id, '--config', configFile]);
    assert.equal(cliVerified.code, 0, cliVerified.stderr);
    assert.match(cliVerified.stdout, new RegExp(`^group ${untraced.id.replace('.', '\\.')} +verified: ${untraced.sessions.length} session`, 'm'));
    for (const id of untraced.sessions) assert.match(cliVerified.stdout, new RegExp(`^${id} +verified`, 'm'));
    const exported = await api(`${path}/export`);
    assert.equal(exported.headers.get('content-type'), 'application/x-ndjson');
    const lines = (await exported.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; group?: SessionGroup; session?: unknown; payload?: string });
    assert.equal(lines[0]!.type, 'group');
    assert.equal(lines[0]!.group!.id, untraced.id);
    assert.deepEqual(
      lines.filter((l) => l.type === 'session').map((l) => (l.session as { id: string }).id),
      untraced.sessions,
    );
    assert.equal(lines.filter((l) => l.type === 'event').length, events.length);
    const cli = await runCli(['sessions', 'export', untraced.id, '--config', configFile]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(
      cli.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
      lines,
    );
  });

  it('a person sees only their own groups; another principal’s group is not found', async () => {
    const otherAuth = { authorization: `Bearer ${await gw.tokenFor('other')}` };
    const own = await listed(otherAuth);
    assert.deepEqual(
      own.map((g) => g.subject),
      ['other'],
    );
    const tester = (await listed()).find((g) => g.subject === 'tester')!;
    const res = await api(`/api/sessions/${encodeURIComponent(tester.id)}`, otherAuth);
    assert.equal(res.status, 404);
    assert.equal((await api(`/api/sessions/${encodeURIComponent(tester.id)}/export`, otherAuth)).status, 404);
    assert.equal((await api('/api/sessions/groups?user=tester', otherAuth)).status, 403);
  });
});
