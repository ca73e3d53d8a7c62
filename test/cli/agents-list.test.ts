import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type ScriptedServer, startScriptedServer } from '../helpers/hostile-discovery.js';

/**
 * `portcullis agents list --config FILE` beside the gateway: the live status comes from /api/agents with the local
 * API key of the config's data directory (no sign-in needed, no trust for loopback), and that key never goes to a
 * gateway named elsewhere.
 */

describe('portcullis agents list with the local API key', () => {
  let dir: string;
  let home: string;
  let configFile: string;
  let gw: TestGateway;
  let elsewhere: ScriptedServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-agents-list-'));
    home = mkdtempSync(join(tmpdir(), 'portcullis-agents-home-'));
    const config = { dataDir: join(dir, 'data'), connections: { vpc: { agent: 'vpc-agent', access: { groups: ['*'] } } } };
    gw = await startTestGateway(config);
    // The CLI's copy of the config: the same data directory, and the address the gateway really listens on.
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, stringify({ ...config, identity: { dev: { users: { tester: ['testers'] } } }, listen: new URL(gw.url).host }));
    elsewhere = await startScriptedServer();
    elsewhere.routes.set('/api/agents', { agents: [] });
  });
  after(async () => {
    await gw?.stop();
    await elsewhere?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });

  it('shows the live state without a sign-in', async () => {
    const run = await runCli(['agents', 'list', '--config', configFile], { env: { PORTCULLIS_HOME: home } });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^vpc-agent\s+disconnected \(no token: portcullis agents create vpc-agent\)/m);
  });

  it('never sends the local key to a gateway named with --gateway', async () => {
    const run = await runCli(['agents', 'list', '--config', configFile, '--gateway', elsewhere.url], { env: { PORTCULLIS_HOME: home } });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      elsewhere.requests.map((r) => [r.path, r.authorization]),
      [['/api/agents', undefined]],
    );
  });
});
