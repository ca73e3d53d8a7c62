import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { AuditCollector, assertShippedWhole } from '../helpers/audit-collector.js';
import { closeClient } from '../helpers/client.js';
import { replicaSecret, type StoreReplicas, startStoreReplicas } from '../helpers/store-replicas.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Audit streams with replicas on one PostgreSQL store: each ships the sessions it recorded; a replica that cannot
 * reach the sink and then leaves leaves its backlog in the store, and a survivor ships it, every event in order.
 */

const users = { alice: ['eng'] };

describe('audit streams with replicas', () => {
  let shared: StoreReplicas;
  let reachable: AuditCollector;
  let unreachable: AuditCollector;

  const config = (instanceId: string, collector: AuditCollector) => ({
    ...shared.base(instanceId),
    cluster: { goneAfter: '2s', secret: replicaSecret },
    // A beat has 1.33 s to land: within it, recording.writeTimeout and a wait for a pooled connection as long.
    recording: { instanceId, writeTimeout: '600ms' },
    // One sink name on both: one cursor per session in the store, whichever replica moves it.
    audit: { pollInterval: '1s', sinks: [{ name: 'siem', http: { url: collector.url } }] },
    connections: { echo: { http: { url: shared.echo.url }, tools: { pin: false }, access: { groups: ['eng'] } } },
  });

  before(async () => {
    shared = await startStoreReplicas('audit-replicas', users);
    reachable = await AuditCollector.start();
    unreachable = await AuditCollector.start();
    unreachable.failing = true;
  });
  after(async () => {
    await shared?.stop();
    await reachable?.stop();
    await unreachable?.stop();
  });

  it('a replica that could not ship leaves: a survivor ships its sessions, whole and in order, and each replica its own', async () => {
    const survivor = await shared.replica(config('survivor', reachable), { auditRetryMs: 50 });
    const leaving = await shared.replica(config('leaving', unreachable), { auditRetryMs: 50 });
    const store = survivor.gateway.recorder!.store;

    const session = async (url: URL) => {
      const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${shared.tokens.alice}` } } });
      const client = new Client({ name: 'audit-replicas', version: '1.0.0' });
      await client.connect(transport);
      for (let i = 0; i < 3; i++) await client.callTool({ name: 'echo', arguments: { message: `call ${i}` } });
      const id = transport.sessionId;
      await closeClient(client, transport);
      return id!;
    };
    const own = await session(survivor.mcp('echo'));
    const left = await session(leaving.mcp('echo'));
    await waitFor(async () => (await store.getSession(left))?.status === 'closed', 'the leaving replica to seal its session');
    await waitFor(() => unreachable.refused > 0, 'the leaving replica to fail to ship it');
    await waitFor(() => reachable.closed(own), 'the survivor to ship its own session');

    // (Never a false failure: a survivor that wrongly took a live replica's sessions would be caught here most runs.)
    assert.equal(reachable.of(left).length, 0, "a live replica's sessions are its own to ship");
    await leaving.gateway.stop();
    await waitFor(() => reachable.closed(left), "the survivor to ship the gone replica's session", 30_000);
    // Every event of its own session and of the gone replica's, in order.
    for (const id of [own, left]) await assertShippedWhole(store, reachable.of(id), id);
    assert.ok(
      reachable.of(left).every((r) => r.instance === 'leaving'),
      'recorded by the replica that left, as each record says',
    );
  });
});
