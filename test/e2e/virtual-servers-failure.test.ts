import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { closeClient } from '../helpers/client.js';
import { consoleSignIn } from '../helpers/console.js';
import { fixturePath, isAlive } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents, deliveredTexts } from '../helpers/recorded.js';
import { connectV2 } from '../helpers/modern.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Failing open, per member (issue 19): a virtual server whose members fail keeps serving the others. Real processes:
 * a member whose process crashes at start, one that hangs on initialize, and one killed mid-session whose restarts
 * the test holds off (a gate file) until it lets it recover. Seen through the v1 client and the v2 client pinned to
 * 2026-07-28, and through what an operator sees: the log, /metrics and the console's connections page.
 */

const member = (...args: string[]) => ({ command: process.execPath, args: [fixturePath('member-server.js'), ...args] });
const toolNames = (tools: Array<{ name: string }>) => tools.map((t) => t.name).sort();
/** What the virtual server lists of these members (member-server's tools, prefixed), sorted. */
const toolsOf = (...members: string[]) => members.flatMap((m) => ['exit', 'hello', 'stall', 'whoami'].map((t) => `${m}__${t}`)).sort();

describe('a virtual server whose members fail', () => {
  let gw: TestGateway;
  let dir: string;
  /** While this file exists, the `victim` member's process exits when asked to initialize: its restarts fail. */
  let gate: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-virtual-failure-'));
    gate = join(dir, 'victim-gate');
    const open = { groups: ['*'] };
    gw = await startTestGateway({
      identity: { dev: { users: { tester: ['testers', 'admins'] } } },
      // Long enough that a stop waiting on the hanging member's unanswered initialize would fail the last test.
      shutdown: { drainTimeout: '10m' },
      roles: { admins: ['admins'] },
      connections: {
        steady: { stdio: member('serve'), access: open },
        calm: { stdio: member('serve'), access: open },
        crasher: { stdio: member('crash'), access: open },
        // 2025-era by config: the era probe (server/discover) of a server that never answers would listen on for a late
        // answer well past the gateway's stop, keeping this test's process alive for nothing.
        hanger: { stdio: { ...member('hang'), protocol: '2025-11-25' }, access: open },
        victim: { stdio: member('serve', '--gate', gate), access: open },
        mute: { stdio: member('mute-lists'), access: open },
        // Answers initialize well after the virtual server's memberTimeout (1s).
        slow: { stdio: member('slow-init', '4000'), access: open },
      },
      virtualServers: {
        startup: {
          description: 'one member crashes at start, one hangs on initialize',
          access: open,
          memberTimeout: '1s',
          members: [{ connection: 'steady' }, { connection: 'crasher' }, { connection: 'hanger' }],
        },
        slowlist: {
          access: open,
          memberTimeout: '1s',
          members: [{ connection: 'mute' }, { connection: 'steady' }],
        },
        slowstart: {
          access: open,
          memberTimeout: '1s',
          members: [{ connection: 'steady' }, { connection: 'slow' }],
        },
        dying: {
          access: open,
          memberTimeout: '1s',
          members: [{ connection: 'steady' }, { connection: 'calm' }],
        },
        allbad: {
          access: open,
          memberTimeout: '1s',
          members: [{ connection: 'crasher' }, { connection: 'hanger' }],
        },
        midsession: {
          access: open,
          memberTimeout: '1s',
          members: [{ connection: 'steady' }, { connection: 'victim' }, { connection: 'calm' }],
        },
      },
    });
  });

  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The v1 client on a virtual server; `close()` ends its session (DELETE), so its member processes end with it rather
   * than counting against the caller's limits.principal.stdioProcesses until the session is reaped.
   */
  async function connectV1(server: string): Promise<{ client: Client; listChanged: number[]; sessionId: string; close(): Promise<void> }> {
    const client = new Client({ name: 'virtual-failure-test', version: '1.0.0' });
    const listChanged: number[] = [];
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void listChanged.push(Date.now()));
    const transport = new StreamableHTTPClientTransport(gw.mcp(server), { requestInit: { headers: gw.auth } });
    await client.connect(transport);
    return { client, listChanged, sessionId: transport.sessionId!, close: () => closeClient(client, transport) };
  }

  /** What a virtual session's recording says of its members: its `virtual` verdicts on no message. */
  async function memberVerdicts(sessionId: string): Promise<string[]> {
    return (await allEvents(gw.gateway.recorder!.store, sessionId))
      .filter((e) => e.kind === 'verdict')
      .map((e) => JSON.parse(e.payload) as { stage: string; reason?: string; messageId?: unknown })
      .filter((v) => v.stage === 'virtual' && v.messageId === undefined)
      .map((v) => v.reason ?? '');
  }

  /** A member's state on the console's connections page (what an admin sees). */
  async function memberOnConsole(server: string, name: string): Promise<{ state: string; reason: string | null; since: string | null; sessions: number }> {
    const admin = await consoleSignIn(gw, 'tester');
    const { connections } = (await (await admin.get('/api/console/connections')).json()) as {
      connections: Array<{
        name: string;
        members: Array<{ connection: string; state: string; reason: string | null; since: string | null; sessions: number }> | null;
      }>;
    };
    const found = connections.find((c) => c.name === server)?.members?.find((m) => m.connection === name);
    assert.ok(found !== undefined, `${name} is listed among ${server}'s members`);
    return found;
  }

  /** The gateway's figure of members down on a virtual server, as /metrics has it. */
  async function membersDown(server: string): Promise<number | undefined> {
    const res = await fetch(new URL('/metrics', gw.url), { headers: gw.apiAuth });
    assert.equal(res.status, 200);
    const series = `portcullis_virtual_members_down{connection="${server}"} `;
    const line = (await res.text()).split('\n').find((l) => l.startsWith(series));
    return line === undefined ? undefined : Number(line.slice(series.length));
  }

  /** The warnings the gateway logged that `member` of `server` went down. */
  const downWarnings = (server: string, name: string) => gw.log.lines.filter((l) => l.level === 40 && l.virtualServer === server && l.member === name);

  /** What a call's failure says, from either client (v1 rejects; a tool error result is no failure here). */
  async function callFails(call: () => Promise<unknown>): Promise<string> {
    try {
      const result = await call();
      assert.fail(`the call was answered: ${JSON.stringify(result)}`);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      return (err as Error).message;
    }
  }

  /** The member's pid, from its `whoami` through the virtual server. */
  const pidOf = async (client: { callTool(p: { name: string; arguments: Record<string, unknown> }): Promise<unknown> }, name: string) => {
    const result = (await client.callTool({ name: `${name}__whoami`, arguments: {} })) as { content: Array<{ text: string }> };
    return Number(result.content[0]!.text);
  };

  describe('a member that crashes at start and one that hangs on initialize', () => {
    it('the v1 client is served the healthy member within the timeout, without the others', async () => {
      const { client, close, sessionId } = await connectV1('startup');
      try {
        const { tools } = await client.listTools();
        assert.deepEqual(toolNames(tools), toolsOf('steady'));
        const hello = (await client.callTool({ name: 'steady__hello', arguments: {} })) as { content: Array<{ text: string }> };
        assert.equal(hello.content[0]!.text, 'hello');
        assert.match(await callFails(() => client.callTool({ name: 'crasher__hello', arguments: {} })), /crasher.*unavailable|unavailable.*crasher/);
        assert.match(await callFails(() => client.callTool({ name: 'hanger__hello', arguments: {} })), /hanger.*unavailable|unavailable.*hanger/);
        // The session's recording says who was left out and why, once each (their retries fail again meanwhile).
        const recorded = await memberVerdicts(sessionId);
        assert.equal(recorded.filter((r) => r.startsWith("member 'crasher' is unavailable and left out of the lists: ")).length, 1, recorded.join('\n'));
        assert.equal(recorded.filter((r) => r.startsWith("member 'hanger' is unavailable and left out of the lists: ")).length, 1, recorded.join('\n'));
        assert.ok(!recorded.some((r) => r.includes("'steady'")), 'nothing of the member that is up');
      } finally {
        await close();
      }
    });

    it('logs each member going down once, with why, and counts them in /metrics', async () => {
      await waitFor(() => downWarnings('startup', 'crasher').length > 0 && downWarnings('startup', 'hanger').length > 0, 'both warnings');
      assert.match(String(downWarnings('startup', 'crasher')[0]!.reason), /exit|code 3|closed/i);
      assert.match(String(downWarnings('startup', 'hanger')[0]!.reason), /initialize|timed? ?out|1s|1000/i);
      // Another session finds them down too (and its retries fail): still down, so no new warning; counted while used.
      const { client, close } = await connectV1('startup');
      try {
        assert.deepEqual(toolNames((await client.listTools()).tools), toolsOf('steady'));
        await waitFor(async () => (await membersDown('startup')) === 2, 'both counted down in /metrics');
      } finally {
        await close();
      }
      assert.equal(downWarnings('startup', 'crasher').length, 1);
      assert.equal(downWarnings('startup', 'hanger').length, 1);
    });

    it('the v2 client pinned to 2026-07-28 is served the healthy member too', async () => {
      const client = await connectV2(gw.mcp('startup'), gw.auth, { pin: '2026-07-28' });
      try {
        assert.equal(client.getProtocolEra(), 'modern');
        assert.deepEqual(toolNames((await client.listTools()).tools), toolsOf('steady'));
        const hello = await client.callTool({ name: 'steady__hello', arguments: {} });
        assert.deepEqual(hello.content, [{ type: 'text', text: 'hello' }]);
      } finally {
        await client.close();
      }
    });

    it("the console's connections page shows the virtual server's members, the down ones with why and since when", async () => {
      const admin = await consoleSignIn(gw, 'tester');
      const res = await admin.get('/api/console/connections');
      assert.equal(res.status, 200);
      const { connections } = (await res.json()) as {
        connections: Array<{ name: string; description: string | null; members: Array<Record<string, unknown>> | null }>;
      };
      const startup = connections.find((c) => c.name === 'startup');
      assert.ok(startup !== undefined, 'the virtual server is listed among the connections');
      assert.equal(startup.description, 'one member crashes at start, one hangs on initialize');
      assert.deepEqual(
        startup.members?.map((m) => [m.connection, m.state]),
        [
          ['steady', 'up'],
          ['crasher', 'down'],
          ['hanger', 'down'],
        ],
      );
      const crasher = startup.members![1]!;
      assert.match(String(crasher.reason), /exit|code 3|closed/i);
      assert.ok(!Number.isNaN(Date.parse(String(crasher.since))), 'since when');
      assert.equal(connections.find((c) => c.name === 'steady')?.members, null, 'a plain connection has no members');
    });
  });

  describe('a member slow to start', () => {
    it('is left out of the first answers, then joins with a list_changed', async () => {
      const { client, close, listChanged } = await connectV1('slowstart');
      try {
        assert.deepEqual(toolNames((await client.listTools()).tools), toolsOf('steady'));
        assert.match(
          await callFails(() => client.callTool({ name: 'slow__hello', arguments: {} })),
          /member 'slow' of virtual server 'slowstart' is unavailable/,
        );
        await waitFor(async () => (await memberOnConsole('slowstart', 'slow')).state === 'up', 'the slow member to open');
        const joined = Date.parse((await memberOnConsole('slowstart', 'slow')).since!);
        await waitFor(() => listChanged.some((t) => t >= joined), 'a tools list_changed once it joined');
        assert.deepEqual(toolNames((await client.listTools()).tools), toolsOf('slow', 'steady'));
        const hello = (await client.callTool({ name: 'slow__hello', arguments: {} })) as { content: Array<{ text: string }> };
        assert.equal(hello.content[0]!.text, 'hello');
      } finally {
        await close();
      }
    });
  });

  describe('a member that is up but never answers a list', () => {
    it('is left out of that list, which the others answer, and stays up: its calls still go to it', async () => {
      const { client, close } = await connectV1('slowlist');
      try {
        assert.deepEqual(toolNames((await client.listTools()).tools), toolsOf('steady'));
        const hello = (await client.callTool({ name: 'mute__hello', arguments: {} })) as { content: Array<{ text: string }> };
        assert.equal(hello.content[0]!.text, 'hello');
        assert.equal(await membersDown('slowlist'), 0, 'late to list is not down');
      } finally {
        await close();
      }
    });
  });

  describe('a member that dies in the middle of a call', () => {
    it('answers that call with an error naming the member, keeps serving the rest, and brings the member back', async () => {
      const { client, close } = await connectV1('dying');
      try {
        const pid = await pidOf(client, 'calm');
        assert.match(
          await callFails(() => client.callTool({ name: 'calm__exit', arguments: {} })),
          /member 'calm' of virtual server 'dying' is unavailable: .*exited with code 9/,
        );
        await waitFor(() => !isAlive(pid), 'the member process to end');
        const hello = (await client.callTool({ name: 'steady__hello', arguments: {} })) as { content: Array<{ text: string }> };
        assert.equal(hello.content[0]!.text, 'hello');
        // Restarted in the background: its calls are served again, by a new process.
        await waitFor(
          async () =>
            client.callTool({ name: 'calm__hello', arguments: {} }).then(
              () => true,
              () => false,
            ),
          'the member to be back',
          60_000,
        );
        assert.notEqual(await pidOf(client, 'calm'), pid);
      } finally {
        await close();
      }
    });
  });

  describe('a member that never answers a call', () => {
    it('holds only that call: the others and the lists are answered meanwhile, and the client may cancel it', async () => {
      const { client, close } = await connectV1('dying');
      try {
        const abort = new AbortController();
        const stalled = client.callTool({ name: 'calm__stall', arguments: {} }, undefined, { signal: abort.signal }).then(
          () => 'answered',
          (err: Error) => err.message,
        );
        const hello = (await client.callTool({ name: 'steady__hello', arguments: {} })) as { content: Array<{ text: string }> };
        assert.equal(hello.content[0]!.text, 'hello');
        const calm = (await client.callTool({ name: 'calm__hello', arguments: {} })) as { content: Array<{ text: string }> };
        assert.equal(calm.content[0]!.text, 'hello', 'the same member too');
        assert.deepEqual(toolNames((await client.listTools()).tools), toolsOf('calm', 'steady'));
        abort.abort('the test gave up on it');
        assert.match(await stalled, /gave up|abort/i);
        // The member is told, under the id it was sent the call with (its own session's recording shows it).
        const store = gw.gateway.recorder!.store;
        await waitFor(async () => {
          for (const session of await store.listSessions({ connection: 'calm', limit: 100 })) {
            const sent = deliveredTexts(await allEvents(store, session.id), 'toServer').map(
              (t) => JSON.parse(t) as { id?: unknown; method?: string; params?: { name?: string; requestId?: unknown } },
            );
            const call = sent.find((m) => m.method === 'tools/call' && m.params?.name === 'stall');
            if (call !== undefined && sent.some((m) => m.method === 'notifications/cancelled' && m.params?.requestId === call.id)) return true;
          }
          return false;
        }, 'the cancellation to reach the member');
      } finally {
        await close();
      }
    });
  });

  describe('a virtual server whose members are all down', () => {
    it('still opens, lists nothing, and names each member as unavailable', async () => {
      const { client, close } = await connectV1('allbad');
      try {
        assert.deepEqual((await client.listTools()).tools, []);
        assert.match(await callFails(() => client.callTool({ name: 'crasher__hello', arguments: {} })), /crasher.*unavailable|unavailable.*crasher/);
        await waitFor(async () => (await membersDown('allbad')) === 2, 'both members counted down');
      } finally {
        await close();
      }
      // No session uses them now: shown as last seen, no longer counted down (an alert on it ends).
      await waitFor(async () => (await membersDown('allbad')) === 0, 'nothing counted down once no session uses them');
      const crasher = await memberOnConsole('allbad', 'crasher');
      assert.deepEqual([crasher.state, crasher.sessions], ['down', 0]);
    });
  });

  describe('a member that dies mid-session', () => {
    /**
     * Kills the victim (its restarts held off by the gate), checks the endpoint serves the rest and names the victim
     * as unavailable, then opens the gate and waits for the list_changed and the victim's tools.
     */
    async function killAndRecover(client: {
      listTools(): Promise<{ tools: Array<{ name: string }> }>;
      callTool(p: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
      /** When each tools list_changed reached the client (ms since the epoch). */
      listChanged: number[];
    }): Promise<void> {
      const all = toolsOf('calm', 'steady', 'victim');
      assert.deepEqual(toolNames((await client.listTools()).tools), all);
      const pid = await pidOf(client, 'victim');
      const warned = downWarnings('midsession', 'victim').length;
      writeFileSync(gate, 'shut');
      try {
        process.kill(pid, 'SIGKILL');
        await waitFor(() => !isAlive(pid), 'the victim process to end');
        await waitFor(async () => (await membersDown('midsession')) === 1, 'the gateway to see the victim down');
        assert.equal(downWarnings('midsession', 'victim').length, warned + 1, 'one warning for the transition');
        const down = await memberOnConsole('midsession', 'victim');
        assert.equal(down.state, 'down');
        // Killed, or (the newest reason) a restart the gate refused.
        assert.match(String(down.reason), /SIGKILL|exited|ended|closed/);
        // The rest keeps serving; the victim's names answer that it is unavailable; the list leaves it out.
        assert.ok(isAlive(await pidOf(client, 'steady')), 'the steady member still answers');
        assert.match(await callFails(() => client.callTool({ name: 'victim__hello', arguments: {} })), /victim.*unavailable|unavailable.*victim/);
        assert.deepEqual(
          toolNames((await client.listTools()).tools),
          all.filter((n) => !n.startsWith('victim__')),
        );
      } finally {
        rmSync(gate, { force: true });
      }
      // Back: the gateway retries it in the background. Going down may have been announced too, so the list_changed
      // that counts is one that came once the console says the victim is up again.
      await waitFor(async () => (await membersDown('midsession')) === 0, 'the victim to be back', 60_000);
      const back = await memberOnConsole('midsession', 'victim');
      assert.equal(back.state, 'up');
      await waitFor(() => client.listChanged.some((t) => t >= Date.parse(back.since!)), 'a tools list_changed once the victim is back');
      assert.deepEqual(toolNames((await client.listTools()).tools), all);
      const again = await pidOf(client, 'victim');
      assert.notEqual(again, pid, 'a new process serves the victim');
      assert.equal(await membersDown('midsession'), 0);
      assert.ok(gw.log.lines.some((l) => l.level === 30 && l.virtualServer === 'midsession' && l.member === 'victim' && /is back/.test(String(l.msg))));
    }

    it('the v1 client keeps the rest, is told the member is unavailable, and gets it back with a list_changed', async () => {
      const { client, close, listChanged, sessionId } = await connectV1('midsession');
      try {
        await killAndRecover({
          listTools: () => client.listTools(),
          callTool: (p) => client.callTool(p),
          listChanged,
        });
        const recorded = await memberVerdicts(sessionId);
        assert.deepEqual(
          recorded.map((r) => r.replace(/: .*/, '')),
          ["member 'victim' is unavailable and left out of the lists", "member 'victim' is up again and back in the lists"],
        );
        assert.match(recorded[0]!, /SIGKILL/);
      } finally {
        await close();
      }
    });

    it('so does the v2 client pinned to 2026-07-28, listening for list changes', async () => {
      const client: V2Client = await connectV2(gw.mcp('midsession'), gw.auth, { pin: '2026-07-28' });
      const listChanged: number[] = [];
      client.setNotificationHandler('notifications/tools/list_changed', () => void listChanged.push(Date.now()));
      const subscription = await client.listen({ toolsListChanged: true });
      try {
        assert.equal(client.getProtocolEra(), 'modern');
        await killAndRecover({
          listTools: () => client.listTools(),
          callTool: async (p) => {
            // A 2026 client gets a refusal as an error too; a tool error result would be a wrong answer here.
            const result = await client.callTool(p);
            if (result.isError) throw new Error(JSON.stringify(result.content));
            return result;
          },
          listChanged,
        });
      } finally {
        await subscription.close();
        await client.close();
      }
    });
  });

  it("stops without waiting for a member that hangs (its unanswered initialize is no client's request)", async () => {
    // A session left open (no DELETE): its hanging member's initialize is in flight, and stays so.
    const { client } = await connectV1('startup');
    assert.deepEqual(toolNames((await client.listTools()).tools), toolsOf('steady'));
    await waitFor(
      () => [...gw.gateway.sessions.all()].some((s) => s.connection === 'hanger' && s.virtual?.server === 'startup' && s.pendingRequests > 0),
      "the hanging member's initialize in flight",
    );
    // Waiting on it, the drain would last until the member's open attempt is given up (30s after it began); without,
    // a stop takes well under a second: 15s tells the two apart on any machine.
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      gw.stop().then(() => 'stopped'),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still draining after 15s'), 15_000))),
    ]);
    clearTimeout(timer);
    assert.equal(stopped, 'stopped');
  });
});
