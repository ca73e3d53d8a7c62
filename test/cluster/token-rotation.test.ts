import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SessionIds } from '../../src/cluster/session-ids.js';
import { TokenKeys } from '../../src/cluster/token-keys.js';
import { everythingStdio } from '../helpers/everything.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { assertRetryTaken, openRound, retryRound } from '../helpers/mrtr-round.js';
import { RollingReplicas } from '../helpers/rolling-replicas.js';
import { replicaSecret, type StoreReplicas, startStoreReplicas } from '../helpers/store-replicas.js';

/**
 * A rolling rotation of cluster.tokenKeys over two replicas on one PostgreSQL store, as docs/cluster-hop.md prescribes
 * it: [k1] everywhere, then [k1, k2] rolled out, then [k2, k1], then [k2]. Each replica is replaced in turn, as a
 * rolling deploy does (its successor, with the new list and a new instance id, started before it is stopped). A legacy
 * session lives in the process that opened it and ends with it; what a rotation must keep is every session of a replica
 * not yet replaced working from both replicas (the other one forwarding over the hop), whatever key sealed its id, and
 * a session opened on either working from both. Once k1 is gone everywhere, an id sealed under it is unknown.
 */

const users = { ada: ['eng'] };
const k1Var = 'PORTCULLIS_TEST_ROTATION_K1';
const k2Var = 'PORTCULLIS_TEST_ROTATION_K2';
process.env[k1Var] = 'rotation-token-key-one-0123456789abcdef';
process.env[k2Var] = 'rotation-token-key-two-0123456789abcdef';
type Key = 'k1' | 'k2';
const refs: Record<Key, string> = { k1: `\${env:${k1Var}}`, k2: `\${env:${k2Var}}` };
const secrets: Record<Key, string> = { k1: process.env[k1Var], k2: process.env[k2Var] };

/** Which of k1 and k2 sealed a session id, read from outside the gateway (the key that opens it). */
function sessionIdKey(id: string): Key | undefined {
  return (['k1', 'k2'] as const).find((k) => new SessionIds(new TokenKeys([secrets[k]]).ring('session id'), 'outside').ownerOf(id) !== undefined);
}

/** Which of k1 and k2 sealed a requestState (a JWE: its protected header names the key). */
function requestStateKey(state: string): Key | undefined {
  const { kid } = JSON.parse(Buffer.from(state.split('.')[0]!, 'base64url').toString()) as { kid: string };
  return (['k1', 'k2'] as const).find((k) => new TokenKeys([secrets[k]]).ring('requestState').current.kid === kid);
}

describe('replicas: a rolling rotation of cluster.tokenKeys', () => {
  let shared: StoreReplicas;
  let auth: Record<string, string>;
  let rolling: RollingReplicas;
  let generation = 0;
  /** Every session id sealed under k1, kept for the end (real ids, so certainly well formed and once valid). */
  const k1Ids: string[] = [];

  const start = (keys: Key[]) => () =>
    shared.replica({
      ...shared.base(`rotation-${++generation}`),
      cluster: { secret: replicaSecret, tokenKeys: keys.map((k) => refs[k]) },
      connections: { everything: { stdio: everythingStdio(), tools: { pin: false } } },
    });
  const replace = (slot: number, keys: Key[]) => rolling.replace(slot, start(keys));

  /**
   * What must hold after each replacement: the sessions of the replica not replaced (at least one) work from both, and
   * a session opened on each replica now, sealed under the key its list puts first, works from both.
   */
  async function check(step: string, sealing: [Key, Key]): Promise<void> {
    assert.ok(rolling.sessions.length > 0, `${step}: sessions from before are still open`);
    for (const s of rolling.sessions) await rolling.worksOnBoth(s, `${step}, a session from before (${sessionIdKey(s.id)})`);
    for (const [i, gw] of rolling.live.entries()) {
      const id = await rawInitialize(gw.mcp('everything'), auth);
      assert.equal(gw.gateway.replicas.ownerOfSession(id), gw.gateway.replicas.instance, 'the id names the replica that opened it');
      assert.equal(sessionIdKey(id), sealing[i], `${step}: sealed under the first key of the list of replica ${i + 1}`);
      if (sealing[i] === 'k1') k1Ids.push(id);
      const session = { id, owner: gw };
      await rolling.worksOnBoth(session, `${step}, a new session on replica ${i + 1}`);
      rolling.sessions.push(session);
    }
  }

  before(async () => {
    shared = await startStoreReplicas('token-rotation', users);
    // The first replica mints the users' tokens.
    const first = await start(['k1'])();
    auth = { authorization: `Bearer ${shared.tokens.ada}` };
    rolling = new RollingReplicas(auth);
    await rolling.add(first);
    await rolling.add(await start(['k1'])());
    await rolling.known(first);
  });
  after(() => shared?.stop());

  it('[k1] everywhere: a session opened on either replica works from both', async () => {
    for (const [i, gw] of rolling.live.entries()) {
      const id = await rawInitialize(gw.mcp('everything'), auth);
      assert.equal(sessionIdKey(id), 'k1');
      k1Ids.push(id);
      rolling.sessions.push({ id, owner: gw });
      await rolling.worksOnBoth(rolling.sessions.at(-1)!, `[k1], a session on replica ${i + 1}`);
    }
  });

  it('[k1, k2] rolled out one replica at a time: k1 still seals, both open it', async () => {
    await replace(0, ['k1', 'k2']);
    await check('[k1, k2] | [k1]', ['k1', 'k1']);
    await replace(1, ['k1', 'k2']);
    await check('[k1, k2] everywhere', ['k1', 'k1']);
  });

  it('[k2, k1] on one replica, [k1, k2] on the other: a session sealed under k2 works on the replica still sealing with k1, and the reverse', async () => {
    await replace(0, ['k2', 'k1']);
    await check('[k2, k1] | [k1, k2]', ['k2', 'k1']);
  });

  it('[k2, k1] on one replica, [k1, k2] on the other: the retry of an MRTR round sealed under either key is taken by the other replica', async () => {
    for (const [holder, retriedOn, key] of [
      [rolling.live[1]!, rolling.live[0]!, 'k1'],
      [rolling.live[0]!, rolling.live[1]!, 'k2'],
    ] as const) {
      const round = await openRound(holder, auth);
      assert.equal(requestStateKey(round.requestState), key, 'sealed under the first key of the holder');
      assertRetryTaken(await retryRound(retriedOn, round), `a round sealed under ${key}`);
    }
  });

  it('[k2, k1] everywhere: sessions sealed under k1 and k2 work from both', async () => {
    await replace(1, ['k2', 'k1']);
    await check('[k2, k1] everywhere', ['k2', 'k2']);
  });

  it('an id sealed under k1 still opens under [k2, k1]: one whose replica was replaced is answered as that replica gone', async () => {
    const stale = k1Ids[0]!;
    for (const gw of rolling.live) {
      assert.ok(gw.gateway.replicas.ownerOfSession(stale) !== undefined, 'k1 still opens it');
      const res = await rolling.echo(gw, stale, 'stale');
      assert.equal(res.status, 404, res.text);
      assert.match(res.text, /replica that held it is gone/);
    }
  });

  it('[k2] everywhere: new sessions work from both; an id sealed under k1 is unknown on every replica (404)', async () => {
    await replace(0, ['k2']);
    await check('[k2] | [k2, k1]', ['k2', 'k2']);
    await replace(1, ['k2']);
    await check('[k2] everywhere', ['k2', 'k2']);
    assert.ok(k1Ids.length >= 6, 'sessions sealed under k1 at every step that sealed with it');
    for (const id of k1Ids) {
      for (const gw of rolling.live) {
        assert.equal(gw.gateway.replicas.ownerOfSession(id), undefined, 'no key of this replica opens it');
        const res = await rolling.echo(gw, id, 'k1');
        assert.equal(res.status, 404, res.text);
        const answer = JSON.parse(res.text) as { error: { code: number; message: string } };
        assert.equal(answer.error.code, -32001);
        // Not the 404 of a replica gone: the id names no replica at all any more.
        assert.match(answer.error.message, /ended or never existed/);
      }
    }
  });
});
