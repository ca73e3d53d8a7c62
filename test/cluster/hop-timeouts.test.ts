import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { PeerDirectory } from '../../src/cluster/peer-directory.js';
import { SessionIds } from '../../src/cluster/session-ids.js';
import { TokenKeys } from '../../src/cluster/token-keys.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startTestIdp, type TestIdp } from '../helpers/idp.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';

/**
 * The hop's own failure modes, between two replicas that share the token key and cluster.secret (each on its own
 * SQLite store, the peer directory given): an owner that accepts the connection and never answers, or never
 * completes it, gets the client a 504 within cluster.hopHeadTimeout / cluster.hopConnectTimeout rather than a request
 * that hangs; a call that takes longer than the head timeout is still answered (the owner takes the hop at once); a
 * forwarded request whose headers were altered on the way is refused by the owner; an owner missing from the last read
 * of the membership is looked for again before its session is answered as gone.
 */

const secretVar = 'PORTCULLIS_TEST_HOP_TIMEOUTS_SECRET';
const tokenKeyVar = 'PORTCULLIS_TEST_HOP_TIMEOUTS_TOKEN_KEY';
process.env[secretVar] = 'cluster-secret-for-hop-timeouts-0123456789';
process.env[tokenKeyVar] = 'token-key-for-hop-timeouts-0123456789abcdef';

/** The peer directory: `unread` replicas are missing from its last read, and found only when it reads again (addressNow). */
class TestPeers implements PeerDirectory {
  readonly addresses = new Map<string, string>();
  readonly unread = new Set<string>();
  rereads = 0;
  addressOf(instanceId: string): string | undefined {
    return this.unread.has(instanceId) ? undefined : this.addresses.get(instanceId);
  }
  async addressNow(instanceId: string): Promise<string | undefined> {
    this.rereads++;
    this.unread.delete(instanceId);
    return this.addresses.get(instanceId);
  }
}

describe('replicas: the hop when the owner does not answer, and when its request is altered', () => {
  let idp: TestIdp;
  const peers = new TestPeers();
  let a: TestGateway;
  let b: TestGateway;
  let ada: Record<string, string>;
  /** Accepts connections and never writes a byte. */
  const silent = createTcpServer((socket) => accepted.push(socket));
  const accepted: Socket[] = [];
  const headTimeoutMs = 3000;

  const replica = () =>
    startTestGateway(
      {
        identity: { issuers: [{ issuer: idp.issuer, audiences: ['portcullis'] }] },
        cluster: {
          secret: `\${env:${secretVar}}`,
          tokenKeys: [`\${env:${tokenKeyVar}}`],
          hopConnectTimeout: '1s',
          hopHeadTimeout: `${headTimeoutMs}ms`,
        },
        connections: { everything: { stdio: everythingStdio(), tools: { pin: false } } },
      },
      { peers },
    );

  before(async () => {
    idp = await startTestIdp();
    a = await replica();
    b = await replica();
    for (const gw of [a, b]) peers.addresses.set(gw.gateway.replicas.instance, gw.url);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    peers.addresses.set('silent-owner', `http://127.0.0.1:${port}`);
    // TLS to a peer that never speaks: the connection (its handshake) never completes.
    peers.addresses.set('silent-tls-owner', `https://127.0.0.1:${port}`);
    ada = { authorization: `Bearer ${await idp.sign({ sub: 'ada' })}` };
  });
  after(async () => {
    for (const s of accepted) s.destroy();
    silent.close();
    await a?.stop();
    await b?.stop();
    await idp?.stop();
  });

  /** A session id as the replica `owner` would mint it (the token key is shared). */
  const sessionOf = (owner: string) => new SessionIds(new TokenKeys([process.env[tokenKeyVar]!]).ring('session id'), owner).mint();
  const headersFor = (sessionId: string) => ({ ...mcpHeaders, ...ada, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' });
  const call = (id: string, name: string, args: Record<string, unknown> = {}) =>
    JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

  it('answers 504 when the owner accepts the connection and never answers (cluster.hopHeadTimeout), naming the request', async () => {
    const before = accepted.length;
    const res = await fetch(b.mcp('everything'), {
      method: 'POST',
      headers: headersFor(sessionOf('silent-owner')),
      body: call('c-1', 'echo', { message: 'hi' }),
    });
    assert.equal(res.status, 504);
    const body = (await res.json()) as { id: unknown; error: { code: number; message: string } };
    assert.equal(body.id, 'c-1');
    assert.match(body.error.message, /did not answer \(no answer within cluster\.hopHeadTimeout \(3000 ms\)\)/);
    assert.ok(accepted.length > before, 'the silent owner did accept the connection');
  });

  it("answers 504 in cluster.hopHeadTimeout for a client's Expect: 100-continue too: only an owner's 102 is its taking the hop", async () => {
    // An HTTP server that reads requests and never answers one, but for a 103 (and a 100 to an Expect, as Node's does).
    const seen: Array<Record<string, unknown>> = [];
    const stalling = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    peers.addresses.set('stalling-owner', `http://127.0.0.1:${(stalling.address() as AddressInfo).port}`);
    try {
      const headers = { ...headersFor(sessionOf('stalling-owner')), expect: '100-continue' };
      const res = await post(b.mcp('everything'), headers, call('c-2', 'echo', { message: 'hi' }), headTimeoutMs * 3);
      assert.equal(res.status, 504, res.body);
      assert.match(res.body, /no answer within cluster\.hopHeadTimeout/);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.expect, undefined, 'Expect is the client’s business with the first replica');
    } finally {
      peers.addresses.delete('stalling-owner');
      stalling.closeAllConnections();
      stalling.close();
    }
  });

  it('answers 504 when the connection to the owner does not complete (cluster.hopConnectTimeout)', async () => {
    const res = await fetch(b.mcp('everything'), { method: 'GET', headers: { ...headersFor(sessionOf('silent-tls-owner')), accept: 'text/event-stream' } });
    assert.equal(res.status, 504);
    const body = (await res.json()) as { id: unknown; error: { message: string } };
    assert.equal(body.id, null);
    assert.match(body.error.message, /no connection within cluster\.hopConnectTimeout \(1000 ms\)/);
  });

  it('forwards a call that takes longer than cluster.hopHeadTimeout: the owner takes the hop at once (102), then answers', async () => {
    const sessionId = await rawInitialize(a.mcp('everything'), ada);
    const res = await fetch(b.mcp('everything'), {
      method: 'POST',
      headers: headersFor(sessionId),
      body: call('long', 'trigger-long-running-operation', { duration: (headTimeoutMs * 2) / 1000, steps: 2 }),
    });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /Long running operation completed/);
    await fetch(a.mcp('everything'), { method: 'DELETE', headers: headersFor(sessionId) });
  });

  it('reads the membership again before answering 404 for the session of a replica it has not read yet', async () => {
    const sessionId = await rawInitialize(a.mcp('everything'), ada);
    const owner = a.gateway.replicas.instance;
    // b's last read of the membership predates a (a replica that just joined): it learns of a only by reading again.
    peers.unread.add(owner);
    const before = peers.rereads;
    try {
      const res = await fetch(b.mcp('everything'), { method: 'POST', headers: headersFor(sessionId), body: call('n-1', 'echo', { message: 'new' }) });
      assert.equal(res.status, 200);
      assert.match(await res.text(), /Echo: new/);
      assert.equal(peers.rereads - before, 1);
    } finally {
      peers.unread.delete(owner);
    }
    // An owner that is in no read at all is still gone: 404, so its client initializes anew.
    const res = await fetch(b.mcp('everything'), {
      method: 'POST',
      headers: headersFor(sessionOf('never-joined')),
      body: call('n-2', 'echo', { message: 'x' }),
    });
    assert.equal(res.status, 404);
    await fetch(a.mcp('everything'), { method: 'DELETE', headers: headersFor(sessionId) });
  });

  it('refuses a forwarded request whose headers were altered or added on the way; the one sent is taken once', async () => {
    const sessionId = await rawInitialize(a.mcp('everything'), ada);
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
    const owner = a.gateway.replicas.instance;
    peers.addresses.set(owner, `http://127.0.0.1:${(capture.address() as AddressInfo).port}`);
    try {
      const res = await fetch(b.mcp('everything'), { method: 'POST', headers: headersFor(sessionId), body: call('t-1', 'echo', { message: 'hi' }) });
      assert.equal(res.status, 200);
    } finally {
      peers.addresses.set(owner, a.url);
      capture.close();
    }
    assert.equal(seen.length, 1);
    const { headers, body } = seen[0]!;
    assert.match(String(headers['portcullis-hop-signed']), /(^|,)accept(,|$)/);
    const sent = Object.fromEntries(Object.entries(headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k))) as Record<string, string>;
    const replay = (h: Record<string, string>) => hop(a, h, body);
    for (const [what, altered] of [
      ['Accept altered', { ...sent, accept: 'application/json' }],
      ['Content-Type altered', { ...sent, 'content-type': 'text/plain' }],
      ['MCP-Protocol-Version altered', { ...sent, 'mcp-protocol-version': '2025-06-18' }],
      ['Last-Event-ID added', { ...sent, 'last-event-id': `${sessionId}_1` }],
      ['Mcp-Method added', { ...sent, 'mcp-method': 'tools/list' }],
    ] as const) {
      assert.equal((await replay(altered)).status, 401, what);
    }
    const taken = await replay(sent);
    assert.equal(taken.status, 200, 'the hop as it was signed is taken');
    assert.deepEqual(taken.informational, [102], 'the owner said it took the hop before answering');
    assert.equal((await replay(sent)).status, 401, 'and only once');
    await fetch(a.mcp('everything'), { method: 'DELETE', headers: headersFor(sessionId) });
  });
});

/** A POST by node:http (fetch sends no Expect), its status and body; failing when no answer came within `ms`. */
function post(url: URL, headers: Record<string, string>, body: string, ms: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.setTimeout(ms, () => req.destroy(new Error(`no answer within ${ms} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends a hop request as it is to a replica: its status and the informational (1xx) answers before it. */
function hop(gw: TestGateway, headers: Record<string, string>, body: string): Promise<{ status: number; informational: number[] }> {
  return new Promise((resolve, reject) => {
    const informational: number[] = [];
    const req = httpRequest(new URL('/_portcullis/hop/mcp/everything', gw.url), { method: 'POST', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, informational }));
    });
    req.on('information', (info) => informational.push(info.statusCode));
    req.on('error', reject);
    req.end(body);
  });
}
