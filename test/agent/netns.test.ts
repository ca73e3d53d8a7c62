import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { secretHash } from '../../src/crypto/secrets.js';
import { AgentProcess } from '../helpers/agent-process.js';
import { fixturePath, type RunningServer, startEverything } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { namespacesUnavailable, NetworkNamespace } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';

/**
 * The agent as deployed: it and the server it serves live in a network of their own (a Linux network namespace with
 * only its loopback), the way a VPC's servers do. The namespace's one way out is a relay to the gateway; nothing
 * outside can reach in, so the gateway cannot reach the server but through the agent's tunnel.
 */

const unavailable = namespacesUnavailable();
const token = 'pca_netns-test-token-0123456789abcdef';

describe('the agent and its server in their own network namespace', {
  skip:
    unavailable && `network namespaces cannot be made here (${unavailable}); test/agent/agent.test.ts runs the agent on a port the gateway is not told about`,
}, () => {
  let ns: NetworkNamespace;
  let dir: string;
  let gw: TestGateway;
  let server: RunningServer;
  let exit: Server;
  let relay: ChildProcess;
  let agent: AgentProcess;
  const clients: Client[] = [];

  before(async () => {
    ns = NetworkNamespace.create();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-netns-'));
    gw = await startTestGateway({ connections: { vpc: { agent: 'vpc-agent' } }, agents: { heartbeat: '1s' } });
    await gw.gateway.recorder!.store.putAgent(
      { name: 'vpc-agent', tokenHash: secretHash(token), createdAtUs: Date.now() * 1000, revokedAtUs: null, lastSeenAtUs: null },
      false,
    );
    // The namespace's way out: its relay (inside) → this Unix socket → the gateway's port (outside).
    const socketPath = join(dir, 'exit.sock');
    const gatewayPort = Number(new URL(gw.url).port);
    exit = createServer((inside) => {
      const outside = tcpConnect(gatewayPort, '127.0.0.1');
      for (const s of [inside, outside]) s.on('error', () => [inside, outside].forEach((x) => x.destroy()));
      inside.pipe(outside).pipe(inside);
    });
    await new Promise<void>((resolve) => exit.listen(socketPath, resolve));
    const relayPort = await freePort();
    relay = spawn(ns.prefix[0]!, [...ns.prefix.slice(1), process.execPath, fixturePath('unix-relay.js'), String(relayPort), socketPath], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await once(relay.stdout!, 'data');
    // The server: Streamable HTTP on the namespace's own loopback.
    server = await startEverything('streamableHttp', ns.prefix);
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      stringify({
        gateway: `http://127.0.0.1:${relayPort}`,
        name: 'vpc-agent',
        token: '${env:AGENT_TOKEN}',
        heartbeat: '1s',
        connections: { vpc: { http: { url: server.url, headers: { authorization: 'Bearer ${env:UPSTREAM_TOKEN}' } } } },
      }),
    );
    agent = new AgentProcess(config, { AGENT_TOKEN: token, UPSTREAM_TOKEN: 'upstream-credential-inside-the-vpc' }, ns.prefix);
    await agent.connected();
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await agent?.stop();
    await server?.stop();
    relay?.kill('SIGTERM');
    exit?.close();
    await gw?.stop();
    ns?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the server listens where the gateway cannot reach', async () => {
    // The same address and port, from the gateway's side: nothing there.
    await assert.rejects(fetch(server.url, { method: 'POST' }), (err: Error & { cause?: { code?: string } }) => err.cause?.code === 'ECONNREFUSED');
  });

  it('a client reaches it through the gateway and the agent', async () => {
    const client = new Client({ name: 'netns-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('vpc'), { requestInit: { headers: gw.auth } }));
    clients.push(client);
    const result = (await client.callTool({ name: 'echo', arguments: { message: 'from outside the vpc' } })) as CallToolResult;
    assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: from outside the vpc' }]);
    const sessions = await gw.gateway.recorder!.store.listSessions({ limit: 10 });
    assert.equal(sessions.filter((s) => s.connection === 'vpc').length, 1, 'the session is recorded at the gateway');
  });
});
