import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { SecretSources } from '../../src/core/secrets.js';

/** The `audit` slice: defaults, and every bad sink config is an error naming its key path and the fix. */

const sources: SecretSources = { env: { HEC_TOKEN: 'hec-secret-value' }, readFile: () => '' };
const connections = { everything: { stdio: { command: 'node' } } };

function parse(audit: unknown, extra: Record<string, unknown> = {}) {
  return parseConfig(stringify({ connections, audit, ...extra }), 'audit.yaml', sources);
}

function problems(audit: unknown, extra: Record<string, unknown> = {}): string[] {
  try {
    parse(audit, extra);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.ok(!err.message.includes('hec-secret-value'), 'no resolved secret in the error');
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

function has(list: string[], re: RegExp): void {
  assert.ok(
    list.some((p) => re.test(p)),
    `${re} in\n${list.join('\n')}`,
  );
}

describe('config: audit', () => {
  it('is off without sinks; a sink takes every kind of audit.events unless it narrows them', () => {
    const none = parseConfig(stringify({ connections }), 'audit.yaml', sources).audit;
    assert.deepEqual(none.sinks, []);
    assert.deepEqual(none.events, ['lifecycle', 'verdict', 'review', 'access', 'message', 'redaction']);
    assert.equal(none.pollIntervalMs, 30_000);
    const a = parse({
      events: ['lifecycle', 'verdict', 'access'],
      sinks: [
        { name: 'splunk', http: { url: 'https://splunk.example.com:8088/services/collector/raw', headers: { Authorization: 'Splunk ${env:HEC_TOKEN}' } } },
        { name: 'local', events: ['access'], file: { path: '/var/log/portcullis/audit.jsonl', rotateAt: '1MiB', keep: 3 } },
      ],
    }).audit;
    assert.deepEqual(
      a.sinks.map((s) => [s.name, s.kind, s.events]),
      [
        ['splunk', 'http', ['lifecycle', 'verdict', 'access']],
        ['local', 'file', ['access']],
      ],
    );
  });

  it('names the key of each bad sink setting, and says what fixes it', () => {
    const list = problems({
      events: ['lifecycle', 'verdicts'],
      sinks: [
        { name: 'none' },
        { name: 'two', http: { url: 'https://x.example.com/' }, file: { path: '/tmp/a' } },
        { name: 'literal', http: { url: 'https://x.example.com/', headers: { Authorization: 'Splunk abc123' } } },
        { name: 'Bad Name', file: { path: '/tmp/a', rotateAt: 'big', keep: -1 } },
        { name: 'literal', http: { url: 'ftp://x.example.com/', batch: 0, retries: 3 } },
      ],
    });
    has(list, /^audit\.events\.1: .*lifecycle/);
    has(list, /^audit\.sinks\.0: a sink needs exactly one kind: http, file/);
    has(list, /^audit\.sinks\.1: a sink has exactly one kind, found http and file/);
    has(list, /^audit\.sinks\.2\.http\.headers\.Authorization: .*must be a reference such as \$\{env:NAME\}/);
    has(list, /^audit\.sinks\.3\.name: a sink name is lower-case letters/);
    has(list, /^audit\.sinks\.3\.file\.rotateAt: expected a size such as 16MiB/);
    has(list, /^audit\.sinks\.3\.file\.keep: /);
    has(list, /^audit\.sinks\.4\.http\.url: expected an http:\/\/ or https:\/\/ URL/);
    has(list, /^audit\.sinks\.4\.http\.batch: /);
    has(list, /^audit\.sinks\.4\.http\.retries: unknown key/);
  });

  it('refuses two sinks of one name, a sink kind not in audit.events, and sinks with recording off', () => {
    has(
      problems({
        events: ['lifecycle'],
        sinks: [
          { name: 'a', file: { path: '/tmp/a' } },
          { name: 'a', events: ['message'], file: { path: '/tmp/b' } },
        ],
      }),
      /^audit\.sinks\.1\.name: two sinks are named "a"/,
    );
    has(
      problems({ events: ['lifecycle'], sinks: [{ name: 'a', events: ['message'], file: { path: '/tmp/b' } }] }),
      /^audit\.sinks\.0\.events: message is not in audit\.events \(lifecycle\).*add it there/,
    );
    has(problems({ sinks: [{ name: 'a', file: { path: '/tmp/a' } }] }, { recording: { mode: 'off' } }), /^audit\.sinks: .*recording\.mode cannot be off/);
  });
});
