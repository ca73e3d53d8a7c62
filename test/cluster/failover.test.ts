import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { stringify } from 'yaml';
import { hopDeclinedHeader } from '../../src/cluster/hop-auth.js';
import { openSessionRow } from '../../src/store/types.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { holdCall, holdRule } from '../helpers/held-calls.js';
import { freePort } from '../helpers/ports.js';
import { modernBody, modernHeaders, rawRequest } from '../helpers/modern.js';
import { postInitialize, rawInitialize } from '../helpers/raw-http.js';
import { replicaSecret as secret, type StoreReplicas, startStoreReplicas } from '../helpers/store-replicas.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Replicas leaving: a SIGTERM'd one drains (not ready at once but serving on for the drain delay, opening no new
 * legacy session of its own: one asked for then is opened on a serving peer over the hop, or refused 503 when there is
 * none; what is in flight finishes, then it leaves the membership); a kill -9'd one is noticed by a survivor after cluster.goneAfter, which seals its open recordings as
 * cut off and ends its held reviews as interrupted. And two live gateways never share an instance id.
 */

const users = { alice: ['eng'], bob: ['leads'] };

describe('replicas leaving', () => {
  let shared: StoreReplicas;
  let survivor: TestGateway;

  const config = (instanceId: string) => ({
    ...shared.base(instanceId),
    cluster: { goneAfter: '2s', reconcile: '60s', secret },
    // A beat has 1.33 s to land: within it, recording.writeTimeout and a wait for a pooled connection as long.
    recording: { instanceId, writeTimeout: '600ms' },
    rules: [holdRule],
    connections: { echo: { http: { url: shared.echo.url }, tools: { pin: false }, access: { groups: ['eng'] } } },
  });

  before(async () => {
    shared = await startStoreReplicas('failover', users);
    survivor = await shared.replica(config('survivor'));
  });

  after(() => shared?.stop());

  it('refuses to start a second gateway with the instance id of a live one, naming the key and the fix', async () => {
    await assert.rejects(startTestGateway(config('survivor')), (err: Error) => {
      assert.match(err.message, /another gateway is running with instance id 'survivor'/);
      assert.match(err.message, /recording\.instanceId/);
      return true;
    });
    assert.equal(survivor.gateway.cluster!.membership.state, 'serving', 'the live one is undisturbed');
  });

  it('a newcomer with the id of a replica whose beats stall waits past goneAfter before taking it; the original, woken, finds its id taken and exits', async () => {
    // goneAfter 4 s beats every 1.33 s: what the newcomer watches must outlast goneAfter, not a beat and a half.
    const stalledConfig = { ...config('stalled'), cluster: { goneAfter: '4s', reconcile: '60s', secret } };
    const port = await freePort();
    const file = join(shared.dataDir, 'stalled.yaml');
    writeFileSync(file, stringify({ ...stalledConfig, listen: `127.0.0.1:${port}`, log: { level: 'warn' } }));
    const original = new GatewayProcess(file);
    const store = survivor.gateway.recorder!.store;
    let newcomer: TestGateway | undefined;
    try {
      await original.ready();
      const originalBoot = (await store.member('stalled'))!.boot;
      // Its beats stall (a pause of the whole process: GC, a frozen VM, SIGSTOP), deterministically.
      original.child.kill('SIGSTOP');
      const lastBeat = (await store.member('stalled'))!.heartbeatAtUs;
      newcomer = await startTestGateway(stalledConfig);
      const taken = (await store.member('stalled'))!;
      assert.equal(taken.boot, newcomer.gateway.cluster!.membership.boot);
      assert.notEqual(taken.boot, originalBoot);
      // By the store's clock (both heartbeats are its): the id was taken only once the original was gone for goneAfter.
      assert.ok(taken.heartbeatAtUs - lastBeat >= 4_000_000, `taken ${(taken.heartbeatAtUs - lastBeat) / 1000} ms after the last beat`);

      original.child.kill('SIGCONT');
      const [code] = (await once(original.child, 'exit')) as [number | null];
      assert.equal(code, 1, original.output);
      assert.match(original.output, /another gateway took over instance id 'stalled'/);
      assert.match(original.output, /Give each replica its own recording\.instanceId/);
      // Its recorder's heartbeat, which ran once it woke, did not touch the newcomer's row.
      assert.equal((await store.member('stalled'))!.boot, newcomer.gateway.cluster!.membership.boot);
    } finally {
      original.child.kill('SIGCONT');
      await original.stop('SIGKILL');
      await newcomer?.stop();
    }
  });

  it('a newcomer with the id of a replica whose beats stalled for less than goneAfter is refused once it beats again', async () => {
    const stalledConfig = { ...config('paused'), cluster: { goneAfter: '4s', reconcile: '60s', secret } };
    const port = await freePort();
    const file = join(shared.dataDir, 'paused.yaml');
    writeFileSync(file, stringify({ ...stalledConfig, listen: `127.0.0.1:${port}`, log: { level: 'warn' } }));
    const original = new GatewayProcess(file);
    try {
      await original.ready();
      original.child.kill('SIGSTOP');
      const newcomer = startTestGateway(stalledConfig);
      // The newcomer is watching the row (or about to): the original wakes well within goneAfter and beats again.
      await new Promise((r) => setTimeout(r, 500));
      original.child.kill('SIGCONT');
      await assert.rejects(newcomer, /another gateway is running with instance id 'paused'/);
      const ready = await rawRequest(new URL('/readyz', `http://127.0.0.1:${port}`), 'GET', []);
      assert.equal(ready.status, 200, 'the original serves on');
    } finally {
      original.child.kill('SIGCONT');
      await original.stop('SIGKILL');
    }
  });

  it('a replica whose id another process took becomes unready and refuses MCP requests, and says why once', async () => {
    // Its recorder beats rarely here, so that the membership is what finds the id taken and the gateway fails closed.
    const victim = await startTestGateway(config('usurped'), { recorderTimings: { heartbeatMs: 3_600_000 } });
    try {
      const fatal: Error[] = [];
      const recorderAccepting: boolean[] = [];
      victim.gateway.onFatal((err) => {
        fatal.push(err);
        recorderAccepting.push(victim.gateway.recorder!.accepting);
      });
      const store = survivor.gateway.recorder!.store;
      const mine = (await store.member('usurped'))!;
      // Another process takes the row (as a newcomer does once the id looks gone): a boot that is certainly not this one.
      assert.ok(await store.claimMember({ id: 'usurped', address: null, startedAtUs: Date.now() * 1000, boot: 'elsewhere/1/usurper' }, mine.boot));
      await waitFor(() => fatal.length === 1, 'the replica to find its id taken at its next heartbeat');
      assert.match(fatal[0]!.message, /another gateway took over instance id 'usurped'.*recording\.instanceId/s);
      const ready = await rawRequest(new URL('/readyz', victim.url), 'GET', []);
      assert.equal(ready.status, 503);
      assert.equal((JSON.parse(ready.body) as { status: string }).status, 'instance id taken by another gateway');
      // Its recorder writes nothing more under the id, from then on (a sweep would seal the usurper's live sessions as its own).
      assert.deepEqual(recorderAccepting, [false]);
      assert.throws(
        () =>
          victim.gateway.recorder!.openSession(
            openSessionRow({ id: 'after-taken', instanceId: 'usurped', connection: 'echo', subject: 'alice', openedAtUs: 1 }),
          ),
        /recording has stopped: another gateway took over instance id 'usurped'/,
      );
      const refused = await rawRequest(victim.mcp('echo'), 'POST', [...modernHeaders('tools/list'), ['authorization', `Bearer ${shared.tokens.alice}`]], '{}');
      assert.equal(refused.status, 503);
      // Its heartbeats (membership and recorder) leave the usurper's row alone.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await store.member('usurped'))!.boot, 'elsewhere/1/usurper');
      assert.equal(fatal.length, 1);
    } finally {
      await victim.stop();
    }
  });

  it('SIGTERM drains: not ready at once while serving on for the drain delay, the call in flight finishes, then it leaves', async () => {
    const base = config('draining');
    const draining = await startTestGateway({
      ...base,
      // Longer than the test: it ends the delay itself, with a second stop (as a second signal would).
      shutdown: { drainDelay: '10m' },
      connections: { ...base.connections, everything: { stdio: { ...everythingStdio(), spares: 0 }, access: { groups: ['eng'] } } },
    });
    try {
      const auth = { authorization: `Bearer ${shared.tokens.alice}` };
      const client = new Client({ name: 'drain', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(draining.mcp('everything'), { requestInit: { headers: auth } }));
      shared.clients.push(client);
      let progressed = false;
      const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 6 } }, undefined, {
        onprogress: () => (progressed = true),
        timeout: 30_000,
      });
      await waitFor(() => progressed, 'the call to be in flight');
      const stopped = draining.gateway.stop({ drainDelay: true });
      await waitFor(async () => (await survivor.gateway.recorder!.store.member('draining'))?.state === 'draining', 'the replica to say it drains');
      const ready = await rawRequest(new URL('/readyz', draining.url), 'GET', []);
      assert.equal(ready.status, 503, 'a load balancer stops sending to it');
      assert.equal((JSON.parse(ready.body) as { status: string }).status, 'draining');
      assert.equal(ready.headers.connection, 'close', 'no connection is left idle for the port closing');

      // What the load balancer still sends before it has noticed: a new legacy session, and a modern request. The
      // client's requests go where `front` says, as through a load balancer that moves away once the replica is not ready.
      let front = draining.url;
      const viaFront = (input: string | URL | Request, init?: RequestInit) => {
        const u = new URL(input instanceof Request ? input.url : input);
        return fetch(new URL(u.pathname + u.search, front), init);
      };
      const late = new Client({ name: 'late', version: '1.0.0' });
      const lateTransport = new StreamableHTTPClientTransport(draining.mcp('echo'), { requestInit: { headers: auth }, fetch: viaFront });
      await late.connect(lateTransport);
      shared.clients.push(late);
      // Opened on the serving peer over the hop: its id names that peer, which records it under the caller's identity.
      const lateId = lateTransport.sessionId!;
      assert.equal(survivor.gateway.replicas.ownerOfSession(lateId), 'survivor', 'the session id names the replica that stays');
      assert.equal(draining.gateway.sessions.get(lateId), undefined, 'no session of it on the draining replica');
      assert.match(JSON.stringify(await late.callTool({ name: 'echo', arguments: { text: 'late', message: 'late' } })), /late/);
      await waitFor(async () => (await survivor.gateway.recorder!.store.getSession(lateId))?.status === 'open', 'the late session to be recorded');
      const recorded = (await survivor.gateway.recorder!.store.getSession(lateId))!;
      assert.equal(recorded.instanceId, 'survivor');
      assert.equal(recorded.subject, 'alice');
      assert.equal(recorded.edge, 'streamable-http');
      // A 2024-11-05 session lives by its stream, which would end with this replica: refused, to be retried elsewhere.
      const sse = await rawRequest(draining.sse('echo'), 'GET', [
        ['accept', 'text/event-stream'],
        ['authorization', auth.authorization],
      ]);
      assert.equal(sse.status, 503, sse.body);
      assert.ok(Number(sse.headers['retry-after']) > 0, 'it says when to retry');
      const modern = await rawRequest(
        draining.mcp('echo'),
        'POST',
        [...modernHeaders('tools/call', 'echo'), ['authorization', auth.authorization]],
        JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { text: 'modern', message: 'modern' } })),
      );
      assert.equal(modern.status, 200, modern.body);
      assert.match(JSON.stringify(modern.json?.result), /modern/);
      assert.equal((await survivor.gateway.recorder!.store.member('draining'))?.state, 'draining', 'still in the membership');

      front = survivor.url;
      void draining.gateway.stop();
      assert.match(JSON.stringify(await call), /completed/, 'the call in flight finished');
      await stopped;
      assert.match(
        JSON.stringify(await late.callTool({ name: 'echo', arguments: { text: 'after', message: 'after' } })),
        /after/,
        'the late session outlives the replica it reached first',
      );
      assert.equal((await survivor.gateway.recorder!.store.member('draining'))?.state, 'gone');
      await waitFor(async () => {
        await survivor.gateway.cluster!.membership.refresh();
        return survivor.gateway.cluster!.membership.addressOf('draining') === undefined;
      }, 'the survivor to stop routing to it');
    } finally {
      await draining.stop();
    }
  });

  it('a single replica draining refuses a new legacy session 503 with Retry-After, and serves on its sessions and modern requests', async () => {
    // Its own store: no other replica to open the session on.
    const alone = await startTestGateway({
      cluster: { secret },
      shutdown: { drainDelay: '10m' },
      connections: { echo: { http: { url: shared.echo.url }, tools: { pin: false } } },
    });
    try {
      const existing = new Client({ name: 'existing', version: '1.0.0' });
      await existing.connect(new StreamableHTTPClientTransport(alone.mcp('echo'), { requestInit: { headers: alone.auth } }));
      shared.clients.push(existing);
      const stopped = alone.gateway.stop({ drainDelay: true });
      await waitFor(async () => (await rawRequest(new URL('/readyz', alone.url), 'GET', [])).status === 503, 'the replica to be not ready');

      const sessionsBefore = alone.gateway.sessions.size;
      const refused = await postInitialize(alone.mcp('echo'), alone.auth);
      assert.equal(refused.status, 503);
      assert.ok(Number(refused.headers.get('retry-after')) > 0, 'it says when to retry');
      assert.equal(refused.headers.get(hopDeclinedHeader), null, 'a decline is marked only on a hop’s reply');
      const body = (await refused.json()) as { jsonrpc: string; error: { message: string } };
      assert.equal(body.jsonrpc, '2.0');
      assert.match(body.error.message, /this gateway is shutting down; retry/);
      assert.equal(alone.gateway.sessions.size, sessionsBefore, 'no session opened');

      assert.match(JSON.stringify(await existing.callTool({ name: 'echo', arguments: { text: 'on', message: 'on' } })), /on/, 'its sessions are served on');
      const modern = await rawRequest(
        alone.mcp('echo'),
        'POST',
        [...modernHeaders('tools/call', 'echo'), ['authorization', alone.auth.authorization!]],
        JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { text: 'modern', message: 'modern' } })),
      );
      assert.equal(modern.status, 200, modern.body);
      void alone.gateway.stop();
      await stopped;
    } finally {
      await alone.stop();
    }
  });

  it('kill -9: a survivor seals the dead replica’s open sessions as cut off and interrupts its held reviews', async () => {
    const port = await freePort();
    const file = join(shared.dataDir, 'doomed.yaml');
    writeFileSync(file, stringify({ ...config('doomed'), listen: `127.0.0.1:${port}`, log: { level: 'warn' } }));
    const doomed = new GatewayProcess(file);
    try {
      await doomed.ready();
      const url = `http://127.0.0.1:${port}`;
      const sessionId = await rawInitialize(new URL('/mcp/echo', url), { authorization: `Bearer ${shared.tokens.alice}` });
      const store = survivor.gateway.recorder!.store;
      await waitFor(async () => (await store.getSession(sessionId))?.status === 'open', 'the session to be recorded');
      const { review } = await holdCall(
        new URL('/mcp/echo', url),
        shared.tokens.alice!,
        'hold until killed',
        { url: survivor.url, token: shared.tokens.bob! },
        shared.clients,
      );
      await doomed.stop('SIGKILL');
      await waitFor(async () => (await store.getSession(sessionId))?.status === 'cut-off', 'the dead replica’s session to be sealed as cut off', 30_000);
      assert.match(
        (await store.getSession(sessionId))!.closeReason ?? '',
        /gateway instance doomed stopped without closing the session; recovered by survivor/,
      );
      await waitFor(async () => (await store.getReview(review.id))?.status === 'interrupted', 'its held review to be interrupted', 30_000);
      assert.match((await store.getReview(review.id))!.decisionNote ?? '', /gateway instance doomed stopped while the call was held/);
      assert.equal(survivor.gateway.cluster!.membership.addressOf('doomed'), undefined);
    } finally {
      await doomed.stop('SIGKILL');
    }
  });
});
