import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

describe('portcullis mask test', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-mask-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('masks a JSON file with the configured rules and lists the redactions', async () => {
    const file = join(dir, 'response.json');
    writeFileSync(file, JSON.stringify({ content: [{ type: 'text', text: 'card 4111 1111 1111 1111, mail ada@example.com' }], db: { password: 'hunter22' } }));
    const config = join(dir, 'portcullis.yaml');
    writeFileSync(config, `masking: {exclude: [email]}\nconnections:\n  a:\n    stdio: {command: node}\n    access: {groups: ["*"]}\n`);
    const run = await runCli(['mask', 'test', file, '--config', config]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /card \[REDACTED:payment-card\], mail ada@example\.com/, 'email is excluded by the config');
    assert.match(run.stdout, /"password": "\[REDACTED:field-rule\]"/);
    assert.match(run.stderr, /2 redactions:/);
    assert.match(run.stderr, /payment-card +1 +\$\.content\[0\]\.text/);
    assert.match(run.stderr, /field-rule +1 +\$\.db\.password/);
  });

  it('masks plain text, and prints findings as JSON lines with --json', async () => {
    const file = join(dir, 'env.txt');
    writeFileSync(file, `GITHUB_TOKEN=ghp_${'x1Y'.repeat(12)}\nHOME=/root\n`);
    const run = await runCli(['mask', 'test', file, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
      [{ detector: 'github-token', path: '$', count: 1 }],
    );
  });

  it('says which file it cannot read', async () => {
    const run = await runCli(['mask', 'test', join(dir, 'missing.json')]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /cannot read .*missing\.json: ENOENT/);
  });
});
