import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { TestGateway } from '../helpers/gateway.js';
import { postInitialize, rawInitialize } from '../helpers/raw-http.js';
import { type StoreOutage, startStoreOutage } from '../helpers/store-outage.js';
import type { LockableTestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A session refused because it cannot be recorded (write-ahead, the store unavailable) gives back the place the
 * limits gave it: else every attempt during an outage keeps a place for good, and once the store is back the
 * principal (and in the end the whole gateway) stays locked out of new sessions.
 */

describe('limits: sessions refused during a store outage', () => {
  let outage: StoreOutage | undefined;
  let ts: LockableTestStore;
  let gw: TestGateway;

  before(async () => {
    outage = await startStoreOutage((echo) => ({ connections: { echo: { http: { url: echo.url } } }, limits: { principal: { sessions: 5 } } }));
    ({ store: ts, gw } = outage);
  });
  after(() => outage?.stop());

  it('give their places back, so the principal opens sessions again once the store recovers', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('echo'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'outage', version: '1' });
    await client.connect(transport);
    // Another process holds the database's write lock: the next write fails and the recorder is unavailable.
    ts.lock();
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'during the outage' } }));
    await client.close().catch(() => {});
    for (let i = 0; i < 3; i++) {
      const res = await postInitialize(gw.mcp('echo'), gw.auth);
      assert.equal(res.status, 503, 'refused: it cannot be recorded');
      await res.text();
    }
    ts.unlock();
    await waitFor(async () => (await fetch(new URL('/readyz', gw.url))).status === 200, 'the gateway to be ready again');
    await waitFor(
      () => gw.gateway.limits.usage.sessions === 0,
      'every place to be given back (the cut-off session sealed, the refused ones never kept)',
      10_000,
    );
    for (let i = 0; i < 5; i++) await rawInitialize(gw.mcp('echo'), gw.auth);
  });
});
