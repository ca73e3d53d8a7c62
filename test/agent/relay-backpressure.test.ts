import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentProcess } from '../helpers/agent-process.js';
import { floodCall, relayedPausedBound, sessionHeaders, startFloodAgent, stdioFlooded, waitUntilPaused } from '../helpers/flood.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { SlowReader } from '../helpers/slow-reader.js';
import { postgresTestStore, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Backpressure through an agent's tunnel relayed by another replica: the agent's tunnel ends on replica A, the client
 * is on replica B and does not read. B stops reading the relay, A's writes to it back up and A withholds the channel's
 * credit, so the agent pauses the server. When the client reads again, the server goes on. Heartbeats are slow: both
 * gateways share this one loaded process, and a missed ping would end the tunnel for reasons this test is not about.
 */

const token = 'pca_test-token-for-the-relayed-flood-0123456789';
const secretVar = 'PORTCULLIS_TEST_RELAY_SECRET';
process.env[secretVar] = 'cluster-secret-for-the-relay-test-0123456789';

describe('backpressure through a relayed agent tunnel', () => {
  let store: TestStore;
  let a: TestGateway;
  let b: TestGateway;
  let dir: string;
  let agent: AgentProcess | undefined;

  const replica = (instanceId: string) =>
    startTestGateway({
      store: store.url,
      recording: { instanceId },
      cluster: { secret: `\${env:${secretVar}}` },
      connections: { flood: { agent: 'flood-agent' } },
      agents: { heartbeat: '10s' },
      limits: { clientBacklog: '256KiB', slowClientTimeout: '10m' },
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-relay-flood-'));
    store = postgresTestStore();
    a = await replica('relay-a');
    b = await replica('relay-b');
    agent = await startFloodAgent(a, a.url, dir, token);
    await waitFor(
      async () => (await b.gateway.recorder!.store.agentTunnels('flood-agent')).some((r) => r.instanceId === 'relay-a'),
      "the tunnel's location to be recorded",
    );
  });

  after(async () => {
    await agent?.stop();
    await b?.stop();
    await a?.stop();
    await store?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pauses the server behind the agent while the client on the other replica does not read, and resumes when it reads', async () => {
    const session = await rawInitialize(b.mcp('flood'), b.auth);
    assert.equal(b.gateway.sessions.get(session) !== undefined, true, 'the session is on replica B');
    const reader = new SlowReader(b.mcp('flood'), sessionHeaders(b, session), floodCall, 0);
    try {
      // The server's stderr reaches the log of the replica holding the tunnel.
      await waitFor(() => stdioFlooded(a) > 0, 'the flood to start', 20_000);
      const held = await waitUntilPaused(() => stdioFlooded(a), relayedPausedBound);
      reader.rate(Infinity);
      await waitFor(() => stdioFlooded(a) > held + (4 << 20), 'the server to be read again once the client reads', 90_000);
      assert.ok(reader.received > 0);
    } finally {
      reader.close();
      await fetch(b.mcp('flood'), { method: 'DELETE', headers: sessionHeaders(b, session) });
    }
  });
});
