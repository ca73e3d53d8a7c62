import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { fixturePath, type RunningServer, startFixtureHttp } from '../helpers/everything.js';
import { startAuthProxy } from '../helpers/auth-proxy.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * `@modelcontextprotocol/conformance` 0.1.13 against the gateway. Server mode: every scenario that passes
 * against the project's conformance fixture directly must pass through the gateway, with the fixture
 * behind it over Streamable HTTP and over stdio. Client mode: the scenarios that apply to the gateway's
 * upstream side (no upstream OAuth) pass with the gateway between the SDK client and the test server.
 */

const run = promisify(execFile);
const conformanceBin = resolve(dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/conformance/package.json')), 'dist/index.js');

interface Check {
  id: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO';
  errorMessage?: string;
}

/** Scenario name → its checks, read from the per-scenario folders the suite writes. */
function readResults(dir: string, prefix: string): Map<string, Check[]> {
  const results = new Map<string, Check[]>();
  for (const entry of readdirSync(dir)) {
    const scenario = entry.slice(prefix.length).replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
    results.set(scenario, JSON.parse(readFileSync(join(dir, entry, 'checks.json'), 'utf8')) as Check[]);
  }
  return results;
}

const passed = (checks: Check[]) => checks.every((c) => c.status !== 'FAILURE');
const failures = (checks: Check[]) => checks.filter((c) => c.status === 'FAILURE').map((c) => `${c.id}: ${c.errorMessage ?? ''}`);

async function serverSuite(url: string, outDir: string): Promise<Map<string, Check[]>> {
  // The CLI's exit code reflects failures; the checks are what we compare, so a non-zero exit is not thrown.
  await run(process.execPath, [conformanceBin, 'server', '--url', url, '--suite', 'all', '-o', outDir], { timeout: 240_000 }).catch(
    (err: { stdout?: string }) => err,
  );
  return readResults(outDir, 'server-');
}

describe('MCP conformance suite', () => {
  let fixture: RunningServer;
  let gw: TestGateway;
  /** The suite's server mode cannot send a token: it reaches the gateway through a proxy that adds one. */
  let proxy: { url: string; stop(): Promise<void> };
  let work: string;
  let direct: Map<string, Check[]>;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-conformance-'));
    fixture = await startFixtureHttp('conformance-server.js');
    // The suite reaches the gateway through the proxy, so its pages' origin is the proxy's: configured as allowed,
    // as a deployment behind a proxy configures its public origin.
    proxy = await startAuthProxy(
      () => gw.url,
      () => `Bearer ${gw.token}`,
    );
    const proxyPort = new URL(proxy.url).port;
    gw = await startTestGateway({
      connections: {
        'fixture-http': { http: { url: fixture.url } },
        'fixture-stdio': { stdio: { command: process.execPath, args: [fixturePath('conformance-server.js'), 'stdio'] } },
      },
      http: { allowedOrigins: [`http://localhost:${proxyPort}`, `http://127.0.0.1:${proxyPort}`] },
    });
    direct = await serverSuite(fixture.url, join(work, 'direct'));
  });

  after(async () => {
    await proxy?.stop();
    await gw?.stop();
    await fixture?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('the fixture itself passes the server scenarios (the baseline is meaningful)', () => {
    assert.ok(direct.size >= 30, `scenarios run: ${[...direct.keys()].join(', ')}`);
    const failing = [...direct].filter(([, checks]) => !passed(checks)).map(([name]) => name);
    assert.deepEqual(failing, [], 'scenarios failing directly');
  });

  for (const connection of ['fixture-http', 'fixture-stdio']) {
    it(`every scenario that passes directly passes through the gateway (${connection} upstream)`, async () => {
      const through = await serverSuite(`${proxy.url}/mcp/${connection}`, join(work, connection));
      const regressions: string[] = [];
      for (const [scenario, checks] of direct) {
        if (!passed(checks)) continue;
        const mine = through.get(scenario);
        if (mine === undefined) regressions.push(`${scenario}: not run`);
        else if (!passed(mine)) regressions.push(`${scenario}: ${failures(mine).join('; ')}`);
      }
      assert.deepEqual(regressions, []);
      const rebinding = through.get('dns-rebinding-protection') ?? [];
      assert.ok(rebinding.some((c) => c.status === 'SUCCESS') && passed(rebinding), 'dns-rebinding-protection passes through the gateway');
    });
  }

  for (const scenario of ['initialize', 'tools_call', 'elicitation-sep1034-client-defaults', 'sse-retry']) {
    it(`client scenario ${scenario} passes with the gateway as the client's upstream side`, async () => {
      const outDir = join(work, `client-${scenario}`);
      const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(fixturePath('conformance-client.js'))}`;
      const { stdout } = await run(process.execPath, [conformanceBin, 'client', '--command', command, '--scenario', scenario, '-o', outDir], {
        timeout: 120_000,
      });
      const results = readResults(outDir, '');
      const checks = results.get(scenario) ?? [];
      assert.ok(
        checks.some((c) => c.status === 'SUCCESS'),
        stdout,
      );
      assert.deepEqual(failures(checks), []);
    });
  }
});
