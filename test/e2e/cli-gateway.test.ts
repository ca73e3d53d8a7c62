import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { stringify } from 'yaml';
import { cliPath } from '../helpers/client.js';
import { childPids, everythingStdio, isAlive } from '../helpers/everything.js';
import { freePort } from '../helpers/ports.js';
import { postInitialize } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/** `portcullis gateway` as operators run it: a real process, its banner, its exit codes and its shutdown. */

/**
 * Each CLI process runs in its own scratch folder (or the one given, to share its ./data with another), so the
 * default ./data directory is never the project's; PORTCULLIS_HOME keeps the token cache out of the real home.
 */
/** Runs a CLI command to its end; resolves with its exit code and output. */
async function runCliIn(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = startCli(args, {}, cwd);
  const [code] = (await once(cli.child, 'exit')) as [number];
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

/** Every CLI process started and still running: a test that fails before stopping its gateway leaves none behind. */
const running = new Set<ChildProcess>();

function startCli(args: string[], env: Record<string, string> = {}, sharedCwd?: string): { child: ChildProcess; stdout: () => string; stderr: () => string } {
  const cwd = sharedCwd ?? mkdtempSync(join(tmpdir(), 'portcullis-cli-cwd-'));
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd,
    env: { PORTCULLIS_HOME: join(cwd, '.portcullis'), ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (sharedCwd === undefined) child.once('exit', () => rmSync(cwd, { recursive: true, force: true }));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  return { child, stdout: () => out, stderr: () => err };
}

describe('portcullis gateway (the CLI process)', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));
  });
  after(async () => {
    // Stopped at once (its stdio servers end on their stdin's end): the file then ends instead of waiting on it.
    await Promise.all(
      [...running].map(async (child) => {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the URL and next steps, serves, and on SIGTERM waits the drain delay, drains and leaves no server process behind', async () => {
    const port = await freePort();
    const config = join(dir, 'ok.yaml');
    writeFileSync(
      config,
      stringify({
        listen: `127.0.0.1:${port}`,
        dataDir: join(dir, 'data'),
        identity: { dev: { users: { ops: ['operators'] } } },
        shutdown: { drainDelay: '1s' },
        // No warm spare: the test finds the session's server as the gateway's one child.
        connections: { everything: { stdio: { ...everythingStdio(), spares: 0 }, access: { groups: ['operators'] } } },
      }),
    );
    const cli = startCli(['gateway', '--config', config]);
    await waitFor(() => cli.stdout().includes('Portcullis is running'), 'the banner');
    assert.match(cli.stdout(), new RegExp(`http://127.0.0.1:${port}/mcp/everything`));
    assert.match(cli.stdout(), /Inspector/);
    assert.match(cli.stdout(), /login --dev ops --config FILE/);

    const login = await runCliIn(dir, ['login', '--dev', 'ops', '--config', config, '--print']);
    assert.equal(login.code, 0, login.stderr);
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp/everything`), {
      requestInit: { headers: { authorization: `Bearer ${login.stdout.trim()}` } },
    });
    const client = new Client({ name: 'cli-test', version: '1.0.0' });
    await client.connect(transport);
    const servers = childPids(cli.child.pid!);
    assert.equal(servers.length, 1, 'one stdio server for the session');
    // A call in flight when SIGTERM arrives is allowed to finish.
    let progressed = false;
    const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } }, undefined, {
      onprogress: () => (progressed = true),
    });
    // The server's first progress proves the call is in flight through the gateway.
    await waitFor(() => progressed, 'the call to be in flight');
    const signalled = Date.now();
    cli.child.kill('SIGTERM');
    const result = await call;
    assert.match(JSON.stringify(result), /completed/);
    const [code] = (await once(cli.child, 'exit')) as [number];
    assert.equal(code, 0);
    assert.ok(Date.now() - signalled >= 1000, 'it served on for the drain delay before closing');
    assert.match(cli.stderr(), /SIGTERM received: not ready, then draining/);
    await waitFor(() => !isAlive(servers[0]!), 'the stdio server to exit', 5000);
    await client.close().catch(() => {});
  });

  it('on SIGTERM answers /readyz 503 at once and serves its sessions through the drain delay, opening no new one; a second signal stops at once', async () => {
    const port = await freePort();
    const config = join(dir, 'delay.yaml');
    writeFileSync(
      config,
      stringify({
        listen: `127.0.0.1:${port}`,
        dataDir: join(dir, 'data-delay'),
        identity: { dev: { users: { ops: ['operators'] } } },
        // Longer than the test: only the second signal ends it.
        shutdown: { drainDelay: '10m' },
        connections: { everything: { stdio: everythingStdio(), access: { groups: ['operators'] } } },
      }),
    );
    const cli = startCli(['gateway', '--config', config]);
    await waitFor(() => cli.stdout().includes('Portcullis is running'), 'the banner');
    const login = await runCliIn(dir, ['login', '--dev', 'ops', '--config', config, '--print']);
    assert.equal(login.code, 0, login.stderr);
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const auth = { authorization: `Bearer ${login.stdout.trim()}` };
    const endpoint = new URL(`${base}/mcp/everything`);
    const client = new Client({ name: 'before', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(endpoint, { requestInit: { headers: auth } }));

    cli.child.kill('SIGTERM');
    let readyz: Response | undefined;
    await waitFor(async () => (readyz = await fetch(`${base}/readyz`)).status === 503, '/readyz to answer 503');
    assert.equal(((await readyz!.json()) as { status: string }).status, 'draining');
    // A session opened before is served through the delay.
    assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: 'late' } })).content, [{ type: 'text', text: 'Echo: late' }]);
    // A new one, which the load balancer still sends before it notices, would be cut off when the port closes: with no
    // other replica to open it on, the client is told to retry (by then it reaches a gateway that stays).
    const opening = await postInitialize(endpoint, auth);
    assert.equal(opening.status, 503, await opening.clone().text());
    assert.equal(opening.headers.get('retry-after'), '5');
    assert.match(((await opening.json()) as { error: { message: string } }).error.message, /shutting down; retry/);
    assert.equal(cli.child.exitCode, null, 'still serving');
    const servers = childPids(cli.child.pid!);

    cli.child.kill('SIGTERM');
    const [code] = (await once(cli.child, 'exit')) as [number];
    assert.equal(code, 143, 'stopped by the second signal, not by the end of the delay');
    assert.match(cli.stderr(), /SIGTERM received again: stopping at once/);
    for (const pid of servers) await waitFor(() => !isAlive(pid), `stdio server ${pid} to exit with the gateway`, 5000);
    await client.close().catch(() => {});
  });

  it('refuses a bad config with exit code 2 and an error naming the key', async () => {
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, 'connections:\n  everything:\n    stdio:\n      comand: node\n');
    const cli = startCli(['gateway', '--config', config]);
    const [code] = (await once(cli.child, 'exit')) as [number];
    assert.equal(code, 2);
    assert.match(cli.stderr(), /connections\.everything\.stdio\.comand: unknown key; expected one of: command, args, env, passEnv, cwd/);
  });

  it('`npm start` runs the quick start: embedded defaults fronting server-everything, server-filesystem and a virtual server over both, and prints what to do next', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
    const words = pkg.scripts.start.split(/\s+/);
    assert.deepEqual(words.slice(0, 2), ['node', 'bin/portcullis.js'], 'npm start runs the CLI');
    const port = await freePort();
    // The script's own arguments, with only the port moved off 8080 so the test cannot collide with a running gateway.
    const cwd = mkdtempSync(join(tmpdir(), 'portcullis-quick-start-'));
    const cli = startCli([...words.slice(2), '--listen', `127.0.0.1:${port}`], {}, cwd);
    await waitFor(() => cli.stdout().includes('Portcullis is running'), `the banner; stderr: ${cli.stderr()}`);
    assert.match(cli.stdout(), /embedded defaults/);
    assert.match(cli.stdout(), new RegExp(`MCP Inspector: .*http://127.0.0.1:${port}/mcp/everything`));
    assert.match(cli.stdout(), /StreamableHTTPClientTransport/);
    assert.match(cli.stdout(), /stdio clients: +command ".*node", args \[".*\/bin\/portcullis\.js","connect","everything","--gateway"/);
    assert.match(cli.stdout(), /login --dev alice --print/);
    assert.match(cli.stderr(), /dev identity is ON/);

    // Without a token the gateway answers 401 and points at its protected resource metadata.
    const anonymous = await fetch(`http://127.0.0.1:${port}/mcp/everything`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{}',
    });
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /resource_metadata=/);

    // The newcomer's next step, as the banner prints it: a dev token for alice.
    const login = await runCliIn(cwd, ['login', '--dev', 'alice', '--gateway', `http://127.0.0.1:${port}`, '--print']);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stderr, /Signed in to .* as alice \(dev identity; groups: engineers, approvers, admins, auditors\)/);
    // The web console: the banner's link, which login prints too, and the page it opens.
    const link = new RegExp(`web console: +(http://127\\.0\\.0\\.1:${port}/sign-in#dev=[A-Za-z0-9_-]{43})`).exec(cli.stdout())?.[1];
    assert.ok(link, cli.stdout());
    assert.ok(login.stderr.includes(`The web console: ${link}`), login.stderr);
    const page = await fetch(link);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<div id="app">/);
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp/everything`), {
      requestInit: { headers: { authorization: `Bearer ${login.stdout.trim()}` } },
    });
    const client = new Client({ name: 'quick-start', version: '1.0.0' });
    await client.connect(transport);
    assert.equal(client.getServerVersion()?.name, 'mcp-servers/everything');
    const result = await client.callTool({ name: 'echo', arguments: { message: 'hello' } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: hello' }]);
    await client.close();

    // The virtual server toolbox: one merged list of both demo servers, each call routed to the member that owns it.
    assert.match(cli.stdout(), new RegExp(`toolbox .*http://127.0.0.1:${port}/mcp/toolbox`));
    assert.match(cli.stdout(), /virtual server: .*\/mcp\/toolbox serves everything \(as everything__…\), files \(as files__…\) in one list/);
    const toolbox = new Client({ name: 'quick-start-toolbox', version: '1.0.0' });
    await toolbox.connect(
      new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp/toolbox`), {
        requestInit: { headers: { authorization: `Bearer ${login.stdout.trim()}` } },
      }),
    );
    const names = (await toolbox.listTools()).tools.map((t) => t.name);
    for (const name of ['everything__echo', 'everything__get-sum', 'files__read_text_file', 'files__list_directory'])
      assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
    assert.ok(!names.includes('files__write_file'), 'files reads only: its connection does not allow write_file');
    assert.ok(
      names.every((n) => n.startsWith('everything__') || n.startsWith('files__')),
      names.join(', '),
    );
    assert.deepEqual((await toolbox.callTool({ name: 'everything__echo', arguments: { message: 'merged' } })).content, [
      { type: 'text', text: 'Echo: merged' },
    ]);
    // The demo folder was made at the start, inside the data directory, with a README to read.
    const readme = await toolbox.callTool({ name: 'files__read_text_file', arguments: { path: join(cwd, 'data', 'demo-files', 'README.md') } });
    assert.match(JSON.stringify(readme.content), /quick start's demo folder/);
    await toolbox.close();
    cli.child.kill('SIGTERM');
    const [code] = (await once(cli.child, 'exit')) as [number];
    assert.equal(code, 0);
    rmSync(cwd, { recursive: true, force: true });
  });

  it('logs for people on a terminal (pretty) and JSON lines on a pipe or with --log-format json', async () => {
    const port = await freePort();
    const config = join(dir, 'terminal.yaml');
    writeFileSync(
      config,
      stringify({
        listen: `127.0.0.1:${port}`,
        dataDir: join(dir, 'terminal-data'),
        shutdown: { drainDelay: '0s' },
        connections: { everything: { stdio: { ...everythingStdio(), spares: 0 } } },
      }),
    );
    /** The gateway under a pseudo-terminal (script(1)), as a person runs it; what the terminal showed once it listens. */
    const onTerminal = async (extra: string[]): Promise<string> => {
      const command = ['exec', process.execPath, cliPath, 'gateway', '--config', config, ...extra].map((w) => `'${w}'`).join(' ');
      const cli = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
      let shown = '';
      cli.stdout.on('data', (d: Buffer) => (shown += d));
      try {
        await waitFor(() => shown.includes('gateway listening') && shown.includes('Portcullis is running'), `the gateway on a terminal: ${shown}`);
      } finally {
        // The gateway is script's one child (exec'd by its shell).
        for (const pid of childPids(cli.pid!)) process.kill(pid, 'SIGTERM');
        await once(cli, 'exit');
      }
      return shown;
    };
    const pretty = await onTerminal([]);
    // Written synchronously: what the gateway logged as it stopped reached the terminal before it exited.
    assert.match(pretty, /INFO: SIGTERM received: not ready, then draining sessions/);
    assert.match(pretty, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: gateway listening \{.*"url":"http:\/\/127\.0\.0\.1:\d+"/m);
    assert.doesNotMatch(pretty, /\{"level":/, 'no JSON line on a terminal');
    assert.match(pretty, /Logs are on stderr \(pretty for this terminal; --log-format json for JSON lines\)/);
    const json = await onTerminal(['--log-format', 'json']);
    assert.match(json, /^\{"level":30,.*"msg":"gateway listening"\}\r?$/m);

    const piped = startCli(['gateway', '--config', config]);
    await waitFor(() => piped.stderr().includes('gateway listening'), 'the gateway on a pipe');
    for (const line of piped.stderr().trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), `a JSON line: ${line}`);
    piped.child.kill('SIGTERM');
    await once(piped.child, 'exit');

    const wrong = startCli(['gateway', '--config', config, '--log-format', 'colourful']);
    const [code] = (await once(wrong.child, 'exit')) as [number];
    assert.equal(code, 2);
    assert.match(wrong.stderr(), /--log-format expects one of auto, json, pretty, found "colourful"/);
  });

  it('says clearly when the port is taken', async () => {
    const port = await freePort();
    const blocker = startCli(['gateway', '--listen', `127.0.0.1:${port}`]);
    await waitFor(() => blocker.stdout().includes('Portcullis is running'), 'the first gateway');
    const second = startCli(['gateway', '--listen', `127.0.0.1:${port}`]);
    const [code] = (await once(second.child, 'exit')) as [number];
    assert.equal(code, 1);
    assert.match(second.stderr(), /already in use/);
    blocker.child.kill('SIGTERM');
    await once(blocker.child, 'exit');
  });
});

describe('portcullis config check', () => {
  it('accepts the shipped example config', async () => {
    const example = new URL('../../../examples/portcullis.yaml', import.meta.url).pathname;
    const cli = startCli(['config', 'check', example], {
      REMOTE_MCP_TOKEN: 'example-token-value',
      PORTCULLIS_WEBHOOK_SECRET: 'example-webhook-secret',
      CONSOLE_CLIENT_SECRET: 'example-console-secret',
    });
    const [code] = (await once(cli.child, 'exit')) as [number];
    assert.equal(code, 0, cli.stderr());
    assert.match(
      cli.stdout(),
      /valid; listen 127.0.0.1:8080; connections: everything \(stdio\), files \(stdio\), remote \(http\); virtual servers: toolbox \(everything, files\);/,
    );
    assert.ok(!cli.stdout().includes('example-token-value') && !cli.stdout().includes('example-console-secret'));
    assert.doesNotMatch(cli.stdout(), /web console|roles\.auditors/, 'the example has a console people can sign in to, and auditors');
  });

  it('names a missing secret reference without starting anything', async () => {
    const example = new URL('../../../examples/portcullis.yaml', import.meta.url).pathname;
    const env = { ...process.env };
    delete env.REMOTE_MCP_TOKEN;
    const child = spawn(process.execPath, [cliPath, 'config', 'check', example], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 1);
    assert.match(err, /connections\.remote\.http\.headers\.Authorization: environment variable REMOTE_MCP_TOKEN is not set/);
  });
});
