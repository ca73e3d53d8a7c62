import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { eventAad, isSealed, openText, reviewParamsAad } from '../../src/encryption/envelope.js';
import { Keyring } from '../../src/encryption/keyring.js';
import { localKek } from '../../src/encryption/keks/local.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { backends, databaseDump, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A gateway given a keyring records encrypted, end to end (issue 21): a real client, the pipeline, server-everything
 * over stdio. What the call said is in the recording (it opens with the session's data key), a held call's params
 * are sealed in its review, and neither is anywhere in the database: not in the SQLite file and its WAL, not in any
 * row of any PostgreSQL table. Markers are letters only, so that masking leaves them as they are.
 */

const echoed = 'GATEWAYECHOMARKERSERVALJACANA';
const held = 'GATEWAYHELDMARKERTAMARINCOATI';
const users = { alice: ['eng'], bob: ['leads'] };
/** server-everything's echo takes `message`; one that starts with "hold" waits for one of the leads. */
const holdRule = { name: 'held', when: 'tool.name == "echo" && arguments.message.startsWith("hold")', action: 'review', approvers: ['leads'] };

for (const backend of backends) {
  describe(`a gateway recording encrypted (${backend.name})`, () => {
    let ts: TestStore;
    let gw: TestGateway;
    let reader: Store;
    const material = randomBytes(32);
    // The gateway reads the KEK from its config (a file reference); the test opens what it recorded with the same key.
    const kekFile = join(mkdtempSync(join(tmpdir(), 'portcullis-kek-')), 'kek');
    writeFileSync(kekFile, material.toString('base64'), { mode: 0o600 });
    const kek = localKek('k1', material);
    const keyring = new Keyring([kek], kek);
    const clients: Client[] = [];
    let stopped = false;

    before(async () => {
      ts = backend.make();
      gw = await startTestGateway(
        {
          store: ts.url,
          identity: { dev: { users } },
          rules: [holdRule],
          recording: { encryption: { current: 'k1', keys: [{ id: 'k1', local: `\${file:${kekFile}}` }] } },
          connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
        },
        { reviewPollMs: 100 },
      );
      reader = await openStore(ts.url);
    });
    after(async () => {
      for (const c of clients) await c.close().catch(() => {});
      if (!stopped) await gw?.stop();
      await reader?.close();
      await ts?.destroy();
    });

    it('records what a call said sealed, seals a held call params, and leaves neither in a dump of the database', async () => {
      const client = new Client({ name: 'encrypted-e2e', version: '1.0.0' });
      const token = await gw.tokenFor('alice');
      await client.connect(new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      clients.push(client);
      const r = (await client.callTool({ name: 'echo', arguments: { message: echoed } })) as CallToolResult;
      assert.match(JSON.stringify(r.content), new RegExp(echoed));

      // A call the rule holds: its review is stored with the params sealed under the session's data key.
      const call = client.callTool({ name: 'echo', arguments: { message: `hold ${held}` } }, undefined, { timeout: 60_000 });
      call.catch(() => {});
      await waitFor(async () => (await reader.listReviews({ status: 'pending', limit: 10 })).length > 0, 'the held call to be stored for review');
      const [review] = await reader.listReviews({ status: 'pending', limit: 10 });
      assert.ok(isSealed(review!.params), `review params stored plain: ${review!.params}`);
      const [dk] = await reader.dataKeys([review!.sessionId]);
      const key = await keyring.dataKey(dk!);
      assert.match(openText(key, reviewParamsAad(review!.id), review!.params, 'params'), new RegExp(held));

      // The session's recording holds the echoed text, sealed: opened with its key, it is there.
      const events = await reader.events(review!.sessionId, -1, 1000);
      assert.ok(events.length > 0);
      const opened = events.map((e) => {
        assert.ok(isSealed(e.payload), `event ${e.seq} (${e.kind}) stored plain`);
        return openText(key, eventAad(e.sessionId, e.seq, 'payload'), e.payload, `event ${e.seq}`);
      });
      assert.ok(
        opened.some((p) => p.includes(echoed)),
        'the echoed text is in the recording',
      );

      // The gateway stops: the held call is given up, the session sealed, everything queued written.
      await client.close();
      clients.length = 0;
      await gw.stop();
      stopped = true;
      assert.equal((await reader.getSession(review!.sessionId))?.status, 'closed');
      const dump = await databaseDump(ts, backend.name);
      for (const marker of [echoed, held]) assert.ok(!dump.includes(marker), `${marker} is in the database dump`);
    });
  });
}
