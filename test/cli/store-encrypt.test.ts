import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { isSealed } from '../../src/encryption/envelope.js';
import { openStore } from '../../src/store/open.js';
import { runCli } from '../helpers/cli.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { startTestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `portcullis store encrypt --config FILE` as a real process, on a store a gateway recorded plain: the payloads are
 * sealed, `sessions verify --all` passes, and a second run finds nothing to do.
 */

describe('portcullis store encrypt', () => {
  let dir: string;
  let echo: EchoServer;
  let plainConfig: string;
  let encryptedConfig: string;
  const store = () => `sqlite:${join(dir, 'data', 'recordings.db')}`;
  const marker = `MARKER-${randomBytes(6).toString('hex')}`;
  const ids: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-store-encrypt-'));
    echo = await startEchoServer();
    const config = { dataDir: join(dir, 'data'), store: store(), connections: { echo: { http: { url: echo.url } } } };
    plainConfig = join(dir, 'plain.yaml');
    writeFileSync(plainConfig, stringify({ ...config, listen: '127.0.0.1:1' }));
    const kek = join(dir, 'kek-1');
    writeFileSync(kek, randomBytes(32).toString('hex'), { mode: 0o600 });
    encryptedConfig = join(dir, 'encrypted.yaml');
    writeFileSync(
      encryptedConfig,
      stringify({ ...config, listen: '127.0.0.1:1', recording: { encryption: { current: 'k1', keys: [{ id: 'k1', local: `\${file:${kek}}` }] } } }),
    );
    const gw = await startTestGateway(config);
    try {
      for (let i = 0; i < 2; i++) {
        const id = await rawInitialize(gw.mcp('echo'), gw.auth);
        const headers = { ...mcpHeaders, ...gw.auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
        const call = await fetch(gw.mcp('echo'), {
          method: 'POST',
          headers,
          body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: marker } } }),
        });
        await call.text();
        await fetch(gw.mcp('echo'), { method: 'DELETE', headers });
        await waitFor(async () => (await gw.gateway.recorder!.store.getSession(id))?.status === 'closed', `session ${id} to be sealed`);
        ids.push(id);
      }
    } finally {
      await gw.stop();
    }
  });
  after(async () => {
    await echo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('encrypts the sessions in place; verify passes; running it again does nothing', async () => {
    const s = await openStore(store(), { reader: true });
    try {
      assert.ok(
        (await allEvents(s, ids[0]!)).some((e) => e.payload.includes(marker)),
        'recorded plain first',
      );
    } finally {
      await s.close();
    }
    const plain = await runCli(['store', 'encrypt', '--config', plainConfig]);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /recording\.encryption is not configured/);

    const run = await runCli(['store', 'encrypt', '--config', encryptedConfig]);
    assert.equal(run.code, 0, run.stderr);
    for (const id of ids) assert.match(run.stdout, new RegExp(`encrypted ${id} \\(\\d+ events\\)`));
    assert.match(run.stdout, /2 session\(s\) encrypted, 0 access request reason\(s\) encrypted; 0 open, 0 refused, 0 to retry/);

    const after = await openStore(store(), { reader: true });
    try {
      for (const id of ids) {
        const events = await allEvents(after, id);
        assert.ok(events.length > 0);
        for (const e of events) {
          assert.ok(isSealed(e.payload), `${id} event ${e.seq} is sealed`);
          assert.ok(!e.payload.includes(marker) && !(e.forwarded ?? '').includes(marker));
        }
      }
    } finally {
      await after.close();
    }

    const verified = await runCli(['sessions', 'verify', '--all', '--config', encryptedConfig]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /2 sessions: 2 verified, 0 not sealed yet \(live\), 0 FAILED; 2 ledgers: intact/);
    const one = await runCli(['sessions', 'verify', ids[0]!, '--config', encryptedConfig]);
    assert.equal(one.code, 0, one.stdout + one.stderr);
    assert.match(one.stdout, /verified .*encrypted in place at .* by store-encrypt-\S+ \(store encrypt\), its seal signed again/);

    const again = await runCli(['store', 'encrypt', '--config', encryptedConfig, '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { sessions: [], refused: [], open: [], raced: [], accessRequests: 0 });
  });
});
