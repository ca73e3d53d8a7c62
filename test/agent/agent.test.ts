import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import WebSocket from 'ws';
import { secretHash } from '../../src/crypto/secrets.js';
import { version } from '../../src/version.js';
import { AgentProcess } from '../helpers/agent-process.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The agent end to end, as a separate process: it dials the gateway, serves a connection whose server it starts
 * with a credential only it holds, and the credential never reaches the gateway (its logs, recordings, API) nor
 * the client. When the agent is gone, new sessions get a clear error and sessions in flight end.
 */

// Looks like nothing a pattern would catch: only the agent, which knows it injected it, can scrub it.
const planted = 'quietly-ordinary-value-7f3k9q2m';
// Passed through from the agent's own environment (as an instance role's credentials would be), not named in its config.
const passed = 'another-plain-looking-value-4h8w1x';
const token = 'pca_test-token-for-the-agent-0123456789abcdef';

describe('the agent', () => {
  let gw: TestGateway;
  let dir: string;
  let agentConfig: string;
  let agent: AgentProcess | undefined;
  const clients: Client[] = [];

  const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

  async function connect(): Promise<Client> {
    const client = new Client({ name: 'agent-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('vpc'), { requestInit: { headers: gw.auth } }));
    clients.push(client);
    return client;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-agent-'));
    gw = await startTestGateway({ connections: { vpc: { agent: 'vpc-agent' } }, agents: { heartbeat: '1s' }, roles: { admins: ['testers'] } });
    await gw.gateway.recorder!.store.putAgent(
      { name: 'vpc-agent', tokenHash: secretHash(token), createdAtUs: Date.now() * 1000, revokedAtUs: null, lastSeenAtUs: null },
      false,
    );
    agentConfig = join(dir, 'agent.yaml');
    writeFileSync(
      agentConfig,
      stringify({
        gateway: gw.url,
        name: 'vpc-agent',
        token: '${env:AGENT_TOKEN}',
        heartbeat: '1s',
        log: { level: 'info' },
        connections: {
          vpc: {
            stdio: {
              // The server says its setting on stderr as it starts: the agent forwards stderr to the gateway, scrubbed.
              command: 'sh',
              args: ['-c', 'echo "starting with setting $UPSTREAM_SETTING" >&2; exec "$@"', 'sh', everythingStdio().command, ...everythingStdio().args],
              env: { UPSTREAM_SETTING: '${env:PLANTED_SETTING}' },
              passEnv: ['ROLE_*'],
            },
          },
        },
      }),
    );
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await agent?.stop();
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses new sessions with a clear error while the agent is not connected', async () => {
    const res = await fetch(gw.mcp('vpc'), {
      method: 'POST',
      headers: { ...gw.auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    assert.ok(res.status >= 500, `status ${res.status}`);
    assert.match(await res.text(), /agent 'vpc-agent' is not connected/);
    const ready = (await (await fetch(new URL('/readyz', gw.url))).json()) as { status: string; agents: Record<string, string> };
    assert.equal(ready.status, 'ready', 'the gateway itself is ready');
    assert.deepEqual(ready.agents, { 'vpc-agent': 'disconnected' });
    assert.match(await (await fetch(new URL('/metrics', gw.url), { headers: gw.apiAuth })).text(), /^portcullis_agent_connected\{agent="vpc-agent"\} 0$/m);
  });

  it('serves the connection through the agent once it dials in, the credential staying inside', async () => {
    agent = new AgentProcess(agentConfig, { AGENT_TOKEN: token, PLANTED_SETTING: planted, ROLE_CONTEXT: passed });
    await agent.connected();
    const client = await connect();
    assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'through the tunnel' } })), /Echo: through the tunnel/);
    const env = text(await client.callTool({ name: 'get-env', arguments: {} }));
    assert.ok(!env.includes(planted), 'the client never sees the credential');
    assert.match(env, /\[REDACTED:credential:vpc\.env\.UPSTREAM_SETTING\]/, 'the agent names what it scrubbed');
    assert.ok(!env.includes(passed), 'nor a value passed through from the agent environment');
    assert.match(env, /\[REDACTED:credential:vpc\.env\.ROLE_CONTEXT\]/, 'passEnv gave the server the variable, and the agent scrubs it');
    const { agents } = (await (await fetch(new URL('/api/agents', gw.url), { headers: gw.auth })).json()) as {
      agents: Array<{ name: string; connected: boolean; connections: string[]; sessions: number }>;
    };
    assert.deepEqual(
      agents.map((a) => [a.name, a.connected, a.connections, a.sessions]),
      [['vpc-agent', true, ['vpc'], 1]],
    );
  });

  it("forwards the server's stderr to the gateway's log, scrubbed, with the session", async () => {
    await waitFor(() => gw.log.lines.some((l) => l.msg === 'upstream stderr (via agent)'), 'a stderr line to arrive', 10_000);
    const line = gw.log.lines.find((l) => l.msg === 'upstream stderr (via agent)')!;
    assert.equal(line.stderr, 'starting with setting [REDACTED:credential:vpc.env.UPSTREAM_SETTING]');
    assert.equal(line.agent, 'vpc-agent');
    assert.equal(line.connection, 'vpc');
    assert.match(String(line.session), /^[A-Za-z0-9_]/);
  });

  it("exports the agent's status as Prometheus metrics", async () => {
    const res = await fetch(new URL('/metrics', gw.url), { headers: gw.apiAuth });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const metrics = await res.text();
    const value = (name: string) => {
      const m = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics);
      assert.ok(
        m,
        `${name} in\n${metrics
          .split('\n')
          .filter((l) => l.startsWith('portcullis_'))
          .join('\n')}`,
      );
      return Number(m[1]);
    };
    assert.equal(value('portcullis_agent_connected{agent="vpc-agent"}'), 1);
    assert.equal(value(`portcullis_agent_info{agent="vpc-agent",version="${version}"}`), 1);
    assert.equal(value('portcullis_agent_sessions{agent="vpc-agent"}'), 1);
    assert.equal(value('portcullis_agent_connections{agent="vpc-agent"}'), 1);
    assert.equal(value('portcullis_agent_tunnels_opened_total{agent="vpc-agent"}'), 1);
    assert.ok(value('portcullis_agent_tunnel_bytes_total{agent="vpc-agent",direction="in"}') > 1000);
    assert.ok(value('portcullis_agent_tunnel_bytes_total{agent="vpc-agent",direction="out"}') > 100);
    assert.ok(Math.abs(value('portcullis_agent_last_heartbeat_timestamp_seconds{agent="vpc-agent"}') - Date.now() / 1000) < 10);
    assert.equal(value('portcullis_sessions_open{connection="vpc"}'), 1);
    assert.ok(value('portcullis_messages_total{connection="vpc",direction="toServer"}') >= 3);
  });

  it('never lets the credential into the gateway: not its logs, recordings or API', async () => {
    assert.ok(!gw.log.text.includes(planted) && !gw.log.text.includes(passed), 'logs');
    const store = gw.gateway.recorder!.store;
    for (const s of await store.listSessions({ limit: 100 })) {
      for (const e of await allEvents(store, s.id))
        for (const value of [planted, passed])
          assert.ok(!e.payload.includes(value) && !(e.forwarded ?? '').includes(value), `recording ${s.id} event ${e.seq}`);
    }
    const api = await (await fetch(new URL('/api/agents', gw.url), { headers: gw.auth })).text();
    assert.ok(!api.includes(planted) && !api.includes(passed) && !api.includes(token));
  });

  it('ends sessions in flight when the agent dies, and serves again when it is back', async () => {
    const client = await connect();
    await client.callTool({ name: 'echo', arguments: { message: 'before' } });
    await agent!.stop('SIGKILL');
    await waitFor(
      async () => ((await (await fetch(new URL('/readyz', gw.url))).json()) as { agents: Record<string, string> }).agents['vpc-agent'] === 'disconnected',
      'the gateway to notice',
      10_000,
    );
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'after' } }));
    const row = await gw.gateway.recorder!.store.getSession((client.transport as StreamableHTTPClientTransport).sessionId!);
    assert.equal(row?.status, 'cut-off', 'a session whose tunnel dropped is recorded as cut off');
    agent = new AgentProcess(agentConfig, { AGENT_TOKEN: token, PLANTED_SETTING: planted, ROLE_CONTEXT: passed });
    await agent.connected();
    const again = await connect();
    assert.match(text(await again.callTool({ name: 'echo', arguments: { message: 'back' } })), /Echo: back/);
  });

  it('refuses an agent with a wrong token, or none', async () => {
    for (const headers of [{ 'x-portcullis-agent': 'vpc-agent', authorization: 'Bearer pca_wrong' }, {}]) {
      const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/agent`, { headers });
      ws.on('error', () => {}); // the refused handshake ends the socket; nothing to report
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number; resume(): void }];
      assert.equal(res.statusCode, 'authorization' in headers ? 403 : 401);
      res.resume();
    }
    assert.ok(gw.log.lines.some((l) => l.msg === 'agent tunnel refused'));
  });

  it('closes the tunnel of an agent that sends malformed frames, and keeps serving the others', async () => {
    const rogueToken = 'pca_rogue-agent-token-0123456789abcdef';
    await gw.gateway.recorder!.store.putAgent(
      { name: 'rogue-agent', tokenHash: secretHash(rogueToken), createdAtUs: Date.now() * 1000, revokedAtUs: null, lastSeenAtUs: null },
      false,
    );
    const healthy = await connect();
    for (const garbage of [Buffer.from([9, 0, 0, 0, 0]), Buffer.from([1, 0, 0, 0, 0, 0x7b]), Buffer.from([2, 0])]) {
      const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/agent`, {
        headers: { 'x-portcullis-agent': 'rogue-agent', authorization: `Bearer ${rogueToken}` },
      });
      await once(ws, 'open');
      ws.send(garbage);
      const [code] = (await once(ws, 'close')) as [number];
      assert.equal(code, 1002, `closed as a protocol error for ${garbage.toString('hex')}`);
    }
    assert.ok(gw.log.lines.some((l) => l.msg === 'agent sent a malformed frame; closing its tunnel' && l.agent === 'rogue-agent'));
    assert.match(text(await healthy.callTool({ name: 'echo', arguments: { message: 'still here' } })), /Echo: still here/);
  });

  it('closes an open tunnel once its token is revoked or rotated (by the next heartbeat)', async () => {
    const store = gw.gateway.recorder!.store;
    const changes = {
      'revoked-agent': () => store.updateAgent('revoked-agent', { revokedAtUs: Date.now() * 1000 }),
      // As `agents create --rotate` does.
      'rotated-agent': () =>
        store.putAgent(
          {
            name: 'rotated-agent',
            tokenHash: secretHash('pca_the-new-token-0123456789abcdef'),
            createdAtUs: Date.now() * 1000,
            revokedAtUs: null,
            lastSeenAtUs: null,
          },
          true,
        ),
    };
    for (const [name, change] of Object.entries(changes)) {
      const agentToken = `pca_${name}-token-0123456789abcdef`;
      await store.putAgent({ name, tokenHash: secretHash(agentToken), createdAtUs: Date.now() * 1000, revokedAtUs: null, lastSeenAtUs: null }, false);
      const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/agent`, { headers: { 'x-portcullis-agent': name, authorization: `Bearer ${agentToken}` } });
      await once(ws, 'open');
      const closed = once(ws, 'close') as Promise<[number, Buffer]>;
      await change();
      const [code, reason] = await closed;
      assert.equal(code, 4001);
      assert.match(reason.toString(), name === 'revoked-agent' ? /revoked/ : /rotated/);
    }
  });
});
