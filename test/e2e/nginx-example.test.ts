import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { hopPrefix } from '../../src/cluster/hop.js';
import { secretHash } from '../../src/crypto/secrets.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { AgentProcess } from '../helpers/agent-process.js';
import { closeClient, connectClient } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { gatewayPath, hopSpellings, notHops, send, standInReplica } from '../helpers/hop-spellings.js';
import { connectV2 } from '../helpers/modern.js';
import { nginxCheck, nginxConfig, nginxExample, startNginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { dropAndResume, mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { type Cluster, startCluster } from '../helpers/replicas.js';
import { waitFor } from '../helpers/wait.js';

/**
 * examples/nginx.conf (docs/deploy.md), run by Debian's nginx: it refuses the replicas' internal hop from outside
 * however its path is spelled, passes everything else on as the client sent it, and carries real MCP traffic to two
 * real gateway replicas (2025-era sessions with their SSE streams and resumption, 2026-07-28 clients, an agent's
 * WebSocket tunnel), round-robin, without stickiness.
 */

const example = readFileSync(nginxExample, 'utf8');
/** The example without its comments: what nginx reads. */
const directives = example.replace(/#.*$/gm, '');
/** A response header the tests' nginx adds (not the example's): which replica served a request. */
const servedBy = 'x-served-by';

/** `GET target` written to the socket as is: a request line no HTTP client would send. The status line's code. */
function rawStatus(base: string, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(base).port), '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
    socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  });
}

describe('examples/nginx.conf in front of replicas (docs/deploy.md)', () => {
  it('is a config nginx takes, with what MCP needs: no stickiness, no buffering, HTTP/1.1 kept alive to the replicas', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-nginx-check-'));
    try {
      const file = join(dir, 'nginx.conf');
      writeFileSync(file, nginxConfig(example, { port: 8443, backends: [8080, 8081], dir }));
      assert.equal(nginxCheck(file, dir), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.doesNotMatch(directives, /\b(ip_hash|hash|sticky|gzip on|proxy_cache \S+)\b/);
    for (const line of ['proxy_buffering off;', 'proxy_request_buffering off;', 'proxy_http_version 1.1;', 'proxy_set_header Host $http_host;']) {
      assert.ok(directives.includes(line), line);
    }
    // The upstream connections kept alive (no "Connection: close" to the replicas unless a client upgrades).
    assert.match(directives, /^\s+keepalive \d+;$/m);
    assert.match(directives, /^\s+proxy_set_header Connection \$connection_upgrade;$/m);
    // Streams outlive the gateway's SSE keep-alive (15 s) between two events.
    const [, amount, unit] = /^\s+proxy_read_timeout (\d+)([smh]);$/m.exec(directives)!;
    assert.ok(Number(amount) * { s: 1, m: 60, h: 3600 }[unit as 's' | 'm' | 'h'] > 15);
    // Every proxy_pass without a URI part: the request target goes on as the client sent it, which the hop rule reads.
    const passes = [...directives.matchAll(/proxy_pass (\S+);/g)].map((m) => m[1]);
    assert.ok(passes.length > 0);
    assert.deepEqual([...new Set(passes)], ['http://replicas']);
  });

  it('refuses the internal hop from outside, however its path is spelled, and passes everything else as it was sent', async () => {
    const replica = await standInReplica();
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-nginx-hop-'));
    const nginx = await startNginx({ port: await freePort(), backends: [replica.port], dir }).catch(async (err: unknown) => {
      replica.server.close();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    });
    try {
      for (const target of hopSpellings) {
        assert.ok(gatewayPath(target).startsWith(`${hopPrefix}/`), `${target} is a hop path to the gateway (${gatewayPath(target)})`);
        assert.equal((await send(nginx.url, target)).status, 404, target);
      }
      // Above the root: the gateway's parsing stops at "/" (a hop path again); nginx's own normalization refuses it.
      const aboveRoot = '/mcp/../../_portcullis/hop/mcp/everything';
      assert.ok(gatewayPath(aboveRoot).startsWith(`${hopPrefix}/`));
      assert.equal((await send(nginx.url, aboveRoot)).status, 400);
      // A tab or newline, which a URL parser drops ("_port\tcullis" is "_portcullis" to the gateway), never reaches the
      // rule: nginx refuses control characters in the request line.
      const tabbed = '/_port\tcullis/hop/mcp/everything';
      assert.ok(gatewayPath(tabbed).startsWith(`${hopPrefix}/`));
      assert.equal(await rawStatus(nginx.url, tabbed), 400);
      for (const target of notHops) assert.equal((await send(nginx.url, target)).status, 200, target);
      assert.deepEqual(
        replica.reached.filter((url) => url !== '/readyz'),
        notHops,
        'only the requests that are not hops reached the replica, each as the client sent it',
      );
    } finally {
      await nginx.stop();
      replica.server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('in front of two gateway replicas on one PostgreSQL', () => {
    const agentToken = 'pca_nginx-example-agent-token-0123456789ab';
    let cluster: Cluster;
    let store: Store;
    let agent: AgentProcess | undefined;

    before(async () => {
      cluster = await startCluster({
        count: 2,
        connections: {
          everything: { stdio: { ...everythingStdio(), spares: 0 } },
          vpc: { agent: 'vpc-agent', tools: { pin: false } },
        },
        frontEnd: (dir, backends, port) =>
          startNginx({ port, backends: backends.map((b) => b.port), dir, serverExtra: [`add_header ${servedBy} $upstream_addr always;`] }),
      });
      store = await openStore(cluster.store.url);
    });
    after(async () => {
      await agent?.stop();
      await store?.close();
      await cluster?.stop();
    });

    /** The replica a response came from (the port nginx's $upstream_addr names). */
    const replicaOf = (res: Response) => cluster.replicas.find((r) => res.headers.get(servedBy) === `127.0.0.1:${r.port}`)?.instanceId ?? '';
    const ownerOf = async (sessionId: string) => (await store.getSession(sessionId))!.instanceId;

    it('serves a 2025-era session on both replicas: calls, progress, and server messages on its GET stream as they come', async () => {
      const landed: Array<{ method: string; replica: string }> = [];
      const noting = async (url: string | URL, init?: RequestInit) => {
        const res = await fetch(url, init);
        landed.push({ method: init?.method ?? 'GET', replica: replicaOf(res) });
        return res;
      };
      const transport = new StreamableHTTPClientTransport(new URL('/mcp/everything', cluster.url), { requestInit: { headers: cluster.auth }, fetch: noting });
      const { client } = await connectClient(transport, 'through-nginx');
      const logs: unknown[] = [];
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params.data));
      try {
        for (let n = 0; n < 4; n++) {
          const result = await client.callTool({ name: 'echo', arguments: { message: `through nginx ${n}` } });
          assert.deepEqual(result.content, [{ type: 'text', text: `Echo: through nginx ${n}` }]);
        }
        const progress: number[] = [];
        await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, {
          onprogress: (p) => progress.push(p.progress),
        });
        assert.deepEqual(progress, [1, 2, 3]);
        // server-everything now sends a log message every few seconds, unrelated to any request: on the GET stream,
        // which stays open, so a message arrives only if nginx passes the stream on as it is written.
        await waitFor(() => landed.some((l) => l.method === 'GET'), 'the SDK to open its GET stream');
        await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
        await waitFor(() => logs.length >= 1, 'a server log message on the GET stream through nginx', 30_000);
        // No stickiness: the session's requests landed on both replicas (those on the other one went over the hop).
        const owner = await ownerOf(transport.sessionId!);
        const posts = landed.filter((l) => l.method === 'POST').map((l) => l.replica);
        assert.deepEqual(new Set(posts), new Set(cluster.replicas.map((r) => r.instanceId)), `landed on ${posts} (owner ${owner})`);
      } finally {
        await closeClient(client, transport);
      }
    });

    it('resumes a dropped SSE response with Last-Event-ID, on either replica', async () => {
      const mcp = new URL('/mcp/everything', cluster.url);
      const sessionId = await rawInitialize(mcp, cluster.auth);
      const headers = { ...mcpHeaders, ...cluster.auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
      const resumedOn = new Set<string>();
      try {
        // Round-robin alternates: the POST and its resumption land on different replicas, and a request between two
        // attempts (/readyz) shifts the next pair, so that the next resumption lands on the other replica.
        for (let attempt = 0; attempt < 4 && resumedOn.size < 2; attempt++) {
          if (attempt > 0) await (await fetch(new URL('/readyz', cluster.url))).body?.cancel();
          const { resumed, replay } = await dropAndResume(mcp, headers, `long-${attempt}`);
          resumedOn.add(replicaOf(resumed));
          assert.deepEqual(replay, ['progress:2', 'progress:3', `response:long-${attempt}`]);
        }
      } finally {
        const ended = await fetch(mcp, { method: 'DELETE', headers });
        await ended.body?.cancel();
      }
      assert.equal(resumedOn.size, 2, `resumed on ${[...resumedOn]}`);
    });

    it('serves a 2026-07-28 client from both replicas, its progress streamed', async () => {
      const served: string[] = [];
      const noting = async (url: string | URL, init?: RequestInit) => {
        const res = await fetch(url, init);
        served.push(replicaOf(res));
        return res;
      };
      const client = await connectV2(new URL('/mcp/everything', cluster.url), cluster.auth, { pin: '2026-07-28' }, [], { fetch: noting });
      try {
        assert.equal(client.getProtocolEra(), 'modern');
        for (let i = 0; i < 3; i++) {
          const result = await client.callTool({ name: 'echo', arguments: { message: `modern ${i}` } });
          assert.deepEqual(result.content, [{ type: 'text', text: `Echo: modern ${i}` }]);
        }
        const progress: number[] = [];
        await client.callTool(
          { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
          { onprogress: (p) => progress.push(p.progress) },
        );
        assert.deepEqual(progress, [1, 2, 3]);
      } finally {
        await client.close();
      }
      assert.deepEqual(new Set(served), new Set(cluster.replicas.map((r) => r.instanceId)), `served by ${served}`);
    });

    it("carries an agent's WebSocket tunnel, and a session served through it", async () => {
      await store.putAgent(
        { name: 'vpc-agent', tokenHash: secretHash(agentToken), createdAtUs: Date.now() * 1000, revokedAtUs: null, lastSeenAtUs: null },
        false,
      );
      const config = join(cluster.replicas[0]!.dir, 'agent.yaml');
      writeFileSync(
        config,
        stringify({ gateway: cluster.url, name: 'vpc-agent', token: '${env:AGENT_TOKEN}', connections: { vpc: { stdio: everythingStdio() } } }),
      );
      agent = new AgentProcess(config, { AGENT_TOKEN: agentToken });
      await agent.connected();
      const transport = new StreamableHTTPClientTransport(new URL('/mcp/vpc', cluster.url), { requestInit: { headers: cluster.auth } });
      const { client } = await connectClient(transport, 'through-the-agent');
      try {
        const result = await client.callTool({ name: 'echo', arguments: { message: 'through nginx and the agent' } });
        assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: through nginx and the agent' }]);
      } finally {
        await closeClient(client, transport);
      }
    });

    it('answers the hop itself: no replica sees one', async () => {
      const refusals = () => cluster.replicas.map((r) => r.process.output.split('internal hop refused').length - 1);
      // A hop sent to a replica directly is refused there, and logged: what would show if one got through nginx.
      const direct = await send(cluster.replicas[0]!.url, hopSpellings[0]!);
      assert.equal(direct.status, 401);
      await waitFor(() => refusals()[0] === 1, "the replica's log of the refused hop");
      const before = refusals();
      for (const target of hopSpellings) {
        const answer = await send(cluster.url, target);
        assert.equal(answer.status, 404, target);
        assert.match(answer.body, /<center>nginx\/[\d.]+<\/center>/, `${target}: nginx's own answer`);
      }
      assert.deepEqual(refusals(), before);
    });
  });
});
