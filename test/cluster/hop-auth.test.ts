import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SessionIds } from '../../src/cluster/session-ids.js';
import { TokenKeys } from '../../src/cluster/token-keys.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { HopPair, hopSecretVar as secretVar } from '../helpers/hop-pair.js';
import type { TestIdp } from '../helpers/idp.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { postgresTestStore, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Who may hop, between two replicas of one gateway on one PostgreSQL database: the owner refuses a hop not signed for
 * exactly that request and replica (a replay included), takes the caller's verified identity from it and never the
 * client's token, and a forged session id is unknown everywhere. A gateway without cluster.secret refuses every hop,
 * and a second replica without it is refused at start.
 */

describe('replicas: the internal hop refuses what is not signed for it', () => {
  const pair = new HopPair();
  const { peers, headersFor, call, echoOn, inSession } = pair;
  let idp: TestIdp;
  let a: TestGateway;
  let b: TestGateway;
  let bob: Record<string, string>;
  before(async () => {
    await pair.start();
    ({ idp, a, b, bob } = pair);
  });
  after(() => pair.stop());

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
        assert.equal(res.headers.get('portcullis-hop-refused'), 'bad-signature', changed);
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
