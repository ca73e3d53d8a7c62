import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode } from '../../src/protocol/jsonrpc.js';
import { trustedKeys, verifySession } from '../../src/recording/verify.js';
import { sqlitePath } from '../../src/store/open.js';
import { startEchoServer, type EchoServer } from '../helpers/echo-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postInitialize } from '../helpers/raw-http.js';
import { deliveredTexts } from '../helpers/recorded.js';
import { backends, postgresSql, schemaOf, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Write-ahead recording fails closed: when the store stops taking writes mid-session, the session ends with a
 * clear JSON-RPC error, nothing reaches the upstream unrecorded, new sessions are refused; when the store is
 * back, sessions open again and the one that was cut off is sealed as such and verifies.
 */

interface Fault {
  inject(): Promise<void>;
  release(): Promise<void>;
}

/** SQLite: another process holds the database's write lock. PostgreSQL: inserts fail as on a full disk. */
function faultFor(backend: 'sqlite' | 'postgres', ts: TestStore): Fault {
  if (backend === 'sqlite') {
    let db: Database.Database | undefined;
    return {
      inject: async () => {
        db = new Database(sqlitePath(ts.url));
        db.exec('BEGIN EXCLUSIVE');
      },
      release: async () => {
        db?.exec('ROLLBACK');
        db?.close();
      },
    };
  }
  const schema = schemaOf(ts.url);
  return {
    inject: async () => {
      await postgresSql(
        `CREATE OR REPLACE FUNCTION portcullis_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'could not extend file: No space left on device (simulated)'; END $$;
         CREATE TRIGGER portcullis_test_fail BEFORE INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION portcullis_test_fail();`,
        [],
        schema,
      );
    },
    release: async () => {
      await postgresSql('DROP TRIGGER portcullis_test_fail ON events', [], schema);
    },
  };
}

for (const backend of backends) {
  describe(`the store fails mid-session (${backend.name} store)`, () => {
    let ts: TestStore;
    let gw: TestGateway;
    let echo: EchoServer;
    let fault: Fault;

    before(async () => {
      ts = backend.make();
      echo = await startEchoServer();
      gw = await startTestGateway(
        { store: ts.url, connections: { echo: { http: { url: echo.url } } } },
        { recorderTimings: { probeMs: 100, sweepMs: 60_000 } },
      );
      fault = faultFor(backend.name, ts);
    });
    after(async () => {
      await fault?.release().catch(() => {});
      await gw?.stop();
      await echo?.stop();
      await ts?.destroy();
    });

    async function connect(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
      const transport = new StreamableHTTPClientTransport(gw.mcp('echo'), { requestInit: { headers: gw.auth } });
      const client = new Client({ name: 'failure-test', version: '1.0.0' });
      await client.connect(transport);
      return { client, transport };
    }

    const ready = async () => (await fetch(new URL('/readyz', gw.url))).status;

    it('ends the session with a clear error, forwards nothing unrecorded, refuses new sessions, and recovers', async () => {
      const { client, transport } = await connect();
      const sessionId = transport.sessionId!;
      const before = await client.callTool({ name: 'echo', arguments: { message: 'before the fault' } });
      assert.deepEqual(before.content, [{ type: 'text', text: 'Echo: before the fault' }]);

      await fault.inject();
      await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'during the fault' } }), (err: Error & { code?: number }) => {
        assert.equal(err.code, ErrorCode.RecordingUnavailable, err.message);
        assert.match(err.message, /recording store unavailable/);
        return true;
      });
      assert.ok(!echo.received.some((m) => m.params?.arguments?.message === 'during the fault'), 'the unrecorded call never reached the upstream');
      await client.close().catch(() => {});

      // New sessions are refused, and readiness says why.
      const init = await postInitialize(gw.mcp('echo'), gw.auth);
      assert.equal(init.status, 503);
      assert.equal(init.headers.get('retry-after'), '5');
      const body = (await init.json()) as { id: number; error: { code: number; message: string } };
      assert.equal(body.id, 1);
      assert.equal(body.error.code, ErrorCode.RecordingUnavailable);
      assert.match(body.error.message, /new ones are refused until the recording store recovers/);
      const readiness = await fetch(new URL('/readyz', gw.url));
      assert.equal(readiness.status, 503);
      assert.equal(((await readiness.json()) as { status: string }).status, 'recording store unavailable');
      assert.ok(
        gw.log.lines.some((l) => /the recording store failed/.test(String(l.msg)) && Number(l.level) >= 50),
        'an error is logged',
      );

      // The store comes back: sessions open again, and the cut-off session is sealed as such.
      await fault.release();
      await waitFor(async () => (await ready()) === 200, 'the gateway to be ready again');
      const again = await connect();
      const after = await again.client.callTool({ name: 'echo', arguments: { message: 'after the fault' } });
      assert.deepEqual(after.content, [{ type: 'text', text: 'Echo: after the fault' }]);
      await again.transport.terminateSession();
      await again.client.close();

      const store = gw.gateway.recorder!.store;
      await waitFor(async () => (await store.getSession(sessionId))?.status === 'cut-off', 'the cut-off session to be sealed');
      const row = (await store.getSession(sessionId))!;
      assert.match(row.closeReason!, /cut off: .*recording store/);
      const key = gw.gateway.recorder!.key;
      const verified = await verifySession(store, sessionId, await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]));
      assert.equal(verified.status, 'verified', JSON.stringify(verified.problems));
      assert.ok(verified.notes.some((n) => /^cut off: /.test(n)));
      const forwarded = deliveredTexts(await store.events(sessionId, -1, 1000), 'toServer');
      assert.ok(forwarded.some((p) => p.includes('before the fault')));
      assert.ok(!forwarded.some((p) => p.includes('during the fault')), 'the recording does not claim the unforwarded call went out');
    });
  });
}
