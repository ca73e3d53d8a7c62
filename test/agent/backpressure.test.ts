import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentProcess } from '../helpers/agent-process.js';
import { floodCall, sessionHeaders, startFloodAgent, stdioFlooded, waitUntilPaused } from '../helpers/flood.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { SlowReader } from '../helpers/slow-reader.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Backpressure through an agent's tunnel: a client that does not read makes the gateway withhold the channel's
 * credit, the agent's queue for it stops at its bound and the agent pauses the server. Neither end buffers the flood.
 * Heartbeats are slow: on a loaded machine a flooding agent misses 1 s pings, and its tunnel would end for that.
 */

const token = 'pca_test-token-for-the-flood-agent-0123456789';

describe('backpressure through an agent', () => {
  let gw: TestGateway;
  let dir: string;
  let agent: AgentProcess | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-agent-flood-'));
    gw = await startTestGateway({
      connections: { flood: { agent: 'flood-agent' } },
      agents: { heartbeat: '10s' },
      limits: { clientBacklog: '256KiB', slowClientTimeout: '10m' },
    });
    agent = await startFloodAgent(gw, gw.url, dir, token);
  });

  after(async () => {
    await agent?.stop();
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pauses the server behind the agent while the client does not read, and resumes when it reads', async () => {
    const session = await rawInitialize(gw.mcp('flood'), gw.auth);
    const reader = new SlowReader(gw.mcp('flood'), sessionHeaders(gw, session), floodCall, 0);
    try {
      await waitFor(() => stdioFlooded(gw) > 0, 'the flood to start', 20_000);
      const held = await waitUntilPaused(() => stdioFlooded(gw));
      reader.rate(Infinity);
      await waitFor(() => stdioFlooded(gw) > held + (4 << 20), 'the server to be read again once the client reads', 90_000); // generous: a loaded machine moves 4 MiB through the agent slowly; a missing resume never gets there
      assert.ok(reader.received > 0);
    } finally {
      reader.close();
      await fetch(gw.mcp('flood'), { method: 'DELETE', headers: sessionHeaders(gw, session) });
    }
  });
});
