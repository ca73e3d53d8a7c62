import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { PeerDirectory } from '../../src/cluster/peer-directory.js';
import { SessionIds } from '../../src/cluster/session-ids.js';
import { TokenKeys } from '../../src/cluster/token-keys.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startTestIdp, type TestIdp } from '../helpers/idp.js';
import { connectV2, modernBody, modernHeaders, rawRequest } from '../helpers/modern.js';
import { mcpHeaders, rawInitialize, type SseEvent, sseEvents } from '../helpers/raw-http.js';
import { ResettingProxy } from '../helpers/resetting-proxy.js';
import { type RoundRobin, startRoundRobin } from '../helpers/round-robin.js';
import { postgresTestStore, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Two replicas of one gateway on one PostgreSQL database, with no stickiness: a legacy session's requests (POST, its
 * GET stream, a resumption, DELETE) and the retry of an MRTR round land on either and are served by the owner over
 * the internal hop; the hop refuses anything unsigned, and a forged session id is unknown everywhere.
 */

const secretVar = 'PORTCULLIS_TEST_CLUSTER_SECRET';
process.env[secretVar] = 'cluster-secret-for-tests-0123456789abcdef';

/** The test's membership: instance id to base URL, filled as the replicas start (helper C's table does this for real). */
class TestPeers implements PeerDirectory {
  readonly addresses = new Map<string, string>();
  addressOf(instanceId: string): string | undefined {
    return this.addresses.get(instanceId);
  }
  /** Runs `body` with `instanceId` at another address (undefined: gone from the membership), then puts it back. */
  async movedWhile<T>(instanceId: string, address: string | undefined, body: () => Promise<T>): Promise<T> {
    const was = this.addresses.get(instanceId)!;
    if (address === undefined) this.addresses.delete(instanceId);
    else this.addresses.set(instanceId, address);
    try {
      return await body();
    } finally {
      this.addresses.set(instanceId, was);
    }
  }
}

describe('replicas: the internal hop', () => {
  let idp: TestIdp;
  let store: TestStore;
  const peers = new TestPeers();
  let a: TestGateway;
  let b: TestGateway;
  let front: RoundRobin;
  let ada: Record<string, string>;
  let bob: Record<string, string>;

  const replica = () =>
    startTestGateway(
      {
        store: store.url,
        identity: { issuers: [{ issuer: idp.issuer, audiences: ['portcullis'] }] },
        cluster: { secret: `\${env:${secretVar}}` },
        // Tool pins are off: which replica sees a tool first is not what this suite is about.
        connections: { everything: { stdio: everythingStdio(), tools: { pin: false } } },
      },
      { peers },
    );

  before(async () => {
    idp = await startTestIdp();
    store = postgresTestStore();
    a = await replica();
    b = await replica();
    for (const gw of [a, b]) peers.addresses.set(gw.gateway.replicas.instance, gw.url);
    front = await startRoundRobin([a.url, b.url]);
    ada = { authorization: `Bearer ${await idp.sign({ sub: 'ada' })}` };
    bob = { authorization: `Bearer ${await idp.sign({ sub: 'bob', groups: ['eng'] })}` };
  });
  after(async () => {
    await front?.close();
    await a?.stop();
    await b?.stop();
    await store?.destroy();
    await idp?.stop();
  });

  /** The replica that holds a session, and the other one. */
  const ownerAndOther = (sessionId: string): [TestGateway, TestGateway] => (a.gateway.sessions.get(sessionId) ? [a, b] : [b, a]);
  const headersFor = (sessionId: string, auth = ada) => ({ ...mcpHeaders, ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' });
  const call = (id: string, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) =>
    JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } });
  /** A call of the echo tool in a legacy session, sent to `gw` with these headers. */
  const echoOn = (gw: TestGateway, headers: Record<string, string>) =>
    fetch(gw.mcp('everything'), { method: 'POST', headers, body: call('x', 'echo', { message: 'hi' }) });
  const endSession = (gw: TestGateway, sessionId: string) => fetch(gw.mcp('everything'), { method: 'DELETE', headers: headersFor(sessionId) });
  /** A session on `a`, ended once `body` is done with it (the owner is the replica it names). */
  const inSession = async (body: (sessionId: string, owner: TestGateway, other: TestGateway) => Promise<void>) => {
    const sessionId = await rawInitialize(a.mcp('everything'), ada);
    const [owner, other] = ownerAndOther(sessionId);
    try {
      await body(sessionId, owner, other);
    } finally {
      await endSession(owner, sessionId);
    }
  };

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

  it('ends a session by a DELETE sent to the replica that does not own it; the id is then 404 on both', async () => {
    const sessionId = await rawInitialize(b.mcp('everything'), ada);
    const [owner, other] = ownerAndOther(sessionId);
    const deleted = await endSession(other, sessionId);
    assert.equal(deleted.status, 200);
    assert.equal(owner.gateway.sessions.get(sessionId), undefined);
    for (const gw of [a, b]) assert.equal((await echoOn(gw, headersFor(sessionId))).status, 404);
  });

  it('answers 404 for a forged or tampered session id, on every replica', () =>
    inSession(async (sessionId) => {
      const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      const forged = [flip(sessionId, 10), flip(sessionId, sessionId.length - 3), 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'x'];
      for (const id of forged) {
        for (const gw of [a, b]) {
          const res = await echoOn(gw, headersFor(id));
          assert.equal(res.status, 404, `forged id ${id} on ${gw.url}`);
          assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32001);
        }
      }
    }));

  /**
   * The hop `other` sends the owner for an echo call in `sessionId` (with `extra` client headers), caught on its way by
   * a listener standing in at the owner's address: its headers and body as sent, never delivered to the owner.
   */
  async function catchHop(sessionId: string, owner: TestGateway, other: TestGateway, extra: Record<string, string> = {}) {
    const seen: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
    const capture = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => capture.listen(0, '127.0.0.1', resolve));
    const captureUrl = `http://127.0.0.1:${(capture.address() as AddressInfo).port}`;
    try {
      const res = await peers.movedWhile(owner.gateway.replicas.instance, captureUrl, () => echoOn(other, { ...headersFor(sessionId), ...extra }));
      assert.equal(res.status, 200);
    } finally {
      capture.close();
    }
    assert.equal(seen.length, 1);
    return seen[0]!;
  }
  /** A caught hop's headers as a client can send them again (the connection's own left to fetch). */
  const resendable = (headers: Record<string, string | string[] | undefined>) =>
    Object.fromEntries(Object.entries(headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k))) as Record<string, string>;

  it('refuses a hop without the right signature, before anything is recorded, whatever identity it claims', () =>
    inSession(async (sessionId, owner) => {
      const sessionsBefore = (await owner.gateway.recorder!.store.listSessions({ limit: 1000 })).length;
      const claimed = Buffer.from(JSON.stringify({ identity: { subject: 'ada', issuer: idp.issuer, groups: [] }, access: 'x' })).toString('base64url');
      const hopUrl = new URL('/_portcullis/hop/mcp/everything', owner.url);
      const attempts: Array<Record<string, string>> = [
        {},
        { 'portcullis-hop-caller': claimed },
        { 'portcullis-hop-caller': claimed, 'portcullis-hop': `t=${Date.now()};sig=${'A'.repeat(43)}` },
        { 'portcullis-hop-caller': claimed, 'portcullis-hop': process.env[secretVar]! },
      ];
      for (const extra of attempts) {
        const res = await fetch(hopUrl, { method: 'POST', headers: { ...headersFor(sessionId, {}), ...extra }, body: call('x', 'echo', { message: 'hi' }) });
        assert.equal(res.status, 401);
      }
      assert.equal((await owner.gateway.recorder!.store.listSessions({ limit: 1000 })).length, sessionsBefore);
    }));

  it('binds a hop signature to its request line: a valid hop sent to another path or query is refused, and taken unchanged', () =>
    inSession(async (sessionId, owner, other) => {
      const { headers, body } = await catchHop(sessionId, owner, other);
      const send = (path: string) => fetch(new URL(path, owner.url), { method: 'POST', headers: resendable(headers), body });
      // Each changed line still reaches the signature check (the connection is looked up only after it), which refuses it.
      for (const changed of ['/_portcullis/hop/mcp/everything?x=1', '/_portcullis/hop/mcp/everything/', '/_portcullis/hop/mcp/everything2']) {
        const res = await send(changed);
        assert.equal(res.status, 401, changed);
        assert.equal(res.headers.get('portcullis-hop-refused'), '1', changed);
      }
      // The very same hop on the line it was signed for is taken: the refusals above were the request line's doing.
      const taken = await send('/_portcullis/hop/mcp/everything');
      assert.equal(taken.status, 200);
      assert.match(await taken.text(), /Echo: hi/);
    }));

  it("never trusts an identity header from a client: bob claiming ada's identity cannot use her session", () =>
    inSession(async (sessionId) => {
      const claimed = Buffer.from(JSON.stringify({ identity: { subject: 'ada', issuer: idp.issuer, groups: [] }, access: 'x' })).toString('base64url');
      for (const gw of [a, b]) {
        const res = await echoOn(gw, {
          ...headersFor(sessionId, bob),
          'portcullis-hop-caller': claimed,
          'portcullis-hop': `t=${Date.now()};sig=${'A'.repeat(43)}`,
        });
        assert.equal(res.status, 404, 'another principal presenting the session id is told it does not exist');
        const anonymous = await echoOn(gw, { ...headersFor(sessionId, {}), 'portcullis-hop-caller': claimed });
        assert.equal(anonymous.status, 401);
      }
    }));

  it("sends the owner the caller's verified identity, never the client's token or cookies", () =>
    inSession(async (sessionId, owner, other) => {
      const { headers, body } = await catchHop(sessionId, owner, other, { cookie: 'portcullis_console=secret-cookie' });
      assert.equal(headers.authorization, undefined);
      assert.equal(headers.cookie, undefined);
      assert.equal(headers['mcp-session-id'], sessionId);
      assert.match(String(headers['portcullis-hop']), /^t=\d+;n=[\w-]+;sig=/);
      const carried = JSON.parse(Buffer.from(String(headers['portcullis-hop-caller']), 'base64url').toString()) as {
        identity: { subject: string; issuer: string };
      };
      assert.deepEqual([carried.identity.subject, carried.identity.issuer], ['ada', idp.issuer]);
      // Whoever read that hop cannot use it again: not at another replica (it names its owner), and only once at its owner.
      const replay = (gw: TestGateway) => fetch(new URL('/_portcullis/hop/mcp/everything', gw.url), { method: 'POST', headers: resendable(headers), body });
      assert.equal((await replay(other)).status, 401, 'a hop signed for the owner is refused by another replica');
      assert.equal((await replay(owner)).status, 200, 'the hop the owner never got is taken once');
      assert.equal((await replay(owner)).status, 401, 'a replayed hop is refused');
    }));

  /** A call through `other` for a session whose owner is at `address` in the membership (undefined: gone from it). */
  const echoWithOwnerAt = (sessionId: string, owner: TestGateway, other: TestGateway, address: string | undefined) =>
    peers.movedWhile(owner.gateway.replicas.instance, address, async () => {
      const res = await echoOn(other, headersFor(sessionId));
      return { status: res.status, text: await res.text() };
    });

  it('answers 404 for a session whose owner is gone from the membership, so that the client initializes anew', () =>
    inSession(async (sessionId, owner, other) => {
      const res = await echoWithOwnerAt(sessionId, owner, other, undefined);
      assert.equal(res.status, 404);
      assert.match(res.text, /replica that held it is gone/);
    }));

  it("answers a session as gone when the owner's address now leads to another replica (which refuses a hop not signed for it)", () =>
    inSession(async (sessionId, owner, other) => {
      // The owner's old address reused by the other replica (a pod restarted elsewhere): the hop comes back to it.
      const res = await echoWithOwnerAt(sessionId, owner, other, other.url);
      assert.equal(res.status, 404, 'not a 401 the client would take for its own token');
      assert.match(res.text, /replica that held it is gone/);
    }));

  it('sends no hop to an owner address that is not http(s): the session is answered as gone', () =>
    inSession(async (sessionId, owner, other) => {
      for (const written of ['file:///etc/passwd', 'ftp://127.0.0.1/', 'not a url']) {
        const res = await echoWithOwnerAt(sessionId, owner, other, written);
        assert.equal(res.status, 404, written);
        assert.match(res.text, /replica that held it is gone/);
      }
    }));

  /** A resetting proxy in front of `owner`, standing in at its address in the membership while `body` runs. */
  async function ownerBehindResets<T>(owner: TestGateway, body: (proxy: ResettingProxy) => Promise<T>): Promise<T> {
    const proxy = new ResettingProxy(Number(new URL(owner.url).port));
    await proxy.start();
    try {
      return await peers.movedWhile(owner.gateway.replicas.instance, proxy.url, () => body(proxy));
    } finally {
      await proxy.stop();
    }
  }
  const echoText = async (gw: TestGateway, sessionId: string, message: string) => {
    const res = await fetch(gw.mcp('everything'), { method: 'POST', headers: headersFor(sessionId), body: call('e', 'echo', { message }) });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };

  it('sends a hop again, on a new connection, when the kept-alive one it went out on was closed by the owner', () =>
    inSession(async (sessionId, owner, other) => {
      await ownerBehindResets(owner, async (proxy) => {
        proxy.mode = 'reused';
        const first = await echoText(other, sessionId, 'first');
        assert.equal(first.status, 200, first.text);
        assert.equal(proxy.resets, 0);
        // The second hop goes out on the kept-alive connection, which the owner's side resets when it arrives.
        const second = await echoText(other, sessionId, 'second');
        assert.equal(second.status, 200, second.text);
        assert.match(second.text, /Echo: second/);
        assert.deepEqual([proxy.resets, proxy.accepted], [1, 2], 'reset once on the reused connection, then sent on a new one');
      });
    }));

  it('answers 503 with Retry-After, not 404, when the owner is alive in the membership but its connections are reset; the session stands', () =>
    inSession(async (sessionId, owner, other) => {
      await ownerBehindResets(owner, async (proxy) => {
        // A kept-alive connection first, so that the failing hop is one that may be retried: it is, once, and fails again.
        proxy.mode = 'reused';
        assert.equal((await echoText(other, sessionId, 'warm')).status, 200);
        proxy.mode = 'every';
        const res = await echoText(other, sessionId, 'lost');
        assert.equal(res.status, 503, res.text);
        assert.equal(res.headers.get('retry-after'), '2');
        const answer = JSON.parse(res.text) as { jsonrpc: string; id: unknown; error: { code: number; message: string } };
        assert.deepEqual([answer.jsonrpc, answer.id, answer.error.code], ['2.0', 'e', -31000]);
        assert.match(answer.error.message, /could not be reached .*try again/);
        assert.equal(proxy.resets, 2, 'the reused connection and the new one');
        // A fresh connection reset is not retried: the owner is not taking connections.
        const fresh = await echoText(other, sessionId, 'lost again');
        assert.equal(fresh.status, 503);
        assert.equal(proxy.resets, 3);
      });
      // The owner reachable again: the same session answers, the client had no reason to give it up.
      const back = await echoText(other, sessionId, 'back');
      assert.equal(back.status, 200, back.text);
      assert.match(back.text, /Echo: back/);
    }));

  it('answers 502 without Retry-After when a resent hop is refused as already taken: the owner had the request, its answer was lost', () =>
    inSession(async (sessionId, owner, other) => {
      await ownerBehindResets(owner, async (proxy) => {
        proxy.mode = 'answer-lost';
        assert.equal((await echoText(other, sessionId, 'warm')).status, 200);
        // The second hop on the kept-alive connection reaches the owner, which begins to answer; the connection is
        // reset then. Sent again on a new connection, the same signature is refused: the owner took it already.
        const res = await echoText(other, sessionId, 'lost answer');
        assert.equal(res.status, 502, res.text);
        assert.equal(res.headers.get('retry-after'), null, 'no invitation to resend a request that may have run');
        const answer = JSON.parse(res.text) as { id: unknown; error: { message: string } };
        assert.equal(answer.id, 'e');
        assert.match(answer.error.message, /do not send it again before checking/);
        assert.deepEqual([proxy.resets, proxy.accepted], [1, 2], 'reset once, then refused on the new connection');
      });
    }));

  it('answers 404 when the connection to the owner fails and the membership no longer has it', () =>
    inSession(async (sessionId, owner, other) => {
      await ownerBehindResets(owner, async (proxy) => {
        proxy.mode = 'every';
        // The owner leaves the membership as its connection is reset (it died, and the others saw it).
        proxy.onReset = () => peers.addresses.delete(owner.gateway.replicas.instance);
        const res = await echoText(other, sessionId, 'gone');
        assert.equal(res.status, 404, res.text);
        assert.match(res.text, /replica that held it is gone/);
        assert.equal(proxy.resets, 1);
      });
    }));

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

  /**
   * An MRTR round opened on `a` by a 2026-07-28 call of the elicitation tool (listed first, as a client does: a tool
   * never listed is not yet pinned, so its call is held back): the call's headers, and the body of its retry, which
   * declines what the round asks.
   */
  async function openRound(): Promise<{ headers: Array<[string, string]>; retry: string }> {
    const headers: Array<[string, string]> = [...modernHeaders('tools/call', 'trigger-elicitation-request'), ['authorization', ada.authorization!]];
    const params = {
      name: 'trigger-elicitation-request',
      arguments: {},
      _meta: { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } },
    };
    const listed = await rawRequest(
      a.mcp('everything'),
      'POST',
      [...modernHeaders('tools/list'), ['authorization', ada.authorization!]],
      JSON.stringify(modernBody('tools/list', {}, 0)),
    );
    assert.equal(listed.status, 200, listed.body);
    const first = await rawRequest(a.mcp('everything'), 'POST', headers, JSON.stringify(modernBody('tools/call', params, 1)));
    const round = first.json?.result as { resultType: string; inputRequests: Record<string, unknown>; requestState: string };
    assert.equal(round?.resultType, 'input_required', first.body);
    const inputResponses = Object.fromEntries(Object.keys(round.inputRequests).map((k) => [k, { action: 'decline' }]));
    return { headers, retry: JSON.stringify(modernBody('tools/call', { ...params, inputResponses, requestState: round.requestState }, 2)) };
  }

  it('forwards a retry whose request line the gateway normalizes (the signature covers the target the owner sees)', async () => {
    const { headers, retry } = await openRound();
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
    const { headers, retry } = await openRound();
    const retried = await peers.movedWhile(a.gateway.replicas.instance, undefined, () => rawRequest(b.mcp('everything'), 'POST', headers, retry));
    assert.equal(retried.status, 400, retried.body);
    assert.match(retried.json?.error?.message ?? '', /already been answered or has expired/);
  });
});

describe('a single gateway, zero config', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ connections: { everything: { stdio: everythingStdio() } } });
  });
  after(() => gw?.stop());

  it('mints sealed session ids that name it, serves them, and refuses every hop (no cluster.secret)', async () => {
    const sessionId = await rawInitialize(gw.mcp('everything'), gw.auth);
    after(() => fetch(gw.mcp('everything'), { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': sessionId } }));
    assert.equal(gw.gateway.replicas.sessionIds.ownerOf(sessionId), gw.gateway.replicas.instance);
    assert.ok(await gw.gateway.recorder!.store.getSession(sessionId), 'the recording is under the same id');
    const res = await fetch(new URL('/_portcullis/hop/mcp/everything', gw.url), {
      method: 'POST',
      headers: { ...mcpHeaders, 'mcp-session-id': sessionId },
      body: '{}',
    });
    assert.equal(res.status, 403);
  });

  it('seals under cluster.tokenKeys when they are set, rather than the store key', async () => {
    process.env.PORTCULLIS_TEST_TOKEN_KEY = 'configured-token-key-0123456789abcdef';
    const configured = await startTestGateway({
      cluster: { tokenKeys: ['${env:PORTCULLIS_TEST_TOKEN_KEY}'] },
      connections: { everything: { stdio: everythingStdio() } },
    });
    try {
      const sessionId = await rawInitialize(configured.mcp('everything'), configured.auth);
      const outside = new SessionIds(new TokenKeys([process.env.PORTCULLIS_TEST_TOKEN_KEY]).ring('session id'), 'elsewhere');
      assert.equal(outside.ownerOf(sessionId), configured.gateway.replicas.instance);
      await fetch(configured.mcp('everything'), { method: 'DELETE', headers: { ...configured.auth, 'mcp-session-id': sessionId } });
    } finally {
      await configured.stop();
    }
  });
});

describe('replicas on one PostgreSQL store without cluster.secret', () => {
  let store: TestStore;
  let lone: TestGateway;
  const connections = { everything: { stdio: everythingStdio(), tools: { pin: false } } };
  before(async () => {
    store = postgresTestStore();
    lone = await startTestGateway({ store: store.url, connections });
  });
  after(async () => {
    await lone?.stop();
    await store?.destroy();
  });

  it('a lone replica starts without it; a second one is refused at start, naming the key and the fix', async () => {
    const serving = lone.gateway.replicas.instance;
    await assert.rejects(startTestGateway({ store: store.url, connections }), (err: Error) => {
      assert.match(err.message, /cluster\.secret is required when replicas share a PostgreSQL store/);
      assert.ok(err.message.includes(`'${serving}' serving on it now`), err.message);
      assert.match(err.message, /set cluster\.secret to the same \$\{file:…\} or \$\{env:…\} secret on every replica/);
      return true;
    });
    assert.equal(lone.gateway.cluster!.membership.state, 'serving', 'the one serving is undisturbed');
  });

  it('a running replica without it says once, as an error naming the key, that another joined', async () => {
    // One that has the secret is let in (it could reach the others); the one without finds out at its next read.
    const other = await startTestGateway({ store: store.url, cluster: { secret: `\${env:${secretVar}}` }, connections });
    try {
      const said = () => lone.log.lines.filter((l) => /cluster\.secret is not set, but other replicas now share this PostgreSQL store/.test(String(l.msg)));
      await waitFor(() => said().length > 0, 'the replica without the secret to say another joined');
      assert.equal(said()[0]!.level, 50, 'an error');
      assert.deepEqual(said()[0]!.replicas, [other.gateway.replicas.instance]);
      await lone.gateway.cluster!.membership.refresh();
      await lone.gateway.cluster!.membership.refresh();
      assert.equal(said().length, 1, 'once');
    } finally {
      await other.stop();
    }
  });
});
