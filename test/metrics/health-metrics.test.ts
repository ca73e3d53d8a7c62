import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { sqlitePath } from '../../src/store/open.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { sqliteTestStore, type TestStore } from '../helpers/stores.js';
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
  let ts: TestStore;
  let gw: TestGateway;
  let echo: EchoServer;
  let lock: Database.Database | undefined;
  const scrape = async () => {
    const res = await fetch(new URL('/metrics', gw.url), { headers: gw.apiAuth });
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async () => {
    ts = sqliteTestStore();
    echo = await startEchoServer();
    // Nothing listens on this port: the member cannot open.
    const dead = `http://127.0.0.1:${await freePort()}/mcp`;
    gw = await startTestGateway(
      {
        store: ts.url,
        connections: { echo: { http: { url: echo.url, protocol: '2025-11-25' } }, dead: { http: { url: dead, protocol: '2025-11-25' } } },
        virtualServers: { box: { access: { groups: ['*'] }, members: [{ connection: 'echo' }, { connection: 'dead' }] } },
      },
      { recorderTimings: { probeMs: 100, sweepMs: 60_000 } },
    );
  });
  after(async () => {
    lock?.exec('ROLLBACK');
    lock?.close();
    await gw?.stop();
    await echo?.stop();
    await ts?.destroy();
  });

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
    lock = new Database(sqlitePath(ts.url));
    lock.exec('BEGIN EXCLUSIVE');
    // A session opening is a write; it fails, and the recorder stops accepting.
    const client = new Client({ name: 'health-metrics-store', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('echo'), { requestInit: { headers: gw.auth } })).catch(() => {});
    await waitFor(async () => sample(await scrape(), 'portcullis_recording_store_up') === 0, 'the store reported down');
    lock.exec('ROLLBACK');
    lock.close();
    lock = undefined;
    await waitFor(async () => sample(await scrape(), 'portcullis_recording_store_up') === 1, 'the store reported up again');
    await client.close().catch(() => {});
  });
});
