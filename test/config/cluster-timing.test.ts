import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { SecretSources } from '../../src/core/secrets.js';

/** cluster.goneAfter against what a heartbeat may take: a config where one slow beat takes a live replica for gone is refused. */

const noSecrets: SecretSources = {
  env: {},
  readFile: (path) => {
    throw Object.assign(new Error(`no file ${path}`), { code: 'ENOENT' });
  },
};
const base = 'connections:\n  a:\n    stdio: {command: node}\nstore: postgres://portcullis@db/portcullis\n';

function problems(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml', noSecrets);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail(`expected the config to be refused:\n${text}`);
}

describe('cluster.goneAfter and what a heartbeat may take', () => {
  it('refuses a goneAfter that leaves a beat less than recording.writeTimeout and as long again for a pooled connection, naming both keys and the fix', () => {
    // Beats every 0.67 s, so 1.33 s to land; a beat may take 5 s (writeTimeout) and 5 s waiting for a connection.
    const [problem, ...others] = problems(`${base}cluster: {goneAfter: 2s}\n`);
    assert.deepEqual(others, []);
    assert.match(problem!, /^cluster\.goneAfter: cluster\.goneAfter \(2s\) leaves a replica's heartbeat 1334ms to land/);
    assert.match(problem!, /recording\.writeTimeout \(5s\) and as long again/);
    assert.match(problem!, /taken for gone/);
    assert.match(problem!, /Set cluster\.goneAfter to at least 15s, or recording\.writeTimeout to at most 600ms$/);
    assert.match(
      problems(`${base}cluster: {goneAfter: 10s}\nrecording: {writeTimeout: 4s}\n`)[0]!,
      /at least 12s, or recording\.writeTimeout to at most 3300ms$/,
    );
  });

  it('accepts the defaults, and either fix', () => {
    for (const ok of [
      '',
      'cluster: {goneAfter: 15s}\n',
      'cluster: {goneAfter: 2s}\nrecording: {writeTimeout: 600ms}\n',
      'recording: {writeTimeout: 30s}\ncluster: {goneAfter: 90s}\n',
    ]) {
      const c = parseConfig(`${base}${ok}`, 'test.yaml', noSecrets);
      assert.ok(c.cluster.goneAfterMs - c.cluster.heartbeatMs >= 2 * c.recording.writeTimeoutMs);
    }
  });

  it('lets a lone gateway on SQLite be (nobody takes it for gone)', () => {
    const c = parseConfig('connections:\n  a:\n    stdio: {command: node}\ncluster: {goneAfter: 2s}\n', 'test.yaml', noSecrets);
    assert.equal(c.cluster.goneAfterMs, 2000);
  });
});
