import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { Client } from '@modelcontextprotocol/client';
import { exchangeGroups } from '../../src/recording/exchange-groups.js';
import type { EventRow } from '../../src/store/types.js';
import { runCli } from '../helpers/cli.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectV2 } from '../helpers/modern.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The session views of modern exchanges: a pooled session's requests grouped by trace id when the client sends one,
 * else by an idle gap. Real exchanges of a v2 client pinned to 2026-07-28; the gap is not waited for: it is chosen
 * between the pauses the recording shows (the pause before the last exchange is made certainly longer than the one
 * before it).
 */

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const traceparent = `00-${traceId}-00f067aa0ba902b7-01`;

/** When each client request (not the pool's initialize) was received and when its answer was delivered (µs), in order. */
function spans(events: readonly EventRow[]): Array<{ message: string; startUs: number; endUs: number }> {
  const out: Array<{ id: unknown; message: string; startUs: number; endUs: number }> = [];
  for (const e of events) {
    if (e.kind !== 'message') continue;
    const m = JSON.parse(e.payload) as { id?: unknown; method?: string; params?: { arguments?: { message?: string } } };
    if (e.direction === 'toServer' && m.id !== undefined && m.method !== undefined && m.method !== 'initialize' && e.boundary !== 'delivered')
      out.push({ id: m.id, message: m.params?.arguments?.message ?? '', startUs: e.timeUs, endUs: e.timeUs });
    if (e.direction === 'toClient' && m.method === undefined && e.boundary !== 'received') {
      const clientId = e.boundary === 'relayed' ? (JSON.parse(e.forwarded!) as { id?: unknown }).id : m.id;
      const open = out.find((s) => s.id === clientId);
      if (open) open.endUs = e.timeUs;
    }
  }
  return out;
}

describe('modern session views: trace id, else idle gap', () => {
  let dir: string;
  let configFile: string;
  let gw: TestGateway;
  let sessionId: string;
  let events: EventRow[];
  let gapMs: number;
  /** Untraced exchanges before the pause (the client's calls, and any list it made). */
  let earlier: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-groups-'));
    const config = { dataDir: join(dir, 'data'), connections: { ev: { stdio: everythingStdio(), tools: { pin: false } } } };
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, stringify({ ...config, listen: '127.0.0.1:1' }));
    gw = await startTestGateway(config);
    const client: Client = await connectV2(gw.mcp('ev'), gw.auth, { pin: '2026-07-28' });
    const store = gw.gateway.recorder!.store;
    const call = (message: string, meta?: Record<string, unknown>) =>
      client.callTool({ name: 'echo', arguments: { message }, ...(meta ? { _meta: meta } : {}) });
    try {
      await call('first');
      await call('second');
      await call('traced', { traceparent });
      const modern = async () => (await store.listSessions({ connection: 'ev', era: 'modern', limit: 10 })).filter((s) => s.subject === 'tester');
      await waitFor(async () => (await modern()).length === 1, 'the pooled session to be recorded');
      sessionId = (await modern())[0]!.id;
      const recorded = async () => spans(await allEvents(store, sessionId));
      const answered = async (n: number) => {
        const s = await recorded();
        return s.filter((x) => x.message === 'traced' || x.message === 'third').length === n && s.every((x) => x.endUs > x.startUs);
      };
      await waitFor(() => answered(1), 'the calls so far answered');
      const before = await recorded();
      earlier = before.length - 1;
      // The longest pause between the exchanges so far (each start after everything before it ended).
      let pause = 0;
      let endUs = before[0]!.endUs;
      for (const x of before.slice(1)) {
        pause = Math.max(pause, x.startUs - endUs);
        endUs = Math.max(endUs, x.endUs);
      }
      // The next untraced call starts certainly later than twice that pause, plus 20 ms.
      const notBefore = endUs + 2 * pause + 20_000;
      await waitFor(async () => Date.now() * 1000 > notBefore, 'the clock to pass the chosen pause');
      await call('third');
      await waitFor(() => answered(2), 'the last call answered');
      events = await allEvents(store, sessionId);
      const last = (await recorded()).at(-1)!;
      assert.equal(last.message, 'third');
      const untracedPause = last.startUs - endUs;
      assert.ok(untracedPause > 2 * pause, 'the last pause is the longer one');
      // A gap between the two pauses: everything before is one group, the last call starts another.
      gapMs = (pause + untracedPause) / 2 / 1000;
    } finally {
      await client.close();
    }
  });
  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('groups untraced exchanges by the idle gap, and a traced one by its trace id', () => {
    const { groups } = exchangeGroups(events, gapMs);
    assert.deepEqual(
      groups.map((g) => [g.label, g.exchanges]),
      [
        ['1', earlier],
        [`trace ${traceId}`, 1],
        ['2', 1],
      ],
    );
    assert.ok(earlier >= 2);
    // With a gap longer than every pause, the untraced exchanges are one group; the trace stays its own.
    assert.deepEqual(
      exchangeGroups(events, gapMs * 1000).groups.map((g) => [g.label, g.exchanges]),
      [
        ['1', earlier + 1],
        [`trace ${traceId}`, 1],
      ],
    );
  });

  it('sessions show lists the groups and shows one group on its own', async () => {
    const gap = `${Math.round(gapMs * 1000) / 1000}ms`;
    const all = await runCli(['sessions', 'show', sessionId, '--config', configFile, '--idle-gap', gap]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`Group +1: ${earlier} exchanges`));
    assert.match(all.stdout, new RegExp(`Group +trace ${traceId}: 1 exchange,`));
    assert.match(all.stdout, /Group +2: 1 exchange,/);
    const second = await runCli(['sessions', 'show', sessionId, '--config', configFile, '--idle-gap', gap, '--group', '2', '--json']);
    assert.equal(second.code, 0, second.stderr);
    const picked = JSON.parse(second.stdout) as { events: EventRow[] };
    const texts = picked.events.map((e) => e.payload).join('\n');
    assert.match(texts, /third/);
    assert.doesNotMatch(texts, /first|second|traced/);
    assert.ok(
      picked.events.some((e) => e.direction === 'toClient'),
      "the group holds the call's answer too",
    );
    const traced = await runCli(['sessions', 'show', sessionId, '--config', configFile, '--group', traceId, '--json']);
    const tracedTexts = (JSON.parse(traced.stdout) as { events: EventRow[] }).events.map((e) => e.payload).join('\n');
    assert.match(tracedTexts, /traced/);
    assert.doesNotMatch(tracedTexts, /first|second|third/);
  });

  it("sessions verify --exchanges names each exchange's group, by sessions.viewIdleGap", async () => {
    const gapped = join(dir, 'gapped.yaml');
    writeFileSync(
      gapped,
      stringify({
        dataDir: join(dir, 'data'),
        listen: '127.0.0.1:1',
        sessions: { viewIdleGap: `${Math.round(gapMs * 1000) / 1000}ms` },
        connections: { ev: { stdio: everythingStdio() } },
      }),
    );
    const r = await runCli(['sessions', 'verify', sessionId, '--config', gapped, '--exchanges', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const all = (JSON.parse(r.stdout) as { exchanges: { all: Array<{ method: string; group?: string; seq: number }> } }).exchanges.all;
    const calls = all.filter((e) => e.method === 'tools/call').map((e) => e.group);
    assert.deepEqual(calls, ['1', '1', `trace ${traceId}`, '2']);
    const text = await runCli(['sessions', 'verify', sessionId, '--config', gapped, '--exchanges']);
    assert.match(text.stdout, /tools\/call .*group 2/);
  });

  it('the API lists the groups with the configured gap (5m by default: one untraced group here)', async () => {
    const res = await fetch(new URL(`/api/sessions/${sessionId}/events?groups`, gw.url), { headers: gw.apiAuth });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { idleGapMs: number; groups: Array<{ label: string; exchanges: number }> };
    assert.equal(body.idleGapMs, 300_000);
    assert.deepEqual(
      body.groups.map((g) => [g.label, g.exchanges]),
      [
        ['1', earlier + 1],
        [`trace ${traceId}`, 1],
      ],
    );
    const one = await fetch(new URL(`/api/sessions/${sessionId}/events?group=${encodeURIComponent(`trace ${traceId}`)}`, gw.url), { headers: gw.apiAuth });
    const { events: picked } = (await one.json()) as { events: Array<{ payload?: string; message?: unknown }> };
    assert.ok(picked.length >= 2);
    assert.doesNotMatch(JSON.stringify(picked), /first|second|third/);
  });
});
