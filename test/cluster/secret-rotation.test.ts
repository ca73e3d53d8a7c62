import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { callApi } from '../helpers/api.js';
import { everythingStdio } from '../helpers/everything.js';
import type { TestGateway } from '../helpers/gateway.js';
import { holdCall, holdRule } from '../helpers/held-calls.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { assertRetryTaken, openRound, retryRound } from '../helpers/mrtr-round.js';
import { RollingReplicas } from '../helpers/rolling-replicas.js';
import { type StoreReplicas, startStoreReplicas } from '../helpers/store-replicas.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A rolling rotation of cluster.secret over two replicas on one PostgreSQL store, as docs/deploy.md prescribes it: [s1]
 * everywhere, then [s1, s2] rolled out, then [s2, s1], then [s2]. Each replica is replaced in turn as a rolling deploy
 * does (its successor, with the new list and a new instance id, started before it is stopped). At every step both
 * channels between the replicas keep working: the hop (legacy sessions' requests and MRTR retries forwarded to the
 * replica that holds them) and the change notifications (a review decided on one replica releases the call held on
 * the other at once; the reconciliation poll is an hour away, so only the notification can). And replicas whose
 * secrets have nothing in common (a step skipped) answer a forwarded request 503, not 404: the owner is alive.
 */

const users = { ada: ['eng'], bob: ['leads'] };
const s1Var = 'PORTCULLIS_TEST_SECRET_ROTATION_S1';
const s2Var = 'PORTCULLIS_TEST_SECRET_ROTATION_S2';
process.env[s1Var] = 'rotation-cluster-secret-one-0123456789abcdef';
process.env[s2Var] = 'rotation-cluster-secret-two-0123456789abcdef';
type Secret = 's1' | 's2';
const refs: Record<Secret, string> = { s1: `\${env:${s1Var}}`, s2: `\${env:${s2Var}}` };

/** Holds the echo connection's `echo` calls whose text starts with "hold" (the everything server's echo is not held). */
const heldOnEcho = { ...holdRule, when: `connection == "echo" && ${holdRule.when}` };

/**
 * A replica of `shared` whose cluster.secret is `secrets` (a single one as a plain reference, as configs before lists
 * wrote it), with the everything server and the echo server; reviews, grants and pins are read again only hourly.
 */
function replicaWith(shared: StoreReplicas, name: string, secrets: Secret[]) {
  return () =>
    shared.replica({
      ...shared.base(name),
      cluster: { secret: secrets.length === 1 ? refs[secrets[0]!] : secrets.map((s) => refs[s]), reconcile: '1h' },
      rules: [heldOnEcho],
      connections: {
        everything: { stdio: everythingStdio(), tools: { pin: false } },
        echo: { http: { url: shared.echo.url }, tools: { pin: false } },
      },
    });
}

describe('replicas: a rolling rotation of cluster.secret', () => {
  let shared: StoreReplicas;
  let rolling: RollingReplicas;
  let generation = 0;
  const start = (secrets: Secret[]) => replicaWith(shared, `secret-rotation-${++generation}`, secrets);

  /**
   * A call held on `holder` is released by an approval given on `decider`: the decider's notification, signed under
   * its first secret, is taken by the holder. Within the wait, far under the hour-long poll, only it can have told.
   */
  async function decisionReaches(holder: TestGateway, decider: TestGateway, what: string): Promise<void> {
    const text = `hold ${what}`;
    const bob = shared.tokens.bob!;
    const { call, review } = await holdCall(holder.mcp('echo'), shared.tokens.ada!, text, { url: decider.url, token: bob }, shared.clients);
    let released = false;
    void call.then(() => (released = true));
    const approved = await callApi(decider.url, bob, 'POST', `/api/reviews/${review.id}/approve`, { note: 'fine' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    await waitFor(() => released, `${what}: the call to be released by the notification`);
    const result: CallToolResult = await call;
    assert.notEqual(result.isError, true, `${what}: ${JSON.stringify(result)}`);
  }

  /**
   * What must hold after each replacement: the sessions of the replica not replaced (at least one) work from both, as
   * does a session opened on each now; a round opened on each is retried through the other; and a decision made on
   * each reaches a call held on the other.
   */
  async function check(step: string): Promise<void> {
    const { auth } = rolling;
    assert.ok(rolling.sessions.length > 0, `${step}: sessions from before are still open`);
    for (const s of rolling.sessions) await rolling.worksOnBoth(s, `${step}, a session from before`);
    for (const [i, gw] of rolling.live.entries()) {
      const session = { id: await rawInitialize(gw.mcp('everything'), auth), owner: gw };
      await rolling.worksOnBoth(session, `${step}, a new session on replica ${i + 1}`);
      rolling.sessions.push(session);
    }
    const [a, b] = rolling.live as [TestGateway, TestGateway];
    for (const [holder, other, which] of [
      [a, b, '1'],
      [b, a, '2'],
    ] as const) {
      assertRetryTaken(await retryRound(other, await openRound(holder, auth)), `${step}, a round of replica ${which} retried on the other`);
      await decisionReaches(holder, other, `${step}, a call held on replica ${which}, decided on the other`);
    }
  }

  before(async () => {
    shared = await startStoreReplicas('secret-rotation', users);
    // The first replica mints the users' tokens.
    const first = await start(['s1'])();
    rolling = new RollingReplicas({ authorization: `Bearer ${shared.tokens.ada}` });
    await rolling.add(first);
    await rolling.add(await start(['s1'])());
    await rolling.known(first);
  });
  after(() => shared?.stop());

  it('[s1] everywhere: sessions, rounds and decisions cross between the replicas', async () => {
    for (const gw of rolling.live) rolling.sessions.push({ id: await rawInitialize(gw.mcp('everything'), rolling.auth), owner: gw });
    await check('[s1]');
  });

  it('[s1, s2] rolled out one replica at a time: s1 still signs, both verify it', async () => {
    await rolling.replace(0, start(['s1', 's2']));
    await check('[s1, s2] | [s1]');
    await rolling.replace(1, start(['s1', 's2']));
    await check('[s1, s2] everywhere');
  });

  it('[s2, s1] on one replica, [s1, s2] on the other: each verifies what the other signs', async () => {
    await rolling.replace(0, start(['s2', 's1']));
    await check('[s2, s1] | [s1, s2]');
    await rolling.replace(1, start(['s2', 's1']));
    await check('[s2, s1] everywhere');
  });

  it('[s2] everywhere: s1 is gone, and everything still crosses', async () => {
    await rolling.replace(0, start(['s2']));
    await check('[s2] | [s2, s1]');
    await rolling.replace(1, start(['s2']));
    await check('[s2] everywhere');
  });
});

describe('replicas whose cluster.secret have nothing in common (a rotation step skipped)', () => {
  let shared: StoreReplicas;
  let rolling: RollingReplicas;
  let onS1: TestGateway;
  let onS2: TestGateway;

  before(async () => {
    shared = await startStoreReplicas('secret-mismatch', users);
    onS1 = await replicaWith(shared, 'mismatch-s1', ['s1'])();
    rolling = new RollingReplicas({ authorization: `Bearer ${shared.tokens.ada}` });
    await rolling.add(onS1);
    onS2 = await replicaWith(shared, 'mismatch-s2', ['s2'])();
    await rolling.add(onS2);
    await rolling.known(onS1);
  });
  after(() => shared?.stop());

  it('answer a forwarded request 503 with Retry-After, not 404, while both are alive; the session stands on its owner', async () => {
    const sessionId = await rawInitialize(onS1.mcp('everything'), rolling.auth);
    for (let i = 0; i < 3; i++) {
      const res = await rolling.echo(onS2, sessionId, `forwarded ${i}`);
      assert.equal(res.status, 503, res.text);
      assert.equal(res.headers.get('retry-after'), '2');
      assert.match(res.text, /refused this replica's request as unauthenticated \(bad-signature\).*cluster\.secret or clocks/);
    }
    const direct = await rolling.echo(onS1, sessionId, 'direct');
    assert.equal(direct.status, 200, direct.text);
    assert.match(direct.text, /Echo: direct/);
    // The replica forwarding says why, as an error naming the likely cause: once for the three refusals, not per request.
    const said = onS2.log.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('a replica alive in the membership refused'));
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.equal(said[0]!.level, 50);
    assert.equal(said[0]!.owner, onS1.gateway.replicas.instance);
    assert.match(said[0]!.msg as string, /\(bad-signature\).*cluster\.secret.*second on every replica, then first/);
    // The owner says why it refused: its log line names the reason, never the secret.
    assert.ok(onS1.log.lines.some((l) => l.msg === 'internal hop refused' && l.reason === 'bad hop signature'));
    assert.ok(!onS2.log.text.includes(process.env[s1Var]!) && !onS2.log.text.includes(process.env[s2Var]!));
  });

  it("answer an MRTR retry sent to the replica that does not hold the round 503, not the 400 of a round that's gone", async () => {
    const round = await openRound(onS1, rolling.auth);
    const retried = await retryRound(onS2, round);
    assert.equal(retried.status, 503, retried.body);
    assert.equal(retried.headers['retry-after'], '2');
    // The round stands: its retry sent to the replica holding it is taken.
    assertRetryTaken(await retryRound(onS1, round), 'the retry sent to the holder');
  });
});
