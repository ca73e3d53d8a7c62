import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CliRun, runCli } from '../helpers/cli.js';

/** `portcullis config check FILE` as a real process: its exit code and what it prints where. */

function configCheck(file: string, env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(['config', 'check', file], { env, timeoutMs: 15_000 });
}

describe('portcullis config check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-check-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function file(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  it('a valid file: exit 0 and a one-line summary on stdout, then warnings about access nobody has and a console nobody can sign in to', async () => {
    const path = file(
      'valid.yaml',
      'listen: 127.0.0.1:9123\nstore: postgres://pc@db:5432/pc?schema=audit\nidentity: {issuers: [{issuer: "https://idp.example.com"}]}\nconnections:\n  everything:\n    stdio: {command: node}\n    access: {groups: [eng]}\n  remote:\n    http: {url: "http://127.0.0.1:3001/mcp"}\n    access: {groups: ["*"]}\n  old:\n    sse: {url: "http://127.0.0.1:3001/sse"}\n',
    );
    const run = await configCheck(path);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      `${path}: valid; listen 127.0.0.1:9123; connections: everything (stdio), remote (http), old (sse); recording write-ahead to postgres://pc@db:5432/pc (schema audit); identity: https://idp.example.com\n` +
        `warning: connection 'old' has no access.groups, so nobody may open it; list groups, or ["*"] for every signed-in user\n` +
        'warning: nobody can sign in to the web console: give an issuer a client for it (identity.issuers[].clientId or .console.clientId)\n' +
        'warning: roles.auditors is empty: in the web console and /api/sessions, every person sees only their own sessions\n' +
        'warning: recordings are stored plain (no recording.encryption): whoever can read the store, or a backup of it, reads every message; configure a KEK (docs/recording.md, Keys and rotation)\n',
    );
    assert.equal(run.stderr, '');
  });

  it('recording.encryption: the summary names the KEKs and the current one, and no plain-recording warning; a bad one names the key', async () => {
    const kek = file('kek-1', `${randomBytes(32).toString('base64')}\n`);
    const path = file(
      'encrypted.yaml',
      `connections:\n  a:\n    stdio: {command: node}\n    access: {groups: ["*"]}\nrecording:\n  encryption:\n    current: k2\n    keys:\n      - {id: k1, local: "\${file:${kek}}"}\n      - {id: k2, awsKms: {keyId: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}\n`,
    );
    const run = await configCheck(path);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /; recording write-ahead to sqlite:\S+, encrypted \(current KEK k2; KEKs: k1 \(local\), k2 \(awsKms\)\); /);
    assert.doesNotMatch(run.stdout, /stored plain/);
    const bad = await configCheck(file('bad-kek.yaml', `recording:\n  encryption:\n    current: k9\n    keys:\n      - {id: k1, local: "\${file:${kek}}"}\n`));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /  - recording\.encryption\.current: 'k9' is not the id of any of recording\.encryption\.keys \(k1\)/);
  });

  it('virtual servers are summed up apart, with their members, and one nobody may open is warned of as a virtual server', async () => {
    const path = file(
      'virtual.yaml',
      'connections:\n  a:\n    stdio: {command: node}\n    access: {groups: [eng]}\n  b:\n    http: {url: "http://127.0.0.1:3001/mcp"}\n    access: {groups: [eng]}\nvirtualServers:\n  both:\n    members: [{connection: a}, {connection: b}]\n',
    );
    const run = await configCheck(path);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /; connections: a \(stdio\), b \(http\); virtual servers: both \(a, b\); recording /);
    assert.match(run.stdout, /^warning: virtual server 'both' has no access\.groups, so nobody may open it/m);
  });

  it('an invalid file: exit 1 and every problem on stderr, nothing on stdout', async () => {
    const path = file('invalid.yaml', 'listen: nowhere\nconnections:\n  a:\n    stdio: {comand: node}\n');
    const run = await configCheck(path);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.ok(run.stderr.startsWith(`invalid config ${path}:\n`), run.stderr);
    assert.match(run.stderr, /  - listen: expected HOST:PORT .*found "nowhere"/);
    assert.match(run.stderr, /  - connections\.a\.stdio\.comand: unknown key; expected one of: command, args, env, passEnv, cwd/);
    assert.doesNotMatch(run.stderr, /at .*\.js:\d+/, 'no stack trace');
  });

  it('a YAML syntax error: exit 1 and the line', async () => {
    const run = await configCheck(file('syntax.yaml', 'connections:\n  a:\n    stdio: {command: node\n'));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /  - line \d+, column \d+: /);
  });

  it('a missing file: exit 1 and the reason', async () => {
    const path = join(dir, 'does-not-exist.yaml');
    const run = await configCheck(path);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /cannot be read \(ENOENT\)/);
    assert.ok(run.stderr.includes(path));
  });

  it('resolves references from the environment without printing their values', async () => {
    const secret = 'cli-SECRET-VALUE-4711';
    const path = file('secret.yaml', 'connections:\n  a:\n    stdio:\n      command: node\n      env: {API_KEY: "${env:PORTCULLIS_TEST_KEY}"}\n');
    const ok = await configCheck(path, { PORTCULLIS_TEST_KEY: secret });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(!(ok.stdout + ok.stderr).includes(secret));

    const missing = await configCheck(path);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /connections\.a\.stdio\.env\.API_KEY: environment variable PORTCULLIS_TEST_KEY is not set/);
  });

  it('refuses a literal credential without printing it', async () => {
    const literal = 'cli-literal-hunter2';
    const path = file(
      'literal.yaml',
      `connections:\n  a:\n    http:\n      url: "http://127.0.0.1:1/mcp"\n      headers: {Authorization: "Bearer ${literal}"}\n`,
    );
    const run = await configCheck(path);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /connections\.a\.http\.headers\.Authorization: this header looks like a credential/);
    assert.ok(!(run.stdout + run.stderr).includes(literal));
  });
});
