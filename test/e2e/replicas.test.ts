import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { keyIdOfPem } from '../../src/recording/keys.js';
import { trustedKeys, verifySession } from '../../src/recording/verify.js';
import type { Store } from '../../src/store/store.js';
import type { SessionRow } from '../../src/store/types.js';
import { callApi } from '../helpers/api.js';
import { runCli } from '../helpers/cli.js';
import { closeClient, connectClient } from '../helpers/client.js';
import { readLiveEvents } from '../helpers/console.js';
import { everythingStdio } from '../helpers/everything.js';
import { servedByHeader } from '../helpers/haproxy.js';
import { connectV2 } from '../helpers/modern.js';
import { dropAndResume, mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { type Cluster, clusterUsers, consoleCookie, metric, startCluster } from '../helpers/replicas.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 18: three gateway replicas (real `portcullis gateway` processes) on one PostgreSQL database behind HAProxy,
 * round-robin per request and no stickiness. A 2026-07-28 request is self-contained, so whichever replica it lands
 * on serves it; every replica records into the shared store, and any replica's console and API see all of it.
 */

const connection = 'everything';
/** A connection only `testers` may use, or whoever a lead grants it to for a while. */
const granted = 'granted';

describe('three replicas on one PostgreSQL behind HAProxy (issue 18)', () => {
  let cluster: Cluster;
  let store: Store;

  before(async () => {
    cluster = await startCluster({
      count: 3,
      users: { ...clusterUsers, lead: ['leads'], outsider: ['outsiders'] },
      // No warm spares: a server process only where a session is (three gateways share the machine's two cores).
      connections: {
        [connection]: { stdio: { ...everythingStdio(), spares: 0 } },
        [granted]: { stdio: { ...everythingStdio(), spares: 0 }, access: { groups: ['testers'], approvers: ['leads'], maxGrant: '1h' } },
      },
      extra: {
        // Pooled upstream sessions of modern clients close a few seconds after their last use, so their recordings get sealed.
        sessions: { modernIdleTimeout: '5s' },
        // An echo whose message starts with "hold" waits for a lead's approval.
        rules: [{ name: 'held', when: 'tool.name == "echo" && arguments.message.startsWith("hold")', action: 'review', approvers: ['leads'] }],
      },
    });
    store = await cluster.store.open();
  });
  after(async () => {
    await store?.close();
    await cluster?.stop();
  });

  const received = (r: Cluster['replicas'][number]) => metric(cluster, r, 'portcullis_messages_total', { connection, direction: 'toServer' });
  /** A replica other than the one named. */
  const otherThan = (instanceId: string) => cluster.replicas.find((r) => r.instanceId !== instanceId)!;

  type Landing = { method: string; body: string; servedBy: string };
  /** A fetch for a client's transport that notes where HAProxy sent each request (X-Served-By) and what it carried. */
  const noting =
    (landed: Landing[]) =>
    async (url: string | URL, init?: RequestInit): Promise<Response> => {
      const res = await fetch(url, init);
      landed.push({ method: init?.method ?? 'GET', body: typeof init?.body === 'string' ? init.body : '', servedBy: res.headers.get(servedByHeader) ?? '' });
      return res;
    };
  const ownerOf = async (sessionId: string) => (await store.getSession(sessionId))!.instanceId;

  it('serves v2 clients pinned to 2026-07-28 from every replica: tools, resources, progress', async () => {
    const before = await Promise.all(cluster.replicas.map(received));
    const clients: V2Client[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await connectV2(cluster.mcp(connection), cluster.auth, { pin: '2026-07-28' }));
      await Promise.all(
        clients.map(async (client, c) => {
          assert.equal(client.getProtocolEra(), 'modern');
          const { tools } = await client.listTools();
          assert.ok(tools.some((t) => t.name === 'echo'));
          for (let i = 0; i < 4; i++) {
            const result = await client.callTool({ name: 'echo', arguments: { message: `client ${c} call ${i}` } });
            assert.deepEqual(result.content, [{ type: 'text', text: `Echo: client ${c} call ${i}` }]);
          }
          const { resources } = await client.listResources();
          assert.ok(resources.length > 0);
          const read = await client.readResource({ uri: resources[0]!.uri });
          assert.equal(read.contents[0]!.uri, resources[0]!.uri);
          const progress: number[] = [];
          const long = await client.callTool(
            { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
            { onprogress: (p) => progress.push(p.progress) },
          );
          assert.deepEqual(progress, [1, 2, 3], 'every progress notification, streamed through HAProxy before the result');
          assert.match(JSON.stringify(long.content), /Long running operation completed/);
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
    // Round-robin per request: every replica received some of these requests (each client alone made 8).
    const afterCounts = await Promise.all(cluster.replicas.map(received));
    cluster.replicas.forEach((r, i) => assert.ok(afterCounts[i]! > before[i]!, `${r.instanceId} received none of the requests`));
    // And recorded them in the shared store under its own instance id.
    const modern = (await store.listSessions({ limit: 1000 })).filter((s) => s.edge === 'modern');
    assert.deepEqual([...new Set(modern.map((s) => s.instanceId))].sort(), cluster.replicas.map((r) => r.instanceId).sort());
  });

  it("seals every replica's recordings so that they verify, with the store API and `portcullis sessions verify`", async () => {
    // The pooled sessions close five seconds after their last use; each replica then seals its own.
    let sessions: SessionRow[] = [];
    await waitFor(
      async () => {
        sessions = await store.listSessions({ limit: 1000 });
        return sessions.length > 0 && sessions.every((s) => s.status === 'closed');
      },
      'every recorded session to be closed and sealed',
      60_000,
    );
    const keys = await trustedKeys(cluster.trustedKeys.map((pem) => ({ keyId: keyIdOfPem(pem), publicKeyPem: pem })));
    for (const s of sessions) {
      const v = await verifySession(store, s.id, keys);
      assert.equal(v.status, 'verified', `${s.id} (${s.instanceId}): ${JSON.stringify(v.problems)}`);
    }
    // The operator's command, with one replica's config: it trusts every replica's key (recording.trustedKeys).
    const cli = await runCli(['sessions', 'verify', '--all', '--config', cluster.replicas[0]!.configFile]);
    assert.equal(cli.code, 0, `${cli.stdout}${cli.stderr}`);
    const total = sessions.length;
    assert.match(cli.stdout, new RegExp(`^${total} sessions: ${total} verified, 0 not sealed yet \\(live\\), 0 FAILED; 3 ledgers: intact$`, 'm'), cli.stdout);
  });

  it("shows every replica's sessions in the console and the API of each one", async () => {
    const recorded = await store.listSessions({ limit: 1000 });
    const byInstance = new Map(recorded.map((s) => [s.instanceId, s.id]));
    assert.equal(byInstance.size, 3);
    const cookie = await consoleCookie(cluster);
    for (const r of cluster.replicas) {
      // The console's list, asked of this replica directly.
      const res = await fetch(new URL('/api/sessions?limit=1000', r.url), { headers: { cookie } });
      assert.equal(res.status, 200);
      const listed = ((await res.json()) as { sessions: SessionRow[] }).sessions;
      assert.deepEqual(new Set(listed.map((s) => s.instanceId)), new Set(byInstance.keys()), `the console of ${r.instanceId}`);
      // And a session another replica recorded verifies here, against the keys this replica trusts.
      for (const [instance, id] of byInstance) {
        if (instance === r.instanceId) continue;
        const v = await fetch(new URL(`/api/sessions/${id}/verify`, r.url), { headers: cluster.apiAuth });
        assert.equal(((await v.json()) as { status: string }).status, 'verified', `${instance}'s session ${id} on ${r.instanceId}`);
      }
    }
  });

  it('serves legacy (v1 SDK) sessions through HAProxy: every request reaches the replica that owns the session', async () => {
    for (let i = 0; i < 2; i++) {
      const landed: Landing[] = [];
      const transport = new StreamableHTTPClientTransport(cluster.mcp(connection), { requestInit: { headers: cluster.auth }, fetch: noting(landed) });
      const { client } = await connectClient(transport, `legacy-${i}`);
      try {
        for (let n = 0; n < 4; n++) {
          const result = await client.callTool({ name: 'echo', arguments: { message: `legacy ${i} call ${n}` } });
          assert.deepEqual(result.content, [{ type: 'text', text: `Echo: legacy ${i} call ${n}` }]);
        }
        const { resources } = await client.listResources();
        assert.equal((await client.readResource({ uri: resources[0]!.uri })).contents[0]!.uri, resources[0]!.uri);
        const progress: number[] = [];
        await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, {
          onprogress: (p) => progress.push(p.progress),
        });
        assert.deepEqual(progress, [1, 2, 3]);
        const owner = await ownerOf(transport.sessionId!);
        const posts = landed.filter((l) => l.method === 'POST');
        assert.ok(
          posts.some((l) => l.servedBy !== owner),
          `some of the session's requests landed on a replica other than its owner ${owner}: ${posts.map((l) => l.servedBy)}`,
        );
      } finally {
        await closeClient(client, transport);
      }
    }
  });

  it("streams a legacy session's GET stream, and resumes a dropped stream (Last-Event-ID), through a replica that does not own it", async () => {
    // The v1 SDK opens the session's GET stream after initializing; round-robin sends it to a replica that is not the
    // owner unless the initialize and the initialized notification wrapped around: a new session then.
    let streamed = false;
    for (let attempt = 0; attempt < 3 && !streamed; attempt++) {
      const landed: Landing[] = [];
      const transport = new StreamableHTTPClientTransport(cluster.mcp(connection), { requestInit: { headers: cluster.auth }, fetch: noting(landed) });
      const { client } = await connectClient(transport, `streamed-${attempt}`);
      const logs: unknown[] = [];
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params.data));
      try {
        await waitFor(() => landed.some((l) => l.method === 'GET'), 'the SDK to open its GET stream');
        const owner = await ownerOf(transport.sessionId!);
        if (landed.find((l) => l.method === 'GET')!.servedBy === owner) continue;
        // server-everything then sends a log message every 5 s, unrelated to any request: on the GET stream.
        await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
        await waitFor(() => logs.length >= 2, 'server log messages on the GET stream through the hop');
        streamed = true;
      } finally {
        await closeClient(client, transport);
      }
    }
    assert.ok(streamed, "no session's GET stream landed on a replica other than its owner in three sessions");

    // Resumption, raw (a session without the SDK's roots, so the first event is the call's own progress): a long
    // operation's POST stream dropped after its first event, then resumed with Last-Event-ID.
    const sessionId = await rawInitialize(cluster.mcp(connection), cluster.auth);
    const owner = await ownerOf(sessionId);
    const headers = { ...mcpHeaders, ...cluster.auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    let resumedElsewhere = false;
    for (let attempt = 0; attempt < 4 && !resumedElsewhere; attempt++) {
      const { resumed, replay } = await dropAndResume(cluster.mcp(connection), headers, `long-${attempt}`);
      assert.deepEqual(replay, ['progress:2', 'progress:3', `response:long-${attempt}`]);
      resumedElsewhere = resumed.headers.get(servedByHeader) !== owner;
    }
    assert.ok(resumedElsewhere, `no resumption landed on a replica other than the owner ${owner} in four`);
    await fetch(cluster.mcp(connection), { method: 'DELETE', headers });
  });

  it('answers an MRTR elicitation whose retry lands on another replica than the round it answers', async () => {
    const elicited: unknown[] = [];
    const landed: Landing[] = [];
    const client = await connectV2(cluster.mcp(connection), cluster.auth, { pin: '2026-07-28' }, elicited, { fetch: noting(landed) });
    try {
      // Round-robin: the call and its retry (carrying requestState) go to different replicas.
      const result = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
      assert.equal(elicited.length, 1, 'the client was asked once');
      assert.match(JSON.stringify(result.content), /Ada Lovelace/);
      const calls = landed.filter((l) => l.body.includes('trigger-elicitation-request'));
      const retry = calls.find((l) => l.body.includes('requestState'));
      assert.ok(retry, `the retry carried requestState: ${calls.map((l) => l.body)}`);
      assert.notEqual(retry.servedBy, calls[0]!.servedBy, 'the retry was served by another replica than the round it answers');
    } finally {
      await client.close();
    }
  });

  it('takes a replica killed with -9 out of rotation, and back in once it restarts', async () => {
    await cluster.kill(1);
    // With one replica gone, modern requests keep being served by the two left.
    const client = await connectV2(cluster.mcp(connection), cluster.auth, { pin: '2026-07-28' });
    try {
      for (let i = 0; i < 4; i++) {
        const result = await client.callTool({ name: 'echo', arguments: { message: `without replica-2, ${i}` } });
        assert.deepEqual(result.content, [{ type: 'text', text: `Echo: without replica-2, ${i}` }]);
      }
      await cluster.restart(1);
      const before = await received(cluster.replicas[1]!);
      for (let i = 0; i < 6; i++) await client.callTool({ name: 'echo', arguments: { message: `with replica-2 again, ${i}` } });
      assert.ok((await received(cluster.replicas[1]!)) > before, 'the restarted replica serves again');
    } finally {
      await client.close();
    }
  });

  it('releases a call held for review on one replica when a lead approves it through another', async (t) => {
    const lead = await cluster.token('lead');
    const client = await connectV2(cluster.mcp(connection), cluster.auth, { pin: '2026-07-28' });
    try {
      let answeredAt = 0;
      const call = client.callTool({ name: 'echo', arguments: { message: 'hold for a lead' } }, { timeout: 120_000 }).then((r) => {
        answeredAt = performance.now();
        return r;
      });
      call.catch(() => {});
      let id = '';
      await waitFor(async () => {
        const r = await callApi<{ reviews?: Array<{ id: string; params: { arguments?: { message?: string } } }> }>(
          cluster.url,
          lead,
          'GET',
          '/api/reviews?status=pending',
        );
        id = r.body.reviews?.find((v) => v.params.arguments?.message === 'hold for a lead')?.id ?? '';
        return id !== '';
      }, 'the call to wait for review');
      const holder = (await store.getReview(id))!.instanceId;
      const approver = otherThan(holder);
      const approvedAt = performance.now();
      const approved = await callApi(approver.url, lead, 'POST', `/api/reviews/${id}/approve`, { note: 'fine' });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      const result = await call;
      assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: hold for a lead' }]);
      t.diagnostic(
        `held on ${holder}, approved through ${approver.instanceId}: the client had its answer ${Math.round(answeredAt - approvedAt)} ms after the approval was sent (not asserted)`,
      );
    } finally {
      await client.close();
    }
  });

  it('ends a legacy session on the replica that owns it when its grant is revoked through another', async () => {
    const [outsider, lead] = [await cluster.token('outsider'), await cluster.token('lead')];
    const asked = await callApi<{ request?: { id: string } }>(cluster.url, outsider, 'POST', '/api/access', {
      connection: granted,
      duration: '30m',
      reason: 'incident',
    });
    assert.equal(asked.status, 201, JSON.stringify(asked.body));
    const id = asked.body.request!.id;
    const approved = await callApi(cluster.url, lead, 'POST', `/api/access/${id}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    // Admitted on whichever replica the initialize lands on, once that replica knows of the grant.
    let session: { client: Awaited<ReturnType<typeof connectClient>>['client']; transport: StreamableHTTPClientTransport } | undefined;
    await waitFor(async () => {
      const transport = new StreamableHTTPClientTransport(cluster.mcp(granted), { requestInit: { headers: { authorization: `Bearer ${outsider}` } } });
      try {
        session = { client: (await connectClient(transport, 'granted')).client, transport };
        return true;
      } catch {
        await transport.close().catch(() => {});
        return false;
      }
    }, 'the grant to admit the outsider');
    const { client, transport } = session!;
    try {
      const result = await client.callTool({ name: 'echo', arguments: { message: 'while granted' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: while granted' }]);
      const sessionId = transport.sessionId!;
      const owner = (await store.getSession(sessionId))!.instanceId;
      const revoker = otherThan(owner);
      const revoked = await callApi(revoker.url, lead, 'POST', `/api/access/${id}/revoke`, { note: 'over' });
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      await waitFor(
        async () => (await store.getSession(sessionId))?.status !== 'open',
        `the session on ${owner} to end (revoked through ${revoker.instanceId})`,
      );
      await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'after the revocation' } }));
    } finally {
      await client.close();
    }
  });

  it("shows a live legacy session and its exchanges in every replica's console, whichever replica serves it", async () => {
    type Live = { type: string; id?: string; session?: { id: string }; events?: Array<{ payload?: string; rpc?: { method?: string } }> };
    const cookie = await consoleCookie(cluster);
    const controller = new AbortController();
    const transport = new StreamableHTTPClientTransport(cluster.mcp(connection), { requestInit: { headers: cluster.auth } });
    try {
      const streams = (await Promise.all(cluster.replicas.map((r) => readLiveEvents(r, cookie, controller.signal)))) as Live[][];
      const { client } = await connectClient(transport, 'watched');
      try {
        await client.callTool({ name: 'echo', arguments: { message: 'watched live' } });
        const sessionId = transport.sessionId!;
        const owner = (await store.getSession(sessionId))!.instanceId;
        for (const [i, seen] of streams.entries()) {
          const where = `the console of ${cluster.replicas[i]!.instanceId} (the session is on ${owner})`;
          await waitFor(() => seen.some((e) => e.type === 'session-opened' && e.session?.id === sessionId), `the session in ${where}`);
          await waitFor(
            () =>
              seen.some(
                (e) =>
                  e.type === 'session-events' &&
                  e.id === sessionId &&
                  e.events!.some((l) => l.rpc?.method === 'tools/call' && l.payload?.includes('watched live')),
              ),
            `its call in ${where}`,
          );
        }
      } finally {
        await closeClient(client, transport);
      }
    } finally {
      controller.abort();
    }
  });
});
