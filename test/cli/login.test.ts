import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { cliPath } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** `portcullis login --dev`, the token cache, `connect` using it, and `mcp-config`, as real processes. */

describe('login --dev, connect and mcp-config', () => {
  let dir: string;
  let home: string;
  let config: string;
  let gw: TestGateway;

  /** `portcullis connect <name>` as a desktop client runs it: over stdio, with the token cache in `tokenHome`. */
  const connectTransport = (name: string, tokenHome = home) =>
    new StdioClientTransport({
      command: process.execPath,
      args: [cliPath, 'connect', name, '--config', config],
      env: { PATH: process.env.PATH ?? '', PORTCULLIS_HOME: tokenHome },
      stderr: 'pipe',
    });
  /** A desktop client connected to `name` through `portcullis connect`, with the cached token. */
  const connectedClient = async (name: string) => {
    const client = new Client({ name: 'desktop', version: '1.0.0' });
    await client.connect(connectTransport(name));
    return client;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-login-'));
    home = join(dir, 'home');
    const settings = {
      dataDir: join(dir, 'data'),
      identity: { dev: { users: { ada: ['eng'], eve: ['sales'] } } },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
      // A virtual server is a name on the gateway like a connection: connect and mcp-config serve it alike.
      virtualServers: { toolbox: { access: { groups: ['eng'] }, members: [{ connection: 'everything', prefix: 'ev__' }] } },
    };
    gw = await startTestGateway(settings);
    // The same config as the gateway's, as an operator would pass it to the CLI.
    config = join(dir, 'portcullis.yaml');
    writeFileSync(config, stringify({ ...settings, listen: `127.0.0.1:${new URL(gw.url).port}` }));
  });
  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs in a dev user, caches the token readable by its owner only, and prints it with --print', async () => {
    const run = await runCli(['login', '--dev', 'ada', '--config', config, '--print'], { env: { PORTCULLIS_HOME: home } });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Signed in to http:\/\/127\.0\.0\.1:\d+ as ada \(dev identity; groups: eng\)/);
    const token = run.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const file = join(home, 'tokens.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(home).mode & 0o777, 0o700);
    const cached = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { accessToken: string; subject: string }>;
    assert.equal(cached[gw.url]?.accessToken, token);
    assert.equal(cached[gw.url]?.subject, 'ada');
  });

  it('refuses a user the config does not list, naming the ones it does', async () => {
    const run = await runCli(['login', '--dev', 'mallory', '--config', config], { env: { PORTCULLIS_HOME: home } });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /"mallory" is not a dev user; the config lists: ada, eve/);
  });

  it('connect uses the cached token: a stdio client works with no token of its own', async () => {
    const client = await connectedClient('everything');
    assert.match(JSON.stringify(await client.callTool({ name: 'echo', arguments: { message: 'via cache' } })), /Echo: via cache/);
    await client.close();
    const sessions = await gw.gateway.recorder!.store.listSessions({ subject: 'ada', limit: 5 });
    assert.ok(sessions.length >= 1);
  });

  it('connect reaches a virtual server like a connection: its merged list, and a call routed to its member', async () => {
    const client = await connectedClient('toolbox');
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('ev__echo'), names.join(', '));
    assert.ok(
      names.every((n) => n.startsWith('ev__')),
      `every tool carries the member's prefix: ${names.join(', ')}`,
    );
    assert.match(JSON.stringify(await client.callTool({ name: 'ev__echo', arguments: { message: 'via toolbox' } })), /Echo: via toolbox/);
    await client.close();
  });

  it('a virtual server is served on the legacy HTTP+SSE edge too, at /sse/<name>', async () => {
    const token = await gw.tokenFor('ada');
    const transport = new SSEClientTransport(gw.sse('toolbox'), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'legacy', version: '1.0.0' });
    await client.connect(transport);
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'ev__echo'));
    assert.match(JSON.stringify(await client.callTool({ name: 'ev__echo', arguments: { message: 'over sse' } })), /Echo: over sse/);
    await client.close();
  });

  it('connect without any token says how to sign in', async () => {
    const transport = connectTransport('everything', join(dir, 'empty-home'));
    let stderr = '';
    transport.stderr!.on('data', (d: Buffer) => (stderr += d));
    const client = new Client({ name: 'desktop', version: '1.0.0' });
    await assert.rejects(client.connect(transport));
    await client.close().catch(() => {});
    assert.match(stderr, /no token for http:\/\/127\.0\.0\.1:\d+: sign in with `portcullis login`/);
  });

  it('mcp-config prints a ready-to-paste entry that runs connect', async () => {
    const run = await runCli(['mcp-config', 'everything', '--config', config]);
    assert.equal(run.code, 0, run.stderr);
    const entry = (JSON.parse(run.stdout) as { mcpServers: Record<string, { command: string; args: string[] }> }).mcpServers.everything!;
    assert.equal(entry.command, process.execPath);
    assert.deepEqual(entry.args, [cliPath, 'connect', 'everything', '--gateway', gw.url]);
    const http = await runCli(['mcp-config', 'everything', '--config', config, '--http']);
    assert.deepEqual(JSON.parse(http.stdout), { mcpServers: { everything: { type: 'http', url: `${gw.url}/mcp/everything` } } });
  });

  it('mcp-config prints the same entries for a virtual server', async () => {
    const run = await runCli(['mcp-config', 'toolbox', '--config', config]);
    assert.equal(run.code, 0, run.stderr);
    const entry = (JSON.parse(run.stdout) as { mcpServers: Record<string, { command: string; args: string[] }> }).mcpServers.toolbox!;
    assert.deepEqual(entry.args, [cliPath, 'connect', 'toolbox', '--gateway', gw.url]);
    const http = await runCli(['mcp-config', 'toolbox', '--config', config, '--http']);
    assert.deepEqual(JSON.parse(http.stdout), { mcpServers: { toolbox: { type: 'http', url: `${gw.url}/mcp/toolbox` } } });
  });

  it('mcp-config with the config names what it has when the name is neither a connection nor a virtual server', async () => {
    const run = await runCli(['mcp-config', 'toolbx', '--config', config]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /has no connection or virtual server named "toolbx"; it has: everything, toolbox/);
  });
});
