import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { runCli } from '../helpers/cli.js';
import { cliPath } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { signInAsUser, startTestIdp, type TestIdp } from '../helpers/idp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `portcullis login` against a real OpenID provider (oidc-provider), end to end: the authorization-code flow
 * with PKCE on a loopback redirect and the device flow, the browser's part done against the IdP's own login and
 * consent pages; then `connect` with the cached token, and its refresh.
 */

interface Cached {
  accessToken: string;
  refreshToken?: string;
  expiresAtMs: number;
  subject: string;
  issuer: string;
}

describe('portcullis login with an OIDC provider', () => {
  let idp: TestIdp;
  let gw: TestGateway;
  let home: string;
  const readCache = () => JSON.parse(readFileSync(join(home, 'tokens.json'), 'utf8')) as Record<string, Cached>;

  before(async () => {
    idp = await startTestIdp();
    gw = await startTestGateway({
      identity: { issuers: [{ issuer: idp.issuer, clientId: 'portcullis-cli' }] },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
    });
    home = mkdtempSync(join(tmpdir(), 'portcullis-oidc-home-'));
  });
  after(async () => {
    await gw?.stop();
    await idp?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  function startLogin(args: string[]): { child: ChildProcess; stderr: () => string } {
    const child = spawn(process.execPath, [cliPath, 'login', '--gateway', gw.url, ...args], {
      env: { PATH: process.env.PATH ?? '', PORTCULLIS_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.stdout!.resume();
    return { child, stderr: () => err };
  }

  it('the authorization-code flow with PKCE: the browser comes back to the CLI, which caches the token', async () => {
    const login = startLogin(['--no-browser']);
    await waitFor(() => /https?:\/\/\S+\/auth\?\S+/.test(login.stderr()), `the sign-in URL; stderr: ${login.stderr()}`);
    const authUrl = /(https?:\/\/\S+\/auth\?\S+)/.exec(login.stderr())![1]!;
    const params = new URL(authUrl).searchParams;
    assert.equal(params.get('code_challenge_method'), 'S256');
    assert.equal(params.get('resource'), gw.url, 'the token is asked for the gateway');
    assert.match(params.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const callback = await signInAsUser(authUrl, 'ada', idp.issuer);
    assert.ok(callback !== undefined);
    const page = await fetch(callback);
    assert.match(await page.text(), /Signed in to Portcullis/);
    const [code] = (await once(login.child, 'exit')) as [number];
    assert.equal(code, 0, login.stderr());
    assert.match(login.stderr(), /Signed in to .* as ada \(http:\/\/127\.0\.0\.1:\d+\)/);
    const cached = readCache()[gw.url]!;
    assert.equal(cached.subject, 'ada');
    assert.ok(cached.refreshToken, 'a refresh token (offline_access) is kept');
    assert.equal(statSync(join(home, 'tokens.json')).mode & 0o777, 0o600);
  });

  it('connect uses the cached token, and refreshes it once it has expired', async () => {
    const before = readCache();
    const stale = { ...before[gw.url]!, expiresAtMs: Date.now() - 1000 };
    writeFileSync(join(home, 'tokens.json'), JSON.stringify({ ...before, [gw.url]: stale }), { mode: 0o600 });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [cliPath, 'connect', 'everything', '--gateway', gw.url],
      env: { PATH: process.env.PATH ?? '', PORTCULLIS_HOME: home },
      stderr: 'pipe',
    });
    const client = new Client({ name: 'desktop', version: '1.0.0' });
    await client.connect(transport);
    assert.match(JSON.stringify(await client.callTool({ name: 'echo', arguments: { message: 'refreshed' } })), /Echo: refreshed/);
    await client.close();
    const after = readCache()[gw.url]!;
    assert.notEqual(after.accessToken, stale.accessToken, 'a new access token');
    assert.ok(after.expiresAtMs > Date.now(), 'valid again');
    const sessions = await gw.gateway.recorder!.store.listSessions({ subject: 'ada', limit: 5 });
    assert.ok(sessions.some((s) => s.groups.includes('eng')));
  });

  it('the device flow: the code is approved on another device, and the CLI picks the token up', async () => {
    const login = startLogin(['--device']);
    await waitFor(() => /visit (\S+)/.test(login.stderr()), `the verification URL; stderr: ${login.stderr()}`);
    const verify = /visit (\S+)/.exec(login.stderr())![1]!;
    assert.match(login.stderr(), /code: \S+/);
    assert.equal(await signInAsUser(verify, 'bob', idp.issuer), undefined, 'the IdP shows its done page');
    const [code] = (await once(login.child, 'exit')) as [number];
    assert.equal(code, 0, login.stderr());
    assert.equal(readCache()[gw.url]!.subject, 'bob');
  });

  it("a refused sign-in ends the CLI with the IdP's reason", async () => {
    const login = startLogin(['--no-browser']);
    await waitFor(() => /redirect_uri=(\S+?)(&|\s)/.test(login.stderr()), 'the sign-in URL');
    const redirect = decodeURIComponent(/redirect_uri=(\S+?)(&|\s)/.exec(login.stderr())![1]!);
    await fetch(`${redirect}?error=access_denied&error_description=End-User+aborted+interaction`);
    const [code] = (await once(login.child, 'exit')) as [number];
    assert.equal(code, 1);
    assert.match(login.stderr(), /refused the sign-in: access_denied End-User aborted interaction/);
  });

  it('on a gateway with the dev identity, says to use --dev', async () => {
    const dev = await startTestGateway({ connections: { everything: { stdio: everythingStdio() } } });
    try {
      const run = await runCli(['login', '--gateway', dev.url], { env: { PORTCULLIS_HOME: home } });
      assert.equal(run.code, 2);
      assert.match(run.stderr, /runs the dev identity, so sign in with --dev <user>/);
    } finally {
      await dev.stop();
    }
  });
});
