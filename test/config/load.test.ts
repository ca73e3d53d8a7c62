import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { SecretSources } from '../../src/core/secrets.js';

/** The config file as operators write it: defaults filled in, and every mistake named by key path, found value and expectation. */

const noSecrets: SecretSources = {
  env: {},
  readFile: (path) => {
    throw Object.assign(new Error(`no file ${path}`), { code: 'ENOENT' });
  },
};

const oneStdio = 'connections:\n  a:\n    stdio: {command: node}\n';

function parse(text: string, sources: SecretSources = noSecrets): GatewayConfig {
  return parseConfig(text, 'test.yaml', sources);
}

/** The problems a config has; fails the test when it parses. */
function problems(text: string, sources: SecretSources = noSecrets): string[] {
  try {
    parse(text, sources);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.name, 'ConfigError');
    assert.equal(err.source, 'test.yaml');
    assert.ok(err.problems.length > 0);
    assert.match(err.message, /^invalid config test\.yaml:\n/);
    for (const p of err.problems) assert.ok(err.message.includes(`  - ${p}`), `message lists ${p}`);
    return err.problems;
  }
  assert.fail(`expected the config to be refused:\n${text}`);
}

/** A pattern matching `text` literally. */
function literally(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
}

/** Asserts one of the problems matches every pattern given (path, found, expected). */
function hasProblem(list: string[], ...patterns: RegExp[]): void {
  assert.ok(
    list.some((p) => patterns.every((re) => re.test(p))),
    `no problem matches ${patterns.join(' and ')}; problems were:\n${list.join('\n')}`,
  );
}

describe('parseConfig: valid configs', () => {
  it('fills every default around a single stdio connection', () => {
    const c = parse(oneStdio);
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8080 });
    assert.equal(c.limits.maxMessageBytes, 16 * 1024 * 1024);
    assert.equal(c.store.reveal(), 'sqlite:data/portcullis.db');
    assert.equal(c.recording.mode, 'write-ahead');
    assert.equal(c.recording.sqliteSync, 'normal');
    assert.equal(c.recording.retentionMs, 0);
    assert.equal(c.recording.writeTimeoutMs, 5000);
    assert.deepEqual(c.recording.trustedKeys, []);
    assert.equal(c.dataDir, './data');
    assert.deepEqual(c.http, { keepAliveMs: 15_000, eventBufferSize: 1000, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, idleTimeoutMs: 65_000 });
    assert.equal(c.http.allowedHosts, undefined);
    assert.equal(c.http.allowedOrigins, undefined);
    assert.equal(c.sessions.idleTimeoutMs, 30 * 60_000);
    assert.deepEqual(c.shutdown, { drainDelayMs: 5000, drainTimeoutMs: 10_000 });
    assert.equal(c.log.level, 'info');
    assert.deepEqual(c.pins, { scan: 'quarantine', duplicateNames: 'flag' });
    assert.deepEqual([...c.connections.keys()], ['a']);
    const a = c.connections.get('a')!;
    assert.equal(a.name, 'a');
    assert.equal(a.description, undefined);
    assert.deepEqual(a.tools, { pin: true });
    assert.equal(a.upstream.kind, 'stdio');
    assert.ok(a.upstream.kind === 'stdio');
    assert.equal(a.upstream.command, 'node');
    assert.deepEqual(a.upstream.args, []);
    assert.deepEqual(a.upstream.env, {});
    assert.equal(a.upstream.cwd, undefined);
  });

  it('reads a stdio connection with args, env, cwd, description and tool rules', () => {
    const c = parse(
      [
        'connections:',
        '  fs-1:',
        '    description: files',
        '    stdio:',
        '      command: npx',
        '      args: [-y, "@modelcontextprotocol/server-filesystem", /tmp]',
        '      env: {LOG_LEVEL: debug}',
        '      cwd: /srv',
        '    tools: {allow: ["read_*", list_directory], deny: [read_secret]}',
      ].join('\n'),
    );
    const fs = c.connections.get('fs-1')!;
    assert.equal(fs.description, 'files');
    assert.deepEqual(fs.tools, { allow: ['read_*', 'list_directory'], deny: ['read_secret'], pin: true });
    assert.ok(fs.upstream.kind === 'stdio');
    assert.deepEqual(
      fs.upstream.args.map((a) => a.reveal()),
      ['-y', '@modelcontextprotocol/server-filesystem', '/tmp'],
    );
    assert.equal(fs.upstream.env.LOG_LEVEL!.reveal(), 'debug');
    assert.equal(fs.upstream.cwd, '/srv');
  });

  it('reads http and sse connections with their URL and headers, keeping connection order', () => {
    const c = parse(
      [
        'connections:',
        '  remote:',
        '    http: {url: "https://mcp.example.com/mcp", headers: {X-Tenant: acme}}',
        '  legacy_1:',
        '    sse: {url: "http://127.0.0.1:3001/sse"}',
        '  local:',
        '    stdio: {command: node}',
      ].join('\n'),
    );
    assert.deepEqual([...c.connections.keys()], ['remote', 'legacy_1', 'local']);
    const remote = c.connections.get('remote')!.upstream;
    assert.ok(remote.kind === 'http');
    assert.equal(remote.url.reveal(), 'https://mcp.example.com/mcp');
    assert.equal(remote.headers['X-Tenant']!.reveal(), 'acme');
    const legacy = c.connections.get('legacy_1')!.upstream;
    assert.ok(legacy.kind === 'sse');
    assert.equal(legacy.url.reveal(), 'http://127.0.0.1:3001/sse');
    assert.deepEqual(legacy.headers, {});
  });

  for (const [text, ms] of [
    ['500ms', 500],
    ['1.5s', 1500],
    ['45s', 45_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['0', 0],
    ['2', 2000],
  ] as const) {
    it(`reads the duration ${text} as ${ms} ms`, () => {
      const c = parse(`${oneStdio}sessions: {idleTimeout: "${text}"}\nhttp: {keepAlive: "${text}"}\nshutdown: {drainTimeout: "${text}"}\n`);
      assert.equal(c.sessions.idleTimeoutMs, ms);
      assert.equal(c.http.keepAliveMs, ms);
      assert.equal(c.shutdown.drainTimeoutMs, ms);
    });
  }

  it('reads a bare number as a duration in seconds', () => {
    assert.equal(parse(`${oneStdio}sessions: {idleTimeout: 90}\n`).sessions.idleTimeoutMs, 90_000);
    assert.equal(parse(`${oneStdio}sessions: {idleTimeout: 0.25}\n`).sessions.idleTimeoutMs, 250);
  });

  for (const [text, bytes] of [
    ['1KiB', 1024],
    ['512KiB', 512 * 1024],
    ['16MiB', 16 * 1024 ** 2],
    ['1GiB', 1024 ** 3],
    ['1MB', 1_000_000],
    ['2 kb', 2000],
    ['1.5KiB', 1536],
    ['100', 100],
    ['100b', 100],
  ] as const) {
    it(`reads the size ${text} as ${bytes} bytes`, () => {
      assert.equal(parse(`${oneStdio}limits: {maxMessageSize: "${text}"}\n`).limits.maxMessageBytes, bytes);
    });
  }

  it('bounds what waits for a slow client by default, and reads the backpressure limits', () => {
    const { maxMessageBytes, clientBacklogBytes, slowClientTimeoutMs } = parse(oneStdio).limits;
    assert.deepEqual(
      { maxMessageBytes, clientBacklogBytes, slowClientTimeoutMs },
      { maxMessageBytes: 16 << 20, clientBacklogBytes: 8 << 20, slowClientTimeoutMs: 60_000 },
    );
    const c = parse(`${oneStdio}limits: {clientBacklog: 1MiB, slowClientTimeout: 5m}\n`);
    assert.equal(c.limits.clientBacklogBytes, 1 << 20);
    assert.equal(c.limits.slowClientTimeoutMs, 300_000);
  });

  it('reclaims idle sessions at a limit after 1s by default; off turns it off; a bad value names the key', () => {
    assert.equal(parse(oneStdio).limits.reclaimIdleAfterMs, 1000);
    assert.equal(parse(`${oneStdio}limits: {reclaimIdleAfter: off}\n`).limits.reclaimIdleAfterMs, undefined);
    assert.equal(parse(`${oneStdio}limits: {reclaimIdleAfter: 30s}\n`).limits.reclaimIdleAfterMs, 30_000);
    hasProblem(problems(`${oneStdio}limits: {reclaimIdleAfter: never}\n`), /^limits\.reclaimIdleAfter: expected a duration such as 1s or 5m, or off/);
  });

  it('refuses backpressure limits too small to work, naming the key', () => {
    hasProblem(problems(`${oneStdio}limits: {clientBacklog: 1KiB}\n`), /^limits\.clientBacklog: expected at least 64KiB/);
    hasProblem(problems(`${oneStdio}limits: {slowClientTimeout: 10ms}\n`), /^limits\.slowClientTimeout: expected at least 1s/);
    hasProblem(problems(`${oneStdio}limits: {slowClientTimeout: soon}\n`), /^limits\.slowClientTimeout: expected a duration/);
  });

  it('reads a bare number as a size in bytes', () => {
    assert.equal(parse(`${oneStdio}limits: {maxMessageSize: 4096}\n`).limits.maxMessageBytes, 4096);
  });

  for (const [listen, host, port] of [
    ['127.0.0.1:0', '127.0.0.1', 0],
    ['127.0.0.2:9000', '127.0.0.2', 9000],
    ['localhost:65535', 'localhost', 65535],
    ['[::1]:8443', '::1', 8443],
  ] as const) {
    it(`reads the loopback listen address ${listen}`, () => {
      assert.deepEqual(parse(`${oneStdio}listen: "${listen}"\n`).listen, { host, port });
    });
  }

  it('accepts a non-loopback listen address when http.allowedHosts names the hosts', () => {
    const c = parse(
      `${oneStdio}listen: 0.0.0.0:8080\nhttp: {allowedHosts: [gw.example.com], allowedOrigins: ["https://console.example.com"], publicUrl: "https://gw.example.com"}\nidentity: {issuers: [{issuer: "https://idp.example.com"}]}\n`,
    );
    assert.deepEqual(c.listen, { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(c.http.allowedHosts, ['gw.example.com']);
    assert.deepEqual(c.http.allowedOrigins, ['https://console.example.com']);
  });

  it('reads the other top-level settings', () => {
    const c = parse(
      `${oneStdio}store: postgres://portcullis@db/portcullis\ndataDir: /var/lib/portcullis\nlog: {level: debug}\nhttp: {eventBuffer: 0}\npins: {scan: flag, duplicateNames: quarantine}\n`,
    );
    assert.deepEqual(c.pins, { scan: 'flag', duplicateNames: 'quarantine' });
    assert.equal(c.store.reveal(), 'postgres://portcullis@db/portcullis');
    assert.equal(c.dataDir, '/var/lib/portcullis');
    assert.equal(c.log.level, 'debug');
    assert.equal(c.http.eventBufferSize, 0);
  });
});

describe('parseConfig: invalid configs', () => {
  it('a misspelt key is named, with the keys expected there', () => {
    const list = problems('connections:\n  a:\n    stdio:\n      comand: node\n');
    hasProblem(list, /^connections\.a\.stdio\.comand: unknown key/, /expected one of: command, args, env, passEnv, cwd/);
    hasProblem(list, /^connections\.a\.stdio\.command: expected a string, found nothing/);
  });

  it('a misspelt top-level key lists the top-level keys', () => {
    hasProblem(
      problems(`${oneStdio}listne: 127.0.0.1:1\n`),
      /^listne: unknown key/,
      /expected one of: listen, store, dataDir, recording, telemetry, audit, cluster, identity, masking, api, limits, http, sessions, agents, roles, pins, console, rules, reviews, notifications, shutdown, log, connections/,
    );
  });

  it('cluster secrets must be references to at least 32 characters', () => {
    const sources: SecretSources = { env: { SHORT: 'too-short', LONG: 'x'.repeat(32), KEY: 'k'.repeat(32) }, readFile: () => '' };
    hasProblem(
      problems(`${oneStdio}cluster:\n  secret: literal-secret-literal-secret-literal\n`, sources),
      /^cluster\.secret: cluster\.secret must be a reference/,
    );
    hasProblem(problems(`${oneStdio}cluster:\n  tokenKeys: ["\${env:SHORT}"]\n`, sources), /^cluster\.tokenKeys\.0: expected at least 32 characters/);
    const ok = parse(`${oneStdio}cluster:\n  secret: "\${env:LONG}"\n  tokenKeys: ["\${env:KEY}"]\n`, sources);
    assert.deepEqual(
      ok.cluster.secrets.map((s) => s.reveal()),
      ['x'.repeat(32)],
    );
    assert.equal(ok.cluster.tokenKeys.length, 1);
    assert.deepEqual(parse(oneStdio).cluster.secrets, []);
  });

  it('a token key listed twice, or the same as the hop secret, is named with the fix', () => {
    const sources: SecretSources = { env: { HOP: 'h'.repeat(32), KEY: 'k'.repeat(32), SAME_KEY: 'k'.repeat(32) }, readFile: () => '' };
    hasProblem(
      problems(`${oneStdio}cluster:\n  tokenKeys: ["\${env:KEY}", "\${env:SAME_KEY}"]\n`, sources),
      /^cluster\.tokenKeys\.1: the same secret as entry 0: list each secret once \(the first seals, every one opens\)/,
    );
    hasProblem(
      problems(`${oneStdio}cluster:\n  secret: ["\${env:HOP}"]\n  tokenKeys: ["\${env:KEY}", "\${env:HOP}"]\n`, sources),
      /^cluster\.tokenKeys\.1: the same secret as in cluster\.secret: give the sealed tokens a key of their own/,
    );
    assert.equal(parse(`${oneStdio}cluster:\n  secret: "\${env:HOP}"\n  tokenKeys: ["\${env:KEY}"]\n`, sources).cluster.tokenKeys.length, 1);
  });

  it('cluster.secret may be a list (rotation: the first signs, every one verifies), each entry a reference long enough, each once', () => {
    const sources: SecretSources = { env: { NEW: 'n'.repeat(32), OLD: 'o'.repeat(40), SAME: 'n'.repeat(32), SHORT: 'too-short' }, readFile: () => '' };
    const listed = parse(`${oneStdio}cluster:\n  secret: ["\${env:NEW}", "\${env:OLD}"]\n`, sources);
    assert.deepEqual(
      listed.cluster.secrets.map((s) => s.reveal()),
      ['n'.repeat(32), 'o'.repeat(40)],
    );
    hasProblem(problems(`${oneStdio}cluster:\n  secret: []\n`, sources), /^cluster\.secret: an empty list: give one secret .*or remove cluster\.secret/);
    hasProblem(problems(`${oneStdio}cluster:\n  secret: ["\${env:NEW}", "\${env:SHORT}"]\n`, sources), /^cluster\.secret\.1: expected at least 32 characters/);
    hasProblem(
      problems(`${oneStdio}cluster:\n  secret: ["\${env:NEW}", literal-secret-literal-secret-literal]\n`, sources),
      /^cluster\.secret\.1: a cluster\.secret entry must be a reference/,
    );
    // The same secret twice, even under two references: listed once is enough, and twice is likely a slip.
    hasProblem(
      problems(`${oneStdio}cluster:\n  secret: ["\${env:NEW}", "\${env:SAME}"]\n`, sources),
      /^cluster\.secret\.1: the same secret as entry 0: list each secret once/,
    );
    hasProblem(
      problems(`${oneStdio}cluster:\n  secret: 42\n`, sources),
      /^cluster\.secret: expected a \$\{file:…\} or \$\{env:…\} reference, or a list of them/,
    );
    hasProblem(problems(`${oneStdio}cluster:\n  secret: "\${env:SHORT}"\n`, sources), /^cluster\.secret: expected at least 32 characters/);
  });

  it('the hop timeouts: defaults, durations, and a value out of range named by its key', () => {
    assert.deepEqual(parse(oneStdio).cluster.hopTimeouts, { connectMs: 5000, headMs: 15_000 });
    assert.deepEqual(parse(`${oneStdio}cluster: {hopConnectTimeout: 2s, hopHeadTimeout: 1m}\n`).cluster.hopTimeouts, { connectMs: 2000, headMs: 60_000 });
    hasProblem(problems(`${oneStdio}cluster: {hopConnectTimeout: 10ms}\n`), /^cluster\.hopConnectTimeout: expected from 100ms to 1m/);
    hasProblem(problems(`${oneStdio}cluster: {hopHeadTimeout: 11m}\n`), /^cluster\.hopHeadTimeout: expected from 1s to 10m/);
    hasProblem(problems(`${oneStdio}cluster: {hopHeadTimeout: soon}\n`), /^cluster\.hopHeadTimeout: expected a duration/);
  });

  it('a pins setting it does not know names the key and the choices', () => {
    hasProblem(
      problems(`${oneStdio}pins: {scan: warn, duplicateNames: maybe}\n`),
      /^pins\.scan: expected one of "quarantine", "flag", "off", found the string "warn"$/,
    );
    hasProblem(
      problems(`${oneStdio}pins: {scan: off, duplicateNames: maybe}\n`),
      /^pins\.duplicateNames: expected one of "allow", "flag", "quarantine", found the string "maybe"$/,
    );
    hasProblem(problems(`${oneStdio}pins: {scan: off, duplicates: allow}\n`), /^pins\.duplicates: unknown key; expected one of: scan, duplicateNames$/);
  });

  it('a misspelt key in a nested section lists that section’s keys', () => {
    hasProblem(
      problems(`${oneStdio}limits: {maxMessageBytes: 10}\n`),
      /^limits\.maxMessageBytes: unknown key; expected one of: maxMessageSize, clientBacklog, slowClientTimeout, reclaimIdleAfter, principal, connection, global, unauthenticated$/,
    );
    hasProblem(
      problems('connections:\n  a:\n    stdio: {command: node}\n    tools: {alow: [x]}\n'),
      /^connections\.a\.tools\.alow: unknown key; expected one of: allow, deny, pin$/,
    );
    hasProblem(
      problems('connections:\n  a:\n    http: {url: "http://127.0.0.1:1/mcp", header: {}}\n'),
      /^connections\.a\.http\.header: unknown key; expected one of: url, headers, protocol$/,
    );
  });

  it('protocol: auto by default, one of three versions, and an error that names the key and the choices', () => {
    const stdio = parse(oneStdio).connections.get('a')!.upstream;
    assert.equal(stdio.kind === 'stdio' && stdio.protocol, 'auto');
    assert.equal(stdio.kind === 'stdio' && stdio.processes, 2);
    const http = parse('connections:\n  a:\n    http: {url: "http://127.0.0.1:1/mcp", protocol: "2026-07-28"}\n').connections.get('a')!.upstream;
    assert.equal(http.kind === 'http' && http.protocol, '2026-07-28');
    hasProblem(
      problems('connections:\n  a:\n    http: {url: "http://127.0.0.1:1/mcp", protocol: "2026"}\n'),
      /^connections\.a\.http\.protocol: expected one of "auto", "2026-07-28", "2025-11-25", found the string "2026"$/,
    );
    hasProblem(problems('connections:\n  a:\n    sse: {url: "http://127.0.0.1:1/sse", protocol: auto}\n'), /^connections\.a\.sse\.protocol: unknown key/);
    hasProblem(problems('connections:\n  a:\n    stdio: {command: node, processes: 0}\n'), /^connections\.a\.stdio\.processes: /);
  });

  it('a number where a string is expected says so', () => {
    hasProblem(problems('connections:\n  a:\n    stdio: {command: 42}\n'), /^connections\.a\.stdio\.command: expected a string, found number 42$/);
    hasProblem(problems(`${oneStdio}listen: 8080\n`), /^listen: expected a string, found number 8080$/);
    hasProblem(problems('connections:\n  a:\n    stdio: {command: node, args: [1]}\n'), /^connections\.a\.stdio\.args\.0: expected a string, found a number$/);
  });

  it('a scalar where a list is expected says so', () => {
    hasProblem(
      problems('connections:\n  a:\n    stdio: {command: node}\n    tools: {allow: read_file}\n'),
      /^connections\.a\.tools\.allow: expected a list, found the string "read_file"$/,
    );
  });

  it('an empty command is refused', () => {
    hasProblem(problems('connections:\n  a:\n    stdio: {command: ""}\n'), /^connections\.a\.stdio\.command: /, /program to run/);
  });

  it('a config that is not a map says what it is', () => {
    hasProblem(problems('- a\n- b\n'), /^\(top level\): expected a map, found a list$/);
    hasProblem(problems('hello\n'), /^\(top level\): expected a map, found the string "hello"$/);
  });

  it('a request timeout shorter than the header timeout names both keys', () => {
    hasProblem(problems(`http: {headersTimeout: 30s, requestTimeout: 10s}\n${oneStdio}`), /^http\.requestTimeout: expected at least http\.headersTimeout/);
    hasProblem(problems(`http: {idleTimeout: 10ms}\n${oneStdio}`), /^http\.idleTimeout: expected at least 100ms/);
    hasProblem(problems(`http: {maxConnections: 0}\n${oneStdio}`), /^http\.maxConnections: /);
  });

  it('no connections at all is refused', () => {
    hasProblem(problems('connections: {}\n'), /^connections: expected at least one connection$/);
  });

  // BUG: zod's "record" leaks into the message; YAML users know maps (every other message says "a map").
  it('a missing or wrongly typed connections key expects a map, found …', () => {
    hasProblem(problems(''), /^connections: expected a map/, /found nothing/);
    hasProblem(problems('listen: 127.0.0.1:8080\n'), /^connections: expected a map/, /found nothing/);
    hasProblem(problems('connections: [a, b]\n'), /^connections: expected a map/, /found a list/);
    hasProblem(problems('connections:\n  a:\n    stdio: {command: node, env: [A]}\n'), /^connections\.a\.stdio\.env: expected a map/, /found a list/);
  });

  it('an empty connection is refused', () => {
    hasProblem(problems('connections:\n  a:\n'), /^connections\.a: expected a map, found null$/);
  });

  it('a connection without an upstream is refused', () => {
    hasProblem(problems('connections:\n  a: {description: nothing here}\n'), /^connections\.a: /, /exactly one upstream: stdio, http, sse, agent/);
  });

  it('a connection with two upstreams names both', () => {
    hasProblem(
      problems('connections:\n  a:\n    stdio: {command: node}\n    http: {url: "http://127.0.0.1:1/mcp"}\n'),
      /^connections\.a: /,
      /exactly one upstream, found stdio and http/,
    );
    hasProblem(problems('connections:\n  a:\n    http: {url: "http://127.0.0.1:1/mcp"}\n    sse: {url: "http://127.0.0.1:1/sse"}\n'), /found http and sse/);
  });

  for (const name of ['Upper', 'has space', 'dot.ted', '-leading', '_leading', 'a/b', 'ü', 'x'.repeat(64)]) {
    it(`a bad connection name is refused: ${JSON.stringify(name)}`, () => {
      const list = problems(`connections:\n  ${JSON.stringify(name)}:\n    stdio: {command: node}\n`);
      hasProblem(list, literally(`connections.${name}: `), /^connections\./, /lower-case letters, digits, - and _/);
    });
  }

  it('good connection names are accepted', () => {
    const c = parse(
      'connections:\n  a:\n    stdio: {command: node}\n  0-x_y:\n    stdio: {command: node}\n  ' + 'z'.repeat(63) + ':\n    stdio: {command: node}\n',
    );
    assert.equal(c.connections.size, 3);
  });

  for (const listen of [
    'nowhere',
    '127.0.0.1',
    '127.0.0.1:',
    ':8080',
    '127.0.0.1:70000',
    '127.0.0.1:123456',
    'example.com:80',
    '::1:8080',
    '[::1]',
    '127.0.0.1:http',
  ]) {
    it(`a bad listen address is refused: ${listen}`, () => {
      hasProblem(problems(`${oneStdio}listen: "${listen}"\n`), /^listen: /, /expected HOST:PORT/, literally(`found ${JSON.stringify(listen)}`));
    });
  }

  for (const size of ['"lots"', '"5 parsecs"', '"-1"', '"1e3"', '0', '-5', '1.5', '""']) {
    it(`a bad size is refused: ${size}`, () => {
      hasProblem(problems(`${oneStdio}limits: {maxMessageSize: ${size}}\n`), /^limits\.maxMessageSize: /, /expected a size such as 16MiB/, /found /);
    });
  }

  // BUG: a size that rounds to zero bytes is accepted as text ("0", "0KiB", "0.4") although the number 0 is refused;
  // a limit of 0 bytes refuses every message.
  for (const size of ['"0"', '"0KiB"', '"0.4"']) {
    it(`a size of zero bytes is refused: ${size}`, () => {
      hasProblem(problems(`${oneStdio}limits: {maxMessageSize: ${size}}\n`), /^limits\.maxMessageSize: /, /expected a size/);
    });
  }

  for (const duration of ['"forever"', '"1w"', '"-1s"', '""', '-5', '"10 minutes"']) {
    it(`a bad duration is refused: ${duration}`, () => {
      const list = problems(`${oneStdio}sessions: {idleTimeout: ${duration}}\nshutdown: {drainTimeout: ${duration}}\n`);
      hasProblem(list, /^sessions\.idleTimeout: /, /expected a duration such as 30s/, /found /);
      hasProblem(list, /^shutdown\.drainTimeout: /, /expected a duration/);
    });
  }

  it('shutdown.drainDelay: 0 closes the port at once; past 10m it is refused, naming the key', () => {
    assert.equal(parse(`${oneStdio}shutdown: {drainDelay: 0}\n`).shutdown.drainDelayMs, 0);
    hasProblem(problems(`${oneStdio}shutdown: {drainDelay: 11m}\n`), /^shutdown\.drainDelay: /, /expected at most 10m/);
  });

  for (const host of ['0.0.0.0', '192.168.1.5', '[::]', '10.0.0.1']) {
    it(`a non-loopback listen (${host}) without http.allowedHosts is refused`, () => {
      hasProblem(problems(`${oneStdio}listen: "${host}:8080"\n`), /^http\.allowedHosts: required when listening on /, /DNS-rebinding/);
    });
  }

  it('a YAML syntax error names its line', () => {
    const list = problems('connections:\n  a:\n    stdio: {command: node\n  b: [\n');
    hasProblem(list, /^line \d+, column \d+: /);
    const indent = problems('connections:\n  a:\n    stdio:\n      command: node\n     args: x\n');
    hasProblem(indent, /^line 5, column \d+: /);
  });

  it('a duplicate key is a YAML error on its line', () => {
    hasProblem(problems('connections:\n  a:\n    stdio: {command: node}\n  a:\n    stdio: {command: node}\n'), /^line 4, column \d+: /, /unique/);
  });

  it('a YAML error does not echo the source text after its first line', () => {
    const list = problems('connections:\n  a:\n    stdio:\n      command: node\n      env: {X: "${env:Y}"\n     oops: hunter2-literal\n');
    for (const p of list) {
      assert.ok(!p.includes('\n'), 'one line per problem');
      assert.ok(!p.includes('hunter2-literal'));
    }
  });

  it('an unknown log level lists the levels', () => {
    hasProblem(
      problems(`${oneStdio}log: {level: loud}\n`),
      /^log\.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", found the string "loud"$/,
    );
  });

  it('an unknown store is refused with the forms expected', () => {
    hasProblem(problems(`${oneStdio}store: mysql://db/x\n`), /^store: expected sqlite:PATH or postgres:\/\//);
  });

  it('an upstream URL must be absolute http(s)', () => {
    hasProblem(
      problems('connections:\n  a:\n    http: {url: "ftp://example.com/mcp"}\n'),
      /^connections\.a\.http\.url: expected an http:\/\/ or https:\/\/ URL, found ftp:$/,
    );
    hasProblem(problems('connections:\n  a:\n    sse: {url: "/sse"}\n'), /^connections\.a\.sse\.url: expected an absolute http\(s\) URL/);
    hasProblem(problems('connections:\n  a:\n    http: {}\n'), /^connections\.a\.http\.url: expected a string, found nothing$/);
  });

  // BUG: problems from zod's generic checks (too_small, int) fall into formatIssue's default branch, which shows neither
  // the value found nor a YAML-worded expectation ("expected a int").
  it('an out-of-range or fractional number names what was found', () => {
    hasProblem(problems(`${oneStdio}http: {eventBuffer: -1}\n`), /^http\.eventBuffer: /, /found number -1/);
    hasProblem(problems(`${oneStdio}http: {eventBuffer: 200000}\n`), /^http\.eventBuffer: /, /found number 200000/);
    hasProblem(problems(`${oneStdio}http: {eventBuffer: 1.5}\n`), /^http\.eventBuffer: expected an integer, found number 1\.5$/);
  });

  it('lists every problem, not just the first', () => {
    const list = problems(`listen: nowhere\nlimits: {maxMessageSize: lots}\nlog: {level: loud}\nconnections:\n  a:\n    stdio: {comand: node}\n`);
    hasProblem(list, /^listen: /);
    hasProblem(list, /^limits\.maxMessageSize: /);
    hasProblem(list, /^log\.level: /);
    hasProblem(list, /^connections\.a\.stdio\.comand: /);
  });

  // BUG: the connection-name and allowedHosts checks are refinements that zod skips while any other problem exists,
  // so they surface only one round of fixes later; parseConfig promises every problem at once.
  it('lists a bad connection name and a missing allowedHosts next to other problems', () => {
    const list = problems('listen: 0.0.0.0:8080\nconnections:\n  Bad:\n    stdio: {command: node}\n  b:\n    stdio: {comand: node}\n');
    hasProblem(list, /^connections\.b\.stdio\.comand: /);
    hasProblem(list, /^connections\.Bad: /, /lower-case/);
    hasProblem(list, /^http\.allowedHosts: required/);
  });
});

describe('loadConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads and validates a file', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, oneStdio);
    assert.deepEqual([...loadConfigFile(file, noSecrets).connections.keys()], ['a']);
  });

  it('a missing file is a ConfigError naming the file and the reason', () => {
    const file = join(dir, 'missing.yaml');
    assert.throws(
      () => loadConfigFile(file, noSecrets),
      (err: unknown) => err instanceof ConfigError && err.source === file && /cannot be read \(ENOENT\)/.test(err.problems[0]!),
    );
  });

  it('an invalid file is a ConfigError whose source is the file', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'connections: {}\n');
    assert.throws(
      () => loadConfigFile(file, noSecrets),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`invalid config ${file}:`),
    );
  });
});

describe('parseConfig: the recording store and its settings', () => {
  const env = (vars: Record<string, string>): SecretSources => ({ env: vars, readFile: noSecrets.readFile });

  it('the default store is a SQLite file in the data directory', () => {
    assert.equal(parse(`${oneStdio}dataDir: /var/lib/pc\n`).store.reveal(), 'sqlite:/var/lib/pc/portcullis.db');
  });

  it('a postgres URL is accepted, its password only from a reference, and never shown', () => {
    const c = parse(`${oneStdio}store: "postgres://pc:\${env:PGPASSWORD}@db:5432/pc"\n`, env({ PGPASSWORD: 's3cret-pw' }));
    assert.equal(c.store.reveal(), 'postgres://pc:s3cret-pw@db:5432/pc');
    assert.ok(!JSON.stringify({ store: c.store }).includes('s3cret-pw'));
    const list = problems(`${oneStdio}store: "postgres://pc:hunter2@db/pc"\n`);
    hasProblem(list, /^store: the password in the store URL must be a reference/);
    assert.ok(!list.join('\n').includes('hunter2'), 'the literal password is not repeated in the error');
  });

  for (const store of ['mysql://db/x', 'sqlite:', 'postgres://', 'data/portcullis.db']) {
    it(`a bad store URL is refused: ${store}`, () => {
      hasProblem(problems(`${oneStdio}store: "${store}"\n`), /^store: /, /sqlite:/);
    });
  }

  it('reads recording settings', () => {
    const c = parse(`${oneStdio}recording: {mode: best-effort, sqliteSync: full, retention: 90d, writeTimeout: 2s, instanceId: gw-1}\n`);
    assert.equal(c.recording.writeTimeoutMs, 2000);
    assert.equal(c.recording.mode, 'best-effort');
    assert.equal(c.recording.sqliteSync, 'full');
    assert.equal(c.recording.retentionMs, 90 * 86_400_000);
    assert.equal(c.recording.instanceId, 'gw-1');
  });

  it('takes recording.instanceId from the environment (a Kubernetes pod name), checked once resolved', () => {
    const sources: SecretSources = { ...noSecrets, env: { POD_NAME: 'portcullis-7d9f8-x2k4q', BAD: 'a b' } };
    assert.equal(parse(`${oneStdio}recording: {instanceId: "\${env:POD_NAME}"}\n`, sources).recording.instanceId, 'portcullis-7d9f8-x2k4q');
    assert.equal(parse(`${oneStdio}recording: {instanceId: "gw-\${env:POD_NAME}"}\n`, sources).recording.instanceId, 'gw-portcullis-7d9f8-x2k4q');
    hasProblem(problems(`${oneStdio}recording: {instanceId: "\${env:BAD}"}\n`, sources), /^recording\.instanceId: expected 1-64 letters/);
    hasProblem(
      problems(`${oneStdio}recording: {instanceId: "\${env:UNSET_POD}"}\n`, sources),
      /^recording\.instanceId: environment variable UNSET_POD is not set/,
    );
  });

  it('names bad recording settings', () => {
    const list = problems(`${oneStdio}recording: {mode: sometimes, sqliteSync: fast, retention: forever, instanceId: "a b"}\n`);
    hasProblem(list, /^recording\.mode: expected one of "write-ahead", "best-effort", "off", found the string "sometimes"$/);
    hasProblem(list, /^recording\.sqliteSync: expected one of "normal", "full"/);
    hasProblem(list, /^recording\.retention: expected a duration/);
    hasProblem(list, /^recording\.instanceId: expected 1-64 letters/);
    hasProblem(problems(`${oneStdio}recording: {writeTimeout: 10ms}\n`), /^recording\.writeTimeout: expected from 100ms to 5m/);
    hasProblem(problems(`${oneStdio}recording: {writeTimeout: soon}\n`), /^recording\.writeTimeout: expected a duration/);
  });

  it('a signing key and an API token must be references', () => {
    const list = problems(`${oneStdio}recording: {signingKey: "-----BEGIN PRIVATE KEY-----"}\napi: {token: abc123}\n`);
    hasProblem(list, /^recording\.signingKey: a signing key must be a reference/);
    hasProblem(list, /^api\.token: an API token must be a reference/);
    assert.ok(!list.join('\n').includes('abc123'));
    const c = parse(`${oneStdio}api: {token: "\${env:API_TOKEN}"}\n`, env({ API_TOKEN: 'tok-1234567' }));
    assert.equal(c.api.token?.reveal(), 'tok-1234567');
  });

  it('a trusted key must be an Ed25519 public key', () => {
    hasProblem(problems(`${oneStdio}recording: {trustedKeys: ["not a key"]}\n`), /^recording\.trustedKeys\.0: expected an Ed25519 public key in PEM form/);
  });
});

describe('parseConfig: identity and access', () => {
  it('reads issuers with their defaults, access groups and narrower groups', () => {
    const c = parse(
      `identity:\n  issuers:\n    - issuer: https://idp.example.com/realms/main\n      groupsClaim: realm_access.roles\n      roles: {engineers: [idp-eng]}\n  clockSkew: 10s\n` +
        `connections:\n  a:\n    stdio: {command: node}\n    access: {groups: [engineers], tools: {"delete_*": [leads]}}\n`,
    );
    const issuer = c.identity.issuers[0]!;
    assert.equal(issuer.issuer, 'https://idp.example.com/realms/main');
    assert.deepEqual(issuer.audiences, []);
    assert.deepEqual(issuer.algorithms, ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']);
    assert.equal(issuer.groupsClaim, 'realm_access.roles');
    assert.deepEqual(issuer.roles, { engineers: ['idp-eng'] });
    assert.equal(c.identity.clockSkewMs, 10_000);
    const access = c.connections.get('a')!.access;
    assert.deepEqual(access.groups, ['engineers']);
    assert.deepEqual(access.tools, { 'delete_*': ['leads'] });
  });

  it('a connection without access is closed to everybody (fail closed)', () => {
    assert.deepEqual(parse(oneStdio).connections.get('a')!.access.groups, []);
  });

  it('refuses a plain-http issuer off loopback, symmetric algorithms, and a clock skew over 5 minutes', () => {
    const found = problems(`${oneStdio}identity:\n  issuers:\n    - {issuer: "http://idp.example.com", algorithms: [HS256]}\n  clockSkew: 10m\n`);
    assert.ok(
      found.some((p) => /^identity\.issuers\.0\.issuer: an issuer must use https:\/\//.test(p)),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) => /^identity\.issuers\.0\.algorithms\.0: expected one of "RS256"/.test(p)),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) => /^identity\.clockSkew: expected at most 5m/.test(p)),
      found.join('\n'),
    );
  });

  it('requires http.publicUrl off loopback with issuers: it is what tokens must be meant for', () => {
    const found = problems(
      `${oneStdio}listen: 0.0.0.0:8080\nhttp: {allowedHosts: [gw.example.com]}\nidentity: {issuers: [{issuer: "https://idp.example.com"}]}\n`,
    );
    assert.ok(
      found.some((p) => /^http\.publicUrl: required when listening on 0\.0\.0\.0 with identity issuers/.test(p)),
      found.join('\n'),
    );
  });

  it('refuses the dev identity on a non-loopback listen address, naming the way out', () => {
    const found = problems(`${oneStdio}listen: 0.0.0.0:8080\nhttp: {allowedHosts: [gw.example.com]}\n`);
    assert.ok(
      found.some((p) => /^identity\.issuers: the embedded dev identity .* refused on 0\.0\.0\.0: .*identity\.dev\.allowNonLoopback: true/.test(p)),
      found.join('\n'),
    );
    const allowed = parse(`${oneStdio}listen: 0.0.0.0:8080\nhttp: {allowedHosts: [gw.example.com]}\nidentity: {dev: {allowNonLoopback: true}}\n`);
    assert.equal(allowed.identity.dev.allowNonLoopback, true);
  });
});

describe('parseConfig: review notifications', () => {
  const hooks = (extra = '') =>
    `notifications:\n  webhooks:\n    - {name: ops, url: "https://hooks.example.com/ops"}\n    - {name: slack, url: "\${env:SLACK_URL}", format: slack, secret: "\${env:HOOK_SECRET}", events: [review.created]}\n${extra}`;
  const sources: SecretSources = { ...noSecrets, env: { SLACK_URL: 'https://hooks.slack.com/services/T0/B0/xyz', HOOK_SECRET: 'k' } };

  it('reads webhooks with their defaults, reviews.notify and a rule’s notify', () => {
    const c = parse(
      `${oneStdio}${hooks()}reviews: {notify: [ops]}\nrules:\n  - {name: r, when: 'tool.name == "x"', action: review, approvers: [leads], notify: [slack]}\n`,
      sources,
    );
    const [ops, slack] = c.notifications.webhooks;
    assert.deepEqual(
      { ...ops!, url: ops!.url.reveal() },
      { name: 'ops', url: 'https://hooks.example.com/ops', format: 'json', events: ['review.created', 'review.decided'] },
    );
    assert.equal(slack!.url.reveal(), 'https://hooks.slack.com/services/T0/B0/xyz');
    assert.equal(
      JSON.stringify(slack),
      JSON.stringify({ name: 'slack', url: '${env:SLACK_URL}', format: 'slack', secret: '${env:HOOK_SECRET}', events: ['review.created'] }),
      'secrets show as references',
    );
    assert.deepEqual(c.reviews.notify, ['ops']);
    assert.deepEqual(c.rules[0]!.notify, ['slack']);
    assert.deepEqual(parse(oneStdio).reviews.notify, []);
    assert.deepEqual(parse(oneStdio).notifications.webhooks, []);
  });

  it('an unknown webhook name is an error naming the key path', () => {
    const found = problems(
      `${oneStdio}${hooks()}reviews: {notify: [ops, pager]}\nrules:\n  - {name: r, when: 'true', action: review, approvers: [leads], notify: [chat]}\n`,
      sources,
    );
    hasProblem(found, /^reviews\.notify\.1: there is no webhook named "pager"; notifications\.webhooks has ops, slack/);
    hasProblem(found, /^rules\.0\.notify\.0: there is no webhook named "chat"/);
    hasProblem(
      problems(`${oneStdio}reviews: {notify: [ops]}\n`),
      /^reviews\.notify\.0: there is no webhook named "ops"; notifications\.webhooks configures none/,
    );
  });

  const webhook = (...lines: string[]) => `${oneStdio}notifications:\n  webhooks:\n${lines.map((l) => `    - ${l}\n`).join('')}`;
  for (const [what, text, pattern] of [
    [
      'a non-http(s) url',
      webhook('{name: a, url: "ftp://example.com/x"}'),
      /^notifications\.webhooks\.0\.url: expected an http:\/\/ or https:\/\/ URL, found ftp:/,
    ],
    [
      'a literal secret',
      webhook('{name: a, url: "https://example.com/a", secret: plain-text}'),
      /^notifications\.webhooks\.0\.secret: a webhook secret must be a reference/,
    ],
    [
      'an unknown event',
      webhook('{name: a, url: "https://example.com/a", events: [review.updated]}'),
      /^notifications\.webhooks\.0\.events\.0: expected one of "review\.created", "review\.decided"/,
    ],
    [
      'a duplicate name',
      webhook('{name: a, url: "https://example.com/a"}', '{name: a, url: "https://example.com/b"}'),
      /^notifications\.webhooks\.1\.name: two webhooks are named "a"/,
    ],
    [
      'notify on a rule that does not review',
      `${webhook('{name: a, url: "https://example.com/a"}')}rules:\n  - {name: d, when: 'true', action: deny, notify: [a]}\n`,
      /^rules\.0\.notify: notify belongs to action: review, not deny/,
    ],
  ] as const) {
    it(`refuses ${what}`, () => hasProblem(problems(text), pattern));
  }
});

describe('connections.<name>.upstreamSessions', () => {
  it('is per-client unless a connection opts in to pooled', () => {
    assert.equal(parse(oneStdio).connections.get('a')!.upstreamSessions, 'per-client');
    assert.equal(parse(`${oneStdio}    upstreamSessions: pooled\n`).connections.get('a')!.upstreamSessions, 'pooled');
  });

  it('refuses another value, and pooling an agent connection, naming the key', () => {
    hasProblem(problems(`${oneStdio}    upstreamSessions: shared\n`), /^connections\.a\.upstreamSessions: expected one of "per-client", "pooled"/);
    hasProblem(
      problems('connections:\n  a:\n    agent: vpc\n    upstreamSessions: pooled\n'),
      /^connections\.a\.upstreamSessions: an agent connection has an upstream session per client session/,
    );
  });
});
