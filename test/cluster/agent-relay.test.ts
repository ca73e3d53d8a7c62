import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { relayTarget } from '../../src/agent/remote-channel.js';
import { HopAuth, hopRefusedHeader } from '../../src/cluster/hop-auth.js';
import { hopPrefix } from '../../src/cluster/hop.js';
import { secretHash } from '../../src/crypto/secrets.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { AgentProcess } from '../helpers/agent-process.js';
import { everythingStdio } from '../helpers/everything.js';
import { allEvents, receivedTexts } from '../helpers/recorded.js';
import { type Cluster, type Replica, startCluster } from '../helpers/replicas.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Agents across replicas (issue 18), with real processes: three gateways on one PostgreSQL database behind HAProxy,
 * and real agents serving server-everything. A tunnel ends on one replica; a session on another replica is relayed
 * by the holder over the signed internal hop while its whole pipeline (the recording above all) stays where the
 * client is. The relay refuses anything not signed with cluster.secret; a relayed session whose tunnel is lost ends
 * as cut off. An agent keeping tunnels to two replicas serves new sessions on through the other when one replica is
 * killed.
 */

const token = 'pca_relay-test-agent-token-0123456789abcdef';

describe('agents across replicas', () => {
  let cluster: Cluster;
  let store: Store;
  let dir: string;
  const agents: AgentProcess[] = [];
  const clients: Client[] = [];

  const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

  function agentConfig(file: string, keys: Record<string, unknown>): string {
    const path = join(dir, file);
    writeFileSync(
      path,
      stringify({ ...keys, name: 'vpc-agent', token: '${env:AGENT_TOKEN}', heartbeat: '10s', connections: { vpc: { stdio: everythingStdio() } } }),
    );
    return path;
  }

  function startAgent(config: string): AgentProcess {
    const agent = new AgentProcess(config, { AGENT_TOKEN: token });
    agents.push(agent);
    return agent;
  }

  async function connect(replica: Replica): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const client = new Client({ name: 'relay-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL('/mcp/vpc', replica.url), { requestInit: { headers: cluster.auth } });
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  }

  /** The replicas holding a tunnel of the agent, as the store records them. */
  const holders = async () => (await store.agentTunnels('vpc-agent')).map((r) => r.instanceId).sort();

  /** The agent as replica `replica`'s /api/agents reports it. */
  async function agentOn(replica: Replica): Promise<{ connected: boolean; elsewhere?: string[] } | undefined> {
    const res = await fetch(new URL('/api/agents', replica.url), { headers: cluster.apiAuth });
    const { agents: list } = (await res.json()) as { agents: Array<{ name: string; connected: boolean; elsewhere?: string[] }> };
    return list.find((a) => a.name === 'vpc-agent');
  }
  const agentConnectedOn = async (replica: Replica) => (await agentOn(replica))?.connected === true;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-agent-relay-'));
    cluster = await startCluster({
      count: 3,
      connections: { vpc: { agent: 'vpc-agent', tools: { pin: false } } },
      // A beat has 2 s to land: within it, recording.writeTimeout (1 s) and a wait for a pooled connection as long.
      extra: { agents: { heartbeat: '10s' }, cluster: { goneAfter: '3s' }, recording: { writeTimeout: '1s' } },
    });
    store = await openStore(cluster.store.url);
    await store.putAgent({ name: 'vpc-agent', tokenHash: secretHash(token), createdAtUs: Date.now() * 1000, revokedAtUs: null, lastSeenAtUs: null }, false);
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    for (const a of agents) await a.stop();
    await store?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a session on a replica without the tunnel, relayed by the holder, and records it where the client is', async () => {
    const [holder, serving] = cluster.replicas;
    // The single-gateway config of before: `gateway:` one URL, one tunnel.
    const agent = startAgent(agentConfig('one.yaml', { gateway: holder!.url }));
    await agent.connected();
    await waitFor(async () => (await holders()).join() === holder!.instanceId, 'the tunnel location to be recorded');
    assert.equal(await agentConnectedOn(serving!), false, 'the serving replica holds no tunnel of the agent');
    // ...but it does not report the agent lost: it names the replica whose tunnel it reaches the agent through.
    assert.deepEqual((await agentOn(serving!))?.elsewhere, [holder!.instanceId]);
    assert.deepEqual((await agentOn(holder!))?.elsewhere, [], 'the holder holds the tunnel itself');

    const { client, transport } = await connect(serving!);
    assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'across replicas' } })), /Echo: across replicas/);
    const session = transport.sessionId!;
    await waitFor(async () => (await store.getSession(session))?.instanceId === serving!.instanceId, 'the session recorded by the serving replica');
    await waitFor(
      async () => receivedTexts(await allEvents(store, session), 'toClient').some((t) => t.includes('Echo: across replicas')),
      "the tool's answer in the serving replica's recording",
    );
    await client.close();
  });

  it('refuses a relay without the hop credential, or signed under another secret', async () => {
    const holder = cluster.replicas[0]!;
    const target = relayTarget('vpc-agent', 'vpc', 'not-a-session');
    const url = `${holder.url.replace(/^http/, 'ws')}${hopPrefix}${target}`;
    const attempt = async (headers: Record<string, string>) => {
      const ws = new WebSocket(url, { headers });
      const [, res] = (await Promise.race([once(ws, 'unexpected-response'), once(ws, 'open')])) as [unknown, IncomingMessage?];
      if (res === undefined) {
        ws.terminate();
        assert.fail('the relay opened');
      }
      res.resume();
      ws.terminate();
      return res;
    };
    const bare = await attempt({});
    assert.equal(bare.statusCode, 401);
    assert.equal(bare.headers[hopRefusedHeader], 'malformed');
    const caller = { identity: { subject: 'replica:replica-2', issuer: 'portcullis-replica', groups: [] }, access: 'agent-relay' };
    // Every part of the request right but the secret: a signature under it is certainly not the cluster's.
    const forged = new HopAuth('a-secret-that-is-not-the-clusters-0123456789', 'replica-2').sign('GET', target, {}, '', caller, holder.instanceId);
    const wrong = await attempt(forged);
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.headers[hopRefusedHeader], 'bad-signature');
  });

  it('ends a relayed session as cut off when the tunnel it went through is lost', async () => {
    const { client, transport } = await connect(cluster.replicas[1]!);
    assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'before' } })), /Echo: before/);
    const session = transport.sessionId!;
    await agents[0]!.stop('SIGKILL');
    await waitFor(async () => (await store.getSession(session))?.status === 'cut-off', 'the relayed session to be recorded as cut off');
    assert.match((await store.getSession(session))!.closeReason ?? '', /the tunnel to agent 'vpc-agent' closed/);
    await waitFor(async () => (await holders()).length === 0, 'the agent to hold no tunnel');
    await assert.rejects(connect(cluster.replicas[1]!), /agent 'vpc-agent' is not connected/);
  });

  it('keeps serving new sessions through its other tunnel when a replica holding one is killed', async () => {
    // Two tunnels through the load balancer: the agent dials again until they end on distinct replicas.
    const agent = startAgent(agentConfig('two.yaml', { gateway: cluster.url, tunnels: 2 }));
    await agent.connected(2);
    await waitFor(async () => (await holders()).length === 2, 'tunnels on two replicas', 60_000);
    const [lost, kept] = await holders();
    const byId = (id: string) => cluster.replicas.find((r) => r.instanceId === id)!;
    const third = cluster.replicas.find((r) => r.instanceId !== lost && r.instanceId !== kept)!;

    await cluster.kill(byId(lost!).index);
    const { client } = await connect(third);
    assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'after the failover' } })), /Echo: after the failover/);
    await client.close();

    // The agent dials again through the load balancer and again holds two tunnels, both on live replicas.
    const live = new Set([kept, third.instanceId]);
    await waitFor(async () => (await holders()).filter((id) => live.has(id)).length === 2, 'a second tunnel on a live replica', 90_000);
    assert.equal(await agentConnectedOn(byId(kept!)), true);
    assert.equal(await agentConnectedOn(third), true);
  });
});
