import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { type IncomingMessage, request as httpRequest, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { TestGateway } from '../helpers/gateway.js';
import { HopPair } from '../helpers/hop-pair.js';
import { connectV2, rawRequest } from '../helpers/modern.js';
import { openRound } from '../helpers/mrtr-round.js';
import { rawInitialize, type SseEvent, sseEvents } from '../helpers/raw-http.js';
import type { RoundRobin } from '../helpers/round-robin.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Two replicas of one gateway on one PostgreSQL database, with no stickiness: a legacy session's requests (POST, its
 * GET stream, a resumption, DELETE) and the retry of an MRTR round land on either and are served by the owner over
 * the internal hop. Who may hop (signatures, identities, forged ids): hop-auth.test.ts; an owner that cannot be
 * reached or is gone: hop-failures.test.ts.
 */

describe('replicas: the internal hop', () => {
  const pair = new HopPair();
  const { peers, ownerAndOther, headersFor, call, echoOn, endSession, inSession } = pair;
  let a: TestGateway;
  let b: TestGateway;
  let front: RoundRobin;
  let ada: Record<string, string>;
  before(async () => {
    await pair.start();
    ({ a, b, front, ada } = pair);
  });
  after(() => pair.stop());

  /** `count` echo calls by `client` through the front, each answered; each replica got at least half as many requests (the front alternates). */
  async function echoesThroughFront(client: V1Client, prefix: string, count: number, what: string): Promise<void> {
    const hitsBefore = [...front.hits];
    for (let i = 0; i < count; i++) {
      const result = await client.callTool({ name: 'echo', arguments: { message: `${prefix}${i}` } });
      assert.deepEqual(result.content, [{ type: 'text', text: `Echo: ${prefix}${i}` }]);
    }
    assert.ok(
      front.hits.every((h, i) => h - hitsBefore[i]! >= count / 2),
      what,
    );
  }

  it('serves a v1 SDK client whose requests alternate between the replicas, in one session on one of them', async () => {
    const transport = new StreamableHTTPClientTransport(new URL('/mcp/everything', front.url), { requestInit: { headers: ada } });
    const client = new V1Client({ name: 'v1', version: '1.0.0' });
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    const [owner, other] = ownerAndOther(sessionId);
    assert.ok(owner.gateway.sessions.get(sessionId), 'one replica holds the session');
    assert.equal(other.gateway.sessions.get(sessionId), undefined, 'the other does not');
    await echoesThroughFront(client, 'm', 6, 'both replicas received calls');
    // Every call is recorded in the owner's session, under the owner's instance.
    const row = await owner.gateway.recorder!.store.getSession(sessionId);
    assert.equal(row?.instanceId, owner.gateway.replicas.instance);
    // DELETE through whichever replica the front picks ends the session on its owner.
    await transport.terminateSession();
    await client.close();
    await waitFor(() => owner.gateway.sessions.get(sessionId) === undefined, 'the session to end on its owner');
  });

  it('serves a 2024-11-05 SSE session whose message POSTs alternate between the replicas (its stream stays where it opened)', async () => {
    const transport = new SSEClientTransport(new URL('/sse/everything', front.url), { requestInit: { headers: ada } });
    const client = new V1Client({ name: 'v1-sse', version: '1.0.0' });
    await client.connect(transport);
    await echoesThroughFront(client, 's', 4, 'both replicas received message POSTs');
    await client.close();
  });

  it("streams the session's GET stream through the replica that does not own it, notifications included", () =>
    inSession(async (sessionId, _owner, other) => {
      const controller = new AbortController();
      const get = await fetch(other.mcp('everything'), {
        headers: { ...ada, accept: 'text/event-stream', 'mcp-session-id': sessionId },
        signal: controller.signal,
      });
      assert.equal(get.status, 200);
      assert.equal(get.headers.get('content-type'), 'text/event-stream');
      const toggled = await fetch(other.mcp('everything'), { method: 'POST', headers: headersFor(sessionId), body: call('t', 'toggle-simulated-logging') });
      assert.equal(toggled.status, 200);
      await toggled.text();
      let logged: Record<string, unknown> | undefined;
      for await (const e of sseEvents(get.body!)) {
        const m = JSON.parse(e.data) as Record<string, unknown>;
        if (m.method === 'notifications/message') {
          logged = m;
          break;
        }
      }
      controller.abort();
      assert.ok(logged, 'a server notification reached the GET stream through the hop');
    }));

  it('sends nothing to the owner for a client that left while its request waited on the replica it came to (no stream left open there)', () =>
    inSession(async (sessionId, owner, other) => {
      const ownerId = owner.gateway.replicas.instance;
      // The request waits on a read of the membership (its owner missing from the last one), as on authenticating it.
      let release = () => {};
      peers.readHeld = new Promise<void>((resolve) => (release = resolve));
      peers.unread.add(ownerId);
      const reads = peers.rereads;
      // Its response on the replica it came to, to see the client's leaving there.
      let entered: ServerResponse | undefined;
      const see = (message: unknown) => {
        const { request, response } = message as { request: IncomingMessage; response: ServerResponse };
        if (request.url === '/mcp/everything' && request.headers['mcp-session-id'] === sessionId) entered ??= response;
      };
      diagnostics.subscribe('http.server.request.start', see);
      try {
        const get = httpRequest(other.mcp('everything'), { headers: { ...ada, accept: 'text/event-stream', 'mcp-session-id': sessionId } });
        get.on('error', () => {});
        get.end();
        await waitFor(() => peers.rereads > reads && entered !== undefined, 'the request to wait on the membership');
        get.destroy();
        await waitFor(() => entered!.destroyed, 'the replica to see its client leave');
      } finally {
        diagnostics.unsubscribe('http.server.request.start', see);
        release();
        peers.readHeld = undefined;
        peers.unread.delete(ownerId);
      }
      await waitFor(() => other.log.lines.some((l) => /client left before its request was forwarded/.test(String(l.msg))), 'the request to be dropped');
      // Had the hop gone out, the owner would hold the session's one GET stream for no one: a plain GET would get 409.
      const controller = new AbortController();
      const plain = await fetch(owner.mcp('everything'), {
        headers: { ...ada, accept: 'text/event-stream', 'mcp-session-id': sessionId },
        signal: controller.signal,
      });
      controller.abort();
      assert.equal(plain.status, 200);
    }));

  it('resumes a dropped POST stream with Last-Event-ID through the replica that does not own the session', () =>
    inSession(async (sessionId, _owner, other) => {
      const endpoint = other.mcp('everything');
      const aborter = new AbortController();
      const long = call('A', 'trigger-long-running-operation', { duration: 1.2, steps: 3 }, { progressToken: 'token-a' });
      const posted = await fetch(endpoint, { method: 'POST', headers: headersFor(sessionId), body: long, signal: aborter.signal });
      const iterator = sseEvents(posted.body!);
      const first = (await iterator.next()).value as SseEvent;
      assert.equal(JSON.parse(first.data).params.progressToken, 'token-a');
      aborter.abort();
      // The owner sees the hop's stream end as the client's: the rest is kept for the resumption.
      const resumed = await fetch(endpoint, { headers: { ...ada, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'last-event-id': first.id! } });
      assert.equal(resumed.status, 200);
      const replay: Array<{ method?: string; id?: unknown; params: { progress: number } }> = [];
      for await (const e of sseEvents(resumed.body!)) replay.push(JSON.parse(e.data));
      assert.deepEqual(
        replay.map((m) => (m.method ? `progress:${m.params.progress}` : `response:${m.id}`)),
        ['progress:2', 'progress:3', 'response:A'],
      );
    }));

  it('lets a call forwarded by a replica that drains finish before it stops; a GET stream through it ends with the drain', () =>
    inSession(async (sessionId, owner) => {
      // The replica the client came to: a long drain timeout, which a stream through it must not hold.
      const entry = await pair.replica({ shutdown: { drainTimeout: '90s' } });
      try {
        const stream = await fetch(entry.mcp('everything'), { headers: { ...ada, accept: 'text/event-stream', 'mcp-session-id': sessionId } });
        assert.equal(stream.status, 200);
        const body = call('long', 'trigger-long-running-operation', { duration: 3, steps: 3 });
        const answer = fetch(entry.mcp('everything'), { method: 'POST', headers: headersFor(sessionId), body }).then(async (r) => ({
          status: r.status,
          text: await r.text(),
        }));
        await waitFor(() => (owner.gateway.sessions.get(sessionId)?.pendingRequests ?? 0) > 0, 'the call to run on the owner');
        const started = Date.now();
        const stopped = entry.gateway.stop();
        const res = await answer;
        assert.equal(res.status, 200, res.text);
        assert.match(res.text, /Long running operation completed/);
        await stream.text();
        await stopped;
        assert.ok(Date.now() - started < 60_000, 'the stream did not hold the drain to its timeout');
      } finally {
        await entry.stop();
      }
    }));

  it('waits, in the drain, for a call it took before the drain began and had not yet forwarded (its owner read again, its body still coming)', () =>
    inSession(async (sessionId, owner) => {
      const ownerId = owner.gateway.replicas.instance;
      const entry = await pair.replica({ shutdown: { drainTimeout: '90s' } });
      // The call waits on a read of the membership (its owner missing from the last one), then on the rest of its body.
      let release = () => {};
      peers.readHeld = new Promise<void>((resolve) => (release = resolve));
      peers.unread.add(ownerId);
      const reads = peers.rereads;
      try {
        const body = Buffer.from(call('slow', 'trigger-long-running-operation', { duration: 3, steps: 3 }));
        const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
          const post = httpRequest(entry.mcp('everything'), { method: 'POST', headers: { ...headersFor(sessionId), 'content-length': body.length } }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode!, text }));
            res.on('error', reject);
          });
          post.on('error', reject);
          post.write(body.subarray(0, 10));
          void waitFor(() => peers.rereads > reads, 'the call to wait on the membership').then(() => {
            // The drain begins while the call is on its way: with nothing sent yet, it must wait for it all the same.
            const stopped = entry.gateway.stop();
            release();
            post.end(body.subarray(10));
            void stopped.catch(reject);
          }, reject);
        });
        const res = await answer;
        assert.equal(res.status, 200, res.text);
        assert.match(res.text, /Long running operation completed/);
      } finally {
        release();
        peers.readHeld = undefined;
        peers.unread.delete(ownerId);
        await entry.stop();
      }
    }));

  it('ends a session by a DELETE sent to the replica that does not own it; the id is then 404 on both', async () => {
    const sessionId = await rawInitialize(b.mcp('everything'), ada);
    const [owner, other] = ownerAndOther(sessionId);
    const deleted = await endSession(other, sessionId);
    assert.equal(deleted.status, 200);
    assert.equal(owner.gateway.sessions.get(sessionId), undefined);
    for (const gw of [a, b]) assert.equal((await echoOn(gw, headersFor(sessionId))).status, 404);
  });

  it('forwards the retry of an MRTR round of a 2026-07-28 client to the replica that holds the round', async () => {
    const elicited: unknown[] = [];
    const client = await connectV2(new URL('/mcp/everything', front.url), ada, { pin: '2026-07-28' }, elicited);
    try {
      // With two replicas and strict alternation, a call and its retry land on different replicas either way.
      const hitsBefore = [...front.hits];
      const result = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
      assert.equal(elicited.length, 1, 'the client was asked once');
      assert.match(JSON.stringify(result.content), /Ada Lovelace/);
      assert.ok(
        front.hits.every((h, i) => h > hitsBefore[i]!),
        'the call and its retry went to different replicas',
      );
    } finally {
      await client.close();
    }
  });

  it('forwards a retry whose request line the gateway normalizes (the signature covers the target the owner sees)', async () => {
    const { headers, retry } = await openRound(a, ada);
    // A raw request line the URL parser rewrites ('"' in the query is percent-encoded): sent as is, not via a URL.
    const { port } = new URL(b.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/mcp/everything?x="', headers: Object.fromEntries(headers) }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(retry);
    });
    assert.equal(status, 200);
  });

  it('answers a retry whose round is held by a replica that is gone as an unusable requestState', async () => {
    // The call goes to a, which opens the round; the retry goes to b while a is out of the membership.
    const { headers, retry } = await openRound(a, ada);
    const retried = await peers.movedWhile(a.gateway.replicas.instance, undefined, () => rawRequest(b.mcp('everything'), 'POST', headers, retry));
    assert.equal(retried.status, 400, retried.body);
    assert.match(retried.json?.error?.message ?? '', /already been answered or has expired/);
  });
});
