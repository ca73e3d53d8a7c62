import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadSigningKey } from '../../src/recording/keys.js';
import { trustedKeys, verifyLedger, verifySession } from '../../src/recording/verify.js';
import { openStore } from '../../src/store/open.js';
import { startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';
import { mcpHeaders } from '../helpers/raw-http.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { DevIdentity } from '../../src/identity/dev-identity.js';
import { deliveredTexts } from '../helpers/recorded.js';
import { postgresTestStore, sqliteTestStore, type TestStore } from '../helpers/stores.js';

/**
 * Crash test: the gateway is killed with SIGKILL at a random moment while clients are busy, then restarted.
 * Every message a client had received is in the recording, the chain verifies up to the last durable event,
 * and each interrupted session is sealed as cut off by the restart. Many runs, each at a different moment.
 */

interface Busy {
  sessionId: string;
  /** The exact text of every message this client received. */
  received: string[];
  stopped: Promise<void>;
}

/** A client that initializes and then calls echo in a loop until the gateway goes away; keeps what it received. */
async function busyClient(url: string, token: string): Promise<Busy> {
  const received: string[] = [];
  const init = await fetch(url, {
    method: 'POST',
    headers: { ...mcpHeaders, authorization: `Bearer ${token}` },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'crash', version: '1' } },
    }),
  });
  const sessionId = init.headers.get('mcp-session-id')!;
  received.push(await init.text());
  const headers = { ...mcpHeaders, authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
  await (await fetch(url, { method: 'POST', headers, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })).text();
  const stopped = (async () => {
    for (let id = 1; ; id++) {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers,
          body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: `call ${id}` } } }),
        });
        const text = await res.text();
        if (res.status !== 200) return;
        received.push(text);
      } catch {
        return; // the gateway was killed
      }
    }
  })();
  return { sessionId, received, stopped };
}

async function crashRuns(make: () => TestStore, runs: number, echo: EchoServer): Promise<void> {
  for (let run = 0; run < runs; run++) {
    const ts = make();
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-crash-'));
    const port = await freePort();
    const config = join(dir, 'gateway.yaml');
    const dev = { users: { tester: ['testers'] } };
    writeFileSync(
      config,
      stringify({
        listen: `127.0.0.1:${port}`,
        dataDir: dir,
        store: ts.url,
        log: { level: 'warn' },
        identity: { dev },
        // The restart's SIGTERM needs no load balancer's grace: each run stops at once.
        shutdown: { drainDelay: 0 },
        connections: { echo: { http: { url: echo.url }, access: { groups: ['testers'] } } },
      }),
    );
    const url = `http://127.0.0.1:${port}/mcp/echo`;
    // The dev identity's key is in the data directory, as `portcullis login --dev` finds it.
    const { token } = await (await DevIdentity.load(dir, { ...dev, allowNonLoopback: false, tokenLifetimeMs: 3_600_000 })).mint('tester');
    try {
      const first = new GatewayProcess(config);
      await first.ready();
      const clients = await Promise.all([busyClient(url, token), busyClient(url, token), busyClient(url, token)]);
      // Every client has had a call answered (the state the assertion below needs, waited for: a busy machine may take
      // longer than any fixed delay), then a different moment each run: mid-stream, or after many calls.
      await waitFor(() => clients.every((c) => c.received.length >= 2), 'every client to have a call answered');
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)));
      await first.stop('SIGKILL');
      await Promise.all(clients.map((c) => c.stopped));
      assert.ok(
        clients.every((c) => c.received.length >= 2),
        `run ${run}: every client had calls answered before the kill`,
      );

      const second = new GatewayProcess(config);
      await second.ready();
      await second.stop('SIGTERM');

      const store = await openStore(ts.url, { reader: true });
      try {
        const key = loadSigningKey(dir);
        const trusted = await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]);
        for (const c of clients) {
          const where = `run ${run}, session ${c.sessionId}`;
          const row = await store.getSession(c.sessionId);
          assert.ok(row, `${where}: recorded`);
          assert.equal(row.status, 'cut-off', where);
          assert.match(row.closeReason ?? '', /cut off: the gateway stopped without closing the session/, where);
          const delivered = new Set(deliveredTexts(await store.events(c.sessionId, -1, 1_000_000), 'toClient'));
          for (const text of c.received) assert.ok(delivered.has(text), `${where}: the recording holds what the client received: ${text.slice(0, 120)}`);
          const result = await verifySession(store, c.sessionId, trusted);
          assert.equal(result.status, 'verified', `${where}: ${JSON.stringify(result.problems)}`);
        }
        const instances = await store.ledgerInstances();
        for (const instance of instances) assert.deepEqual((await verifyLedger(store, instance)).problems, [], `run ${run}: ledger`);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await ts.destroy();
    }
  }
}

describe('crash: SIGKILL at random moments during busy sessions', { timeout: 600_000 }, () => {
  let echo: EchoServer;
  before(async () => {
    echo = await startEchoServer();
  });
  after(() => echo?.stop());

  it('SQLite: 20 runs', { timeout: 400_000 }, async () => {
    await crashRuns(sqliteTestStore, 20, echo);
  });

  it('PostgreSQL: 6 runs', { timeout: 200_000 }, async () => {
    await crashRuns(postgresTestStore, 6, echo);
  });
});
