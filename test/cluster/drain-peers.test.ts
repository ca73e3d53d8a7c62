import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { hopDeclinedHeader } from '../../src/cluster/hop-auth.js';
import type { TestGateway } from '../helpers/gateway.js';
import { TestPeers } from '../helpers/hop-pair.js';
import { postInitialize } from '../helpers/raw-http.js';
import { replicaSecret as secret, type StoreReplicas, startStoreReplicas } from '../helpers/store-replicas.js';

/**
 * A rolling update drains several replicas at once, and the membership lags by up to a heartbeat: a draining replica
 * opening a new legacy session elsewhere may pick a peer that drains too. That peer declines (nothing acted on), and
 * the next serving peer is asked; only when every one declined does the client get 503 and Retry-After. The first
 * replica's membership is a test's (TestPeers), so that it still lists the second as serving, deterministically.
 */

const users = { alice: ['eng'] };

describe('a draining replica opening a session on a peer that drains too', () => {
  let shared: StoreReplicas;
  let first: TestGateway;
  let second: TestGateway;
  let third: TestGateway;
  /** What the first replica knows of the others: the second and third listed as serving, whatever they do. */
  const stale = new TestPeers();
  let auth: Record<string, string>;

  const config = (instanceId: string) => ({
    ...shared.base(instanceId),
    cluster: { reconcile: '60s', secret },
    // Longer than the suite: stop() at the end ends it.
    shutdown: { drainDelay: '10m' },
    connections: { echo: { http: { url: shared.echo.url }, tools: { pin: false }, access: { groups: ['eng'] } } },
  });
  /** Begins a replica's drain (not ready at once: ready() says draining as stop() is called); stop() ends it. */
  const drain = (gw: TestGateway) => void gw.gateway.stop({ drainDelay: true }).catch(() => {});
  const declines = () => first.log.lines.filter((l) => /declined a new session/.test(String(l.msg)));
  const echo = async (client: Client, text: string) => JSON.stringify(await client.callTool({ name: 'echo', arguments: { text, message: text } }));

  before(async () => {
    shared = await startStoreReplicas('drain-peers', users);
    first = await shared.replica(config('first'), { peers: stale });
    second = await shared.replica(config('second'));
    third = await shared.replica(config('third'));
    stale.addresses.set('second', second.url).set('third', third.url);
    // In this order: the first replica's first choice is the second.
    stale.servingIds.push('second', 'third');
    auth = { authorization: `Bearer ${shared.tokens.alice}` };
    drain(second);
    drain(first);
  });

  after(() => shared?.stop());

  it('opens it on the third replica when the second, still listed as serving, declines as draining', async () => {
    const transport = new StreamableHTTPClientTransport(first.mcp('echo'), { requestInit: { headers: auth } });
    const client = new Client({ name: 'late', version: '1.0.0' });
    await client.connect(transport);
    shared.clients.push(client);
    const sessionId = transport.sessionId!;
    assert.equal(first.gateway.replicas.ownerOfSession(sessionId), 'third', 'the session id names the third replica');
    assert.ok(third.gateway.sessions.get(sessionId), 'the third replica holds it');
    assert.equal(second.gateway.sessions.size, 0, 'the second replica opened nothing');
    assert.equal(first.gateway.sessions.size, 0, 'nor did the first');
    assert.match(await echo(client, 'via-first'), /via-first/, 'its calls through the draining replica reach the third');
    assert.deepEqual(
      declines().map((l) => l.peer),
      ['second'],
      'the second declined, and the first logged it',
    );

    // The next opening passes the second over: the first remembers it drains while its membership lags.
    const again = await postInitialize(first.mcp('echo'), auth);
    assert.equal(again.status, 200, await again.clone().text());
    assert.equal(again.headers.get(hopDeclinedHeader), null);
    const againId = again.headers.get('mcp-session-id')!;
    await again.body?.cancel();
    assert.equal(first.gateway.replicas.ownerOfSession(againId), 'third');
    assert.equal(declines().length, 1, 'the second was not asked again');
    await fetch(third.mcp('echo'), { method: 'DELETE', headers: { ...auth, 'mcp-session-id': againId } });
  });

  it('forgets a peer that declined once the membership no longer lists it as serving (a restart under its id is asked again)', async () => {
    const before = declines().length;
    stale.servingIds.splice(0, Infinity, 'third');
    const res = await postInitialize(first.mcp('echo'), auth);
    assert.equal(res.status, 200, await res.clone().text());
    const id = res.headers.get('mcp-session-id')!;
    await res.body?.cancel();
    assert.equal(first.gateway.replicas.ownerOfSession(id), 'third');
    await fetch(third.mcp('echo'), { method: 'DELETE', headers: { ...auth, 'mcp-session-id': id } });
    // Listed again (alone, so that the turn cannot skip it): asked again, and, still draining, it declines.
    stale.servingIds.splice(0, Infinity, 'second');
    const refused = await postInitialize(first.mcp('echo'), auth);
    assert.equal(refused.status, 503);
    await refused.body?.cancel();
    assert.deepEqual(
      declines()
        .slice(before)
        .map((l) => l.peer),
      ['second'],
    );
    stale.servingIds.splice(0, Infinity, 'second', 'third');
  });

  it('answers 503 with Retry-After when every peer listed as serving declines as draining', async () => {
    drain(third);
    const sessions = third.gateway.sessions.size;
    const refused = await postInitialize(first.mcp('echo'), auth);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.equal(refused.headers.get(hopDeclinedHeader), null, 'a decline is the hop’s own, never the client’s');
    const body = (await refused.json()) as { error: { message: string } };
    assert.match(body.error.message, /this gateway is shutting down; retry/);
    assert.equal(third.gateway.sessions.size, sessions, 'no session opened on the third');
    assert.equal(second.gateway.sessions.size, 0);
    assert.deepEqual(declines().at(-1)?.peer, 'third');
    const refusal = first.log.lines.findLast((l) => l.msg === 'new session refused while draining');
    assert.match(String(refusal?.reason), /every serving replica declined/);
    assert.deepEqual(refusal?.declined, ['third']);
  });
});
