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
import { tokenHash } from '../../src/agent/hub.js';
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
    gw = await startTestGateway({ connections: { vpc: { agent: 'vpc-agent' } }, agents: { heartbeat: '1s' } });
    await gw.gateway.recorder!.store.putAgent({ name: 'vpc-agent', tokenHash: tokenHash(token), createdAtUs: Date.now() * 1000, revokedAtUs: null, lastSeenAtUs: null }, false);
    agentConfig = join(dir, 'agent.yaml');
    writeFileSync(
      agentConfig,
      stringify({
        gateway: gw.url,
        name: 'vpc-agent',
        token: '${env:AGENT_TOKEN}',
        heartbeat: '1s',
        log: { level: 'info' },
        connections: { vpc: { stdio: { ...everythingStdio(), env: { UPSTREAM_SETTING: '${env:PLANTED_SETTING}' } } } },
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
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    });
    assert.ok(res.status >= 500, `status ${res.status}`);
    assert.match(await res.text(), /agent 'vpc-agent' is not connected/);
    const ready = (await (await fetch(new URL('/readyz', gw.url))).json()) as { status: string; agents: Record<string, string> };
    assert.equal(ready.status, 'ready', 'the gateway itself is ready');
    assert.deepEqual(ready.agents, { 'vpc-agent': 'disconnected' });
  });

  it('serves the connection through the agent once it dials in, the credential staying inside', async () => {
    agent = new AgentProcess(agentConfig, { AGENT_TOKEN: token, PLANTED_SETTING: planted });
    await agent.connected();
    const client = await connect();
    assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'through the tunnel' } })), /Echo: through the tunnel/);
    const env = text(await client.callTool({ name: 'get-env', arguments: {} }));
    assert.ok(!env.includes(planted), 'the client never sees the credential');
    assert.match(env, /\[REDACTED:credential:vpc\.env\.UPSTREAM_SETTING\]/, 'the agent names what it scrubbed');
    const { agents } = (await (await fetch(new URL('/api/agents', gw.url), { headers: gw.auth })).json()) as { agents: Array<{ name: string; connected: boolean; connections: string[]; sessions: number }> };
    assert.deepEqual(
      agents.map((a) => [a.name, a.connected, a.connections, a.sessions]),
      [['vpc-agent', true, ['vpc'], 1]],
    );
  });

  it('never lets the credential into the gateway: not its logs, recordings or API', async () => {
    assert.ok(!gw.log.text.includes(planted), 'logs');
    const store = gw.gateway.recorder!.store;
    for (const s of await store.listSessions({ limit: 100 })) {
      for (const e of await allEvents(store, s.id)) assert.ok(!e.payload.includes(planted) && !(e.forwarded ?? '').includes(planted), `recording ${s.id} event ${e.seq}`);
    }
    const api = await (await fetch(new URL('/api/agents', gw.url), { headers: gw.auth })).text();
    assert.ok(!api.includes(planted) && !api.includes(token));
  });

  it('ends sessions in flight when the agent dies, and serves again when it is back', async () => {
    const client = await connect();
    await client.callTool({ name: 'echo', arguments: { message: 'before' } });
    await agent!.stop('SIGKILL');
    await waitFor(async () => ((await (await fetch(new URL('/readyz', gw.url))).json()) as { agents: Record<string, string> }).agents['vpc-agent'] === 'disconnected', 'the gateway to notice', 10_000);
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'after' } }));
    agent = new AgentProcess(agentConfig, { AGENT_TOKEN: token, PLANTED_SETTING: planted });
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
});
