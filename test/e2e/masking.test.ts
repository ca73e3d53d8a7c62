import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { describeEvent } from '../../src/recording/transcript.js';
import { allEvents } from '../helpers/recorded.js';
import { wireTap } from '../helpers/wire-tap.js';

/**
 * Masking end to end: server-everything's `get-env` with secrets planted in the server's environment, and
 * server-filesystem reading files seeded with secrets and personal data, through the gateway. Neither what the
 * client received nor anything in the recording holds a secret; the redactions are recorded, without values.
 */

const planted = {
  aws: `AKIA${'Z7'.repeat(8)}`,
  awsSecret: 'wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY1',
  github: `ghp_${'k3Y'.repeat(12)}`,
  card: '4111 1111 1111 1111',
  email: 'grace.hopper@example.com',
  dbPassword: 'Sup3r-Secret-Pg',
};

describe('masking through the gateway', () => {
  let gw: TestGateway;
  let root: string;
  const sessions: string[] = [];
  const tap = wireTap();

  before(async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'portcullis-mask-fs-')));
    writeFileSync(join(root, '.env'), `DATABASE_URL=postgres://app:${planted.dbPassword}@db:5432/app\nGITHUB_TOKEN=${planted.github}\nLOG_LEVEL=info\n`);
    writeFileSync(join(root, 'customers.csv'), `id,name,email,card\n1,Grace,${planted.email},${planted.card}\n`);
    writeFileSync(join(root, 'config.json'), JSON.stringify({ service: 'billing', credentials: { user: 'svc', password: planted.dbPassword } }, null, 2));
    const filesystem = resolve(dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist/index.js');
    gw = await startTestGateway({
      connections: {
        everything: {
          // Secrets the server holds on its own (set by a wrapper): values the gateway injected would be scrubbed as
          // credentials before masking sees them (test/e2e/injected-credentials.test.ts); these only detectors find.
          stdio: {
            command: '/usr/bin/env',
            args: [
              `AWS_ACCESS_KEY_ID=${planted.aws}`,
              `AWS_SECRET_ACCESS_KEY=${planted.awsSecret}`,
              `GITHUB_TOKEN=${planted.github}`,
              everythingStdio().command,
              ...everythingStdio().args,
            ],
          },
        },
        files: { stdio: { command: process.execPath, args: [filesystem, root] } },
      },
    });
  });

  after(async () => {
    await gw?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function session(connection: string, run: (client: Client) => Promise<void>): Promise<void> {
    const transport = new StreamableHTTPClientTransport(gw.mcp(connection), { fetch: tap.fetch, requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'masking-e2e', version: '1.0.0' });
    await client.connect(transport);
    sessions.push(transport.sessionId!);
    await run(client);
    await transport.terminateSession();
    await client.close();
    await tap.settled();
  }

  it("get-env: the server's planted secrets reach the client masked", async () => {
    await session('everything', async (client) => {
      const result = JSON.stringify(await client.callTool({ name: 'get-env', arguments: {} }));
      for (const secret of [planted.aws, planted.awsSecret, planted.github]) assert.ok(!result.includes(secret), `${secret.slice(0, 8)}… reached the client`);
      assert.match(result, /REDACTED:aws-access-key-id/);
      assert.match(result, /REDACTED:github-token/);
      assert.match(result, /REDACTED:field-rule|REDACTED:aws-secret-access-key|REDACTED:password-assignment/);
    });
  });

  it('server-filesystem: secrets and personal data in files reach the client masked', async () => {
    await session('files', async (client) => {
      const env = JSON.stringify(await client.callTool({ name: 'read_text_file', arguments: { path: join(root, '.env') } }));
      const csv = JSON.stringify(await client.callTool({ name: 'read_text_file', arguments: { path: join(root, 'customers.csv') } }));
      const json = JSON.stringify(await client.callTool({ name: 'read_text_file', arguments: { path: join(root, 'config.json') } }));
      for (const [where, text] of [
        ['.env', env],
        ['customers.csv', csv],
        ['config.json', json],
      ] as const) {
        for (const secret of Object.values(planted)) assert.ok(!text.includes(secret), `${where}: ${secret.slice(0, 8)}… reached the client`);
      }
      assert.match(env, /LOG_LEVEL=info/, 'the rest of the file is intact');
      assert.match(csv, /\[REDACTED:email\]/);
      assert.match(csv, /\[REDACTED:payment-card\]/);
    });
  });

  it('nothing the client received holds a secret', () => {
    const all = tap.received.join('\n');
    for (const secret of Object.values(planted)) assert.ok(!all.includes(secret));
    assert.ok(tap.received.length > 0);
  });

  it('the recording holds no secret, and a redaction event for each masked message (detector, path, count; no value)', async () => {
    const store = gw.gateway.recorder!.store;
    let redactions = 0;
    for (const id of sessions) {
      const events = await allEvents(store, id);
      const text = JSON.stringify(events);
      for (const secret of Object.values(planted)) assert.ok(!text.includes(secret), `the recording of ${id} holds ${secret.slice(0, 8)}…`);
      for (const e of events.filter((x) => x.kind === 'verdict')) {
        const v = JSON.parse(e.payload) as {
          stage: string;
          sensitive?: boolean;
          details?: { redactions?: Array<{ detector: string; path: string; count: number }> };
        };
        if (v.stage !== 'mask') continue;
        assert.equal(v.sensitive, true);
        // What `portcullis sessions show` prints for it: where masking happened, by what.
        assert.match(describeEvent(e), /masked [a-z0-9-]+(?: ×\d+)? at \$\.result/);
        for (const r of v.details!.redactions!) {
          assert.ok(r.detector.length > 0 && r.path.startsWith('$.result') && r.count >= 1);
          redactions++;
        }
      }
      const withheld = events.filter((e) => e.kind === 'message' && e.payload.includes('"withheld"'));
      assert.ok(withheld.length >= 1, 'the original of a masked message is kept only as its digest');
      assert.ok((await store.getSession(id))!.redactions >= 1);
    }
    assert.ok(redactions >= 5, `redactions recorded: ${redactions}`);
  });
});

describe('masking client arguments in the recording only', () => {
  let gw: TestGateway;
  after(() => gw?.stop());

  it('the server receives the argument whole; the recording keeps it masked, with a redaction event', async () => {
    gw = await startTestGateway({
      connections: { everything: { stdio: everythingStdio(), masking: { enabled: false, recordArguments: true } } },
    });
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'args', version: '1.0.0' });
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    const result = JSON.stringify(await client.callTool({ name: 'echo', arguments: { message: `charge ${planted.card}` } }));
    assert.match(result, new RegExp(`Echo: charge ${planted.card}`), 'the server got the card number and echoed it');
    await transport.terminateSession();
    await client.close();
    const events = await allEvents(gw.gateway.recorder!.store, sessionId);
    const toServer = events.filter((e) => e.kind === 'message' && e.direction === 'toServer');
    assert.ok(toServer.length > 0);
    for (const e of toServer) assert.ok(!`${e.payload}${e.forwarded ?? ''}`.includes(planted.card), 'no card number in what the client sent, as recorded');
    assert.ok(toServer.some((e) => e.payload.includes('[REDACTED:payment-card]')));
    const notes = events
      .filter((e) => e.kind === 'verdict')
      .map((e) => JSON.parse(e.payload) as { stage: string; direction: string; details?: { recordingOnly?: boolean } });
    assert.ok(notes.some((v) => v.stage === 'mask' && v.direction === 'toServer' && v.details?.recordingOnly === true));
  });
});
