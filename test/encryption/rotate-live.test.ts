import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Keyring } from '../../src/encryption/keyring.js';
import { rotateDataKeys } from '../../src/encryption/rotate.js';
import { trustedKeys, verifySession } from '../../src/recording/verify.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { seedDataKeys, writeLocalKek } from '../helpers/encryption.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { backends, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A rotation while a gateway serves: sessions recorded under k1, the gateway restarted with k2 current (step 2 of the
 * rolling procedure), then `keys rotate`'s work running while clients open, use and close sessions. Nothing is lost:
 * every session is recorded whole and verifies, and every data key ends under k2 and unwraps there. Besides the data
 * keys the recorder writes, the store is seeded with data keys under k1 written through the store, so the rotation
 * has work to do on its own (the data keys of sessions come with the recorder's encryption, another part of issue 21).
 */

for (const backend of backends) {
  describe(`rotation under live traffic (${backend.name})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-rotate-live-'));
    let ts: TestStore;
    let echo: EchoServer;
    let gw: TestGateway | undefined;
    let store: Store | undefined;
    const k1 = writeLocalKek(join(dir, 'k1'), 'k1');
    const k2 = writeLocalKek(join(dir, 'k2'), 'k2');

    before(async () => {
      ts = backend.make();
      echo = await startEchoServer();
    });
    after(async () => {
      await gw?.stop();
      await store?.close();
      await echo?.stop();
      await ts?.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    const start = (current: string, keys: Array<[string, string]>) =>
      startTestGateway({
        dataDir: join(dir, 'data'),
        store: ts.url,
        connections: { echo: { http: { url: echo.url }, tools: { pin: false } } },
        recording: { encryption: { current, keys: keys.map(([id, local]) => ({ id, local })) } },
      });

    /** One whole session: open, one call, closed by the client. */
    async function session(on: TestGateway, message: string): Promise<string> {
      const transport = new StreamableHTTPClientTransport(on.mcp('echo'), { requestInit: { headers: on.auth } });
      const client = new Client({ name: 'rotation', version: '1.0.0' });
      await client.connect(transport);
      const id = transport.sessionId!;
      const result = (await client.callTool({ name: 'echo', arguments: { message } })) as { content: Array<{ text: string }> };
      assert.equal(result.content[0]!.text, `Echo: ${message}`);
      await transport.terminateSession();
      await client.close();
      return id;
    }

    it('loses nothing: every session recorded whole and verified, every data key under the new KEK', async () => {
      gw = await start('k1', [['k1', k1.ref]]);
      const sessions = [await session(gw, 'before-0'), await session(gw, 'before-1')];
      store = await openStore(ts.url, { reader: true });
      const old = new Keyring([k1.kek], k1.kek);
      await seedDataKeys(
        store,
        old,
        Array.from({ length: 20 }, (_, i) => `seed-${String(i).padStart(2, '0')}`),
      );
      await gw.stop();
      gw = undefined;

      const serving = await start('k2', [
        ['k1', k1.ref],
        ['k2', k2.ref],
      ]);
      gw = serving;
      let rotating = true;
      let opened = 0;
      const traffic = Array.from({ length: 4 }, async (_, c) => {
        const made: string[] = [];
        do {
          made.push(await session(serving, `live-${c}-${made.length}`));
          opened++;
        } while (rotating);
        return made;
      });
      let batches = 0;
      const result = await rotateDataKeys(store, new Keyring([k1.kek, k2.kek], k2.kek), {
        batchSize: 3,
        // The rotation goes on only once sessions have been opened and closed since it began: they overlap for certain.
        onBatch: async () => {
          if (++batches === 1) {
            const at = opened;
            await waitFor(() => opened >= at + 4, 'sessions to be recorded while the rotation runs');
          }
        },
      });
      rotating = false;
      for (const made of await Promise.all(traffic)) sessions.push(...made);
      assert.deepEqual(result.failed, []);
      assert.equal(result.lacking.size, 0);
      assert.equal(result.unfinished, false);
      assert.ok((result.rewrapped.get('k1') ?? 0) >= 20, 'the seeded data keys at least');
      const key = serving.gateway.recorder!.key;
      await serving.stop();
      gw = undefined;

      const counts = await store.dataKeyCounts();
      assert.deepEqual(
        counts.map((c) => c.kekId),
        ['k2'],
        'every data key is under k2',
      );
      const rows = await store.dataKeys([...sessions, ...Array.from({ length: 20 }, (_, i) => `seed-${String(i).padStart(2, '0')}`)]);
      assert.equal(rows.length, counts[0]!.count);
      const after = new Keyring([k2.kek], k2.kek);
      for (const row of rows) await after.dataKey(row);

      const trusted = await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]);
      assert.ok(sessions.length >= 2 + 4);
      for (const id of sessions) {
        const r = await verifySession(store, id, trusted);
        assert.equal(r.status, 'verified', `${id}: ${JSON.stringify(r.problems)}`);
        const s = await store.getSession(id);
        assert.equal(s?.status, 'closed', id);
        // initialize and its answer, initialized, the call and its answer at least: the session is there whole.
        assert.ok(r.events >= 5, `${id}: ${r.events} events`);
      }
    });
  });
}
