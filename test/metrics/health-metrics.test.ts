import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { type StoreOutage, startStoreOutage } from '../helpers/store-outage.js';
import type { LockableTestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The gauges to alert on (docs/operations.md): the recording store taking writes, the replicas in the membership, the
 * members of a virtual server. Real parts fail: the store's database locked by another process, a member whose server
 * does not listen.
 */

/** The value of one series in an exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('health gauges in /metrics', () => {
  let outage: StoreOutage | undefined;
  let ts: LockableTestStore;
  let gw: TestGateway;
  const scrape = async () => {
    const res = await fetch(new URL('/metrics', gw.url), { headers: gw.apiAuth });
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async () => {
    // Nothing listens on this port: the member cannot open.
    const dead = `http://127.0.0.1:${await freePort()}/mcp`;
    outage = await startStoreOutage((echo) => ({
      connections: { echo: { http: { url: echo.url, protocol: '2025-11-25' } }, dead: { http: { url: dead, protocol: '2025-11-25' } } },
      virtualServers: { box: { access: { groups: ['*'] }, members: [{ connection: 'echo' }, { connection: 'dead' }] } },
    }));
    ({ store: ts, gw } = outage);
  });
  after(() => outage?.stop());

  it('a member of a virtual server that is down is 0, the one that is up 1', async () => {
    const client = new Client({ name: 'health-metrics', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('box'), { requestInit: { headers: gw.auth } }));
    await waitFor(async () => sample(await scrape(), 'portcullis_virtual_member_up{virtual_server="box",member="dead"}') === 0, 'the dead member at 0');
    assert.equal(sample(await scrape(), 'portcullis_virtual_member_up{virtual_server="box",member="echo"}'), 1);
    await client.close();
  });

  it('this replica is alive in the membership', async () => {
    const instance = gw.gateway.replicas.instance;
    assert.equal(sample(await scrape(), `portcullis_replica_alive{instance="${instance}"}`), 1);
  });

  it('the recording store: 1, 0 while another process holds its write lock, 1 again once it is writable', async () => {
    assert.equal(sample(await scrape(), 'portcullis_recording_store_up'), 1);
    ts.lock();
    // A session opening is a write; it fails, and the recorder stops accepting.
    const client = new Client({ name: 'health-metrics-store', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('echo'), { requestInit: { headers: gw.auth } })).catch(() => {});
    await waitFor(async () => sample(await scrape(), 'portcullis_recording_store_up') === 0, 'the store reported down');
    ts.unlock();
    await waitFor(async () => sample(await scrape(), 'portcullis_recording_store_up') === 1, 'the store reported up again');
    await client.close().catch(() => {});
  });
});
