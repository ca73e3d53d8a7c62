import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { hopDeclinedHeader } from '../../src/cluster/hop-auth.js';
import type { TestGateway } from '../helpers/gateway.js';
import { HopPair } from '../helpers/hop-pair.js';
import { ResettingProxy } from '../helpers/resetting-proxy.js';

/**
 * The hop to an owner that is gone or cannot be reached, between two replicas of one gateway on one PostgreSQL
 * database (the membership moved by the test): a session whose owner is gone from the membership, or whose address
 * leads elsewhere, is answered as gone (404, so the client initializes anew); a connection the owner closed is sent
 * again once; an owner alive but unreachable gets 503 and the session stands; an answer lost after the owner took the
 * hop (its 102 came back, or a retry was refused as already taken) gets 502. (An owner that does not answer in time: hop-timeouts.test.ts.)
 */

describe('replicas: the hop to an owner that is gone or cannot be reached', () => {
  const pair = new HopPair();
  const { peers, headersFor, call, echoOn, inSession } = pair;
  before(() => pair.start());
  after(() => pair.stop());

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

  it("answers 503, not 404, when nothing listens at the owner's address but the membership still has it alive", () =>
    inSession(async (sessionId, owner, other) => {
      // Port 1: nothing listens there, so the connection is refused. That is no proof the owner died (a sidecar proxy
      // not up yet refuses too): its sessions stand until the membership finds it gone.
      const res = await echoWithOwnerAt(sessionId, owner, other, 'http://127.0.0.1:1');
      assert.equal(res.status, 503, res.text);
      assert.match(res.text, /could not be reached \(ECONNREFUSED\); try again/);
      // What failed, not where: the owner's internal address is for the log only.
      assert.doesNotMatch(res.text, /127\.0\.0\.1/);
      const logged = other.log.lines.findLast((l) => /could not be reached/.test(String(l.msg)));
      assert.match(String(logged?.err), /ECONNREFUSED 127\.0\.0\.1:1/);
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
        assert.equal(answer.error.message, 'Service Unavailable: the gateway replica holding this session could not be reached (ECONNRESET); try again');
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

  it('answers 502 without Retry-After when the connection fails after the owner took the hop (its 102): the request may have run', () =>
    inSession(async (sessionId, owner, other) => {
      await ownerBehindResets(owner, async (proxy) => {
        // A new connection: the owner reads the request, says 102, and the connection ends before its answer.
        proxy.mode = 'taken';
        const res = await echoText(other, sessionId, 'taken');
        assert.equal(res.status, 502, res.text);
        assert.equal(res.headers.get('retry-after'), null, 'no invitation to resend a request the owner took');
        const answer = JSON.parse(res.text) as { id: unknown; error: { message: string } };
        assert.equal(answer.id, 'e');
        assert.match(answer.error.message, /took the request.*do not send it again before checking/);
        assert.equal(proxy.accepted, 1, 'not sent again');
      });
    }));

  it("relays a shutting-down owner's 503 to a session's request as it is, its decline mark (for openings only) dropped", () =>
    inSession(async (sessionId, owner, other) => {
      // What a replica past its drain delay answers a hop, before acting on it: a session's request is not sent elsewhere.
      let asked = 0;
      const closing = createServer((req, res) => {
        asked++;
        req.resume();
        res.writeHead(503, { 'retry-after': '5', [hopDeclinedHeader]: 'draining', 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -31000, message: 'Service Unavailable: this gateway is shutting down; retry' } }));
      });
      closing.listen(0, '127.0.0.1');
      await once(closing, 'listening');
      try {
        const address = `http://127.0.0.1:${(closing.address() as AddressInfo).port}`;
        const res = await peers.movedWhile(owner.gateway.replicas.instance, address, () => echoText(other, sessionId, 'closing'));
        assert.equal(res.status, 503, res.text);
        assert.equal(res.headers.get('retry-after'), '5');
        assert.equal(res.headers.get(hopDeclinedHeader), null, 'the mark is the hop’s own');
        assert.match(res.text, /shutting down; retry/);
        assert.equal(asked, 1);
      } finally {
        closing.closeAllConnections();
        closing.close();
      }
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
});
