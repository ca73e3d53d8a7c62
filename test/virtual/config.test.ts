import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';

/** The `virtualServers:` key: a virtual server is served as a connection of kind virtual; every load check names its key and the fix. */

const connections = `connections:
  everything: { stdio: { command: node } }
  files: { stdio: { command: node } }
  tickets: { http: { url: "https://tickets.example.com/mcp" } }
`;

function parse(text: string): GatewayConfig {
  return parseConfig(text, 'test.yaml');
}

function problems(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail(`expected the config to be refused:\n${text}`);
}

/** Asserts exactly one problem, matching every pattern. */
function oneProblem(text: string, ...patterns: RegExp[]): void {
  const list = problems(text);
  assert.equal(list.length, 1, `expected one problem, found:\n${list.join('\n')}`);
  for (const re of patterns) assert.match(list[0]!, re);
}

describe('virtualServers: valid configs', () => {
  it('a config without virtualServers has none', () => {
    const c = parse(connections);
    assert.deepEqual(
      [...c.connections.values()].map((x) => x.upstream.kind),
      ['stdio', 'stdio', 'http'],
    );
  });

  it('serves a virtual server as a connection of kind virtual, defaults filled in', () => {
    const c = parse(`${connections}virtualServers:
  toolbox:
    description: The SRE toolbox
    access: { groups: [sre] }
    members:
      - connection: everything
      - connection: files
        prefix: fs_
        tools: { include: ["read*"], exclude: ["*delete*"] }
        rename: { read_file: cat }
        descriptions: { cat: "Reads a file" }
`);
    const v = c.connections.get('toolbox');
    assert.ok(v !== undefined);
    assert.equal(v.description, 'The SRE toolbox');
    assert.deepEqual(v.access.groups, ['sre']);
    assert.equal(v.tools.pin, false);
    assert.equal(v.upstreamSessions, 'per-client');
    assert.equal(v.guardrails.default, 'allow');
    assert.deepEqual(v.limits.sessions, c.limits.connection.sessions);
    assert.equal(v.upstream.kind, 'virtual');
    if (v.upstream.kind !== 'virtual') return;
    assert.equal(v.upstream.separator, '__');
    assert.equal(v.upstream.memberTimeoutMs, 10_000);
    assert.deepEqual(
      v.upstream.members.map((m) => [m.connection, m.prefix]),
      [
        ['everything', 'everything__'],
        ['files', 'fs_'],
      ],
    );
    assert.deepEqual(v.upstream.members[1]!.tools, { include: ['read*'], exclude: ['*delete*'] });
    assert.deepEqual(v.upstream.members[1]!.rename, { read_file: 'cat' });
    assert.deepEqual(v.upstream.members[0]!.prompts, {});
  });

  it('takes its separator and memberTimeout, and an empty prefix on a single member', () => {
    const c = parse(`${connections}virtualServers:
  one:
    separator: "."
    memberTimeout: 2s
    members: [{ connection: everything, prefix: "" }]
  two:
    separator: "."
    members: [{ connection: everything }, { connection: files }]
`);
    const one = c.connections.get('one')!.upstream;
    const two = c.connections.get('two')!.upstream;
    assert.ok(one.kind === 'virtual' && two.kind === 'virtual');
    assert.equal(one.memberTimeoutMs, 2000);
    assert.equal(one.members[0]!.prefix, '');
    assert.deepEqual(
      two.members.map((m) => m.prefix),
      ['everything.', 'files.'],
    );
  });

  it('accepts include, exclude, rename and descriptions keys that can never match', () => {
    const c = parse(`${connections}virtualServers:
  toolbox:
    members:
      - connection: everything
        tools: { include: ["no-such-tool"] }
        rename: { no_such_tool: nothing }
        descriptions: { no_such_tool: "never shown" }
`);
    assert.ok(c.connections.has('toolbox'));
  });
});

describe('virtualServers: refused configs name the key and the fix', () => {
  it('a member naming no connection', () => {
    oneProblem(
      `${connections}virtualServers:\n  toolbox:\n    members: [{ connection: nothere }]\n`,
      /virtualServers\.toolbox\.members\.0\.connection/,
      /no connection 'nothere' in connections:/,
      /'everything', 'files', 'tickets'/,
    );
  });

  it('a member naming another virtual server', () => {
    oneProblem(
      `${connections}virtualServers:\n  inner:\n    members: [{ connection: files }]\n  outer:\n    members: [{ connection: inner }]\n`,
      /virtualServers\.outer\.members\.0\.connection/,
      /'inner' is a virtual server: a member must be a connection of connections:/,
    );
  });

  it('a virtual server named like a connection', () => {
    oneProblem(
      `${connections}virtualServers:\n  files:\n    members: [{ connection: everything }]\n`,
      /virtualServers\.files/,
      /'files' is also a connection: both would be served at \/mcp\/files; rename/,
    );
  });

  it('the same connection twice', () => {
    oneProblem(
      `${connections}virtualServers:\n  toolbox:\n    members: [{ connection: files }, { connection: everything }, { connection: files, prefix: f2_ }]\n`,
      /virtualServers\.toolbox\.members\.2\.connection/,
      /'files' is already members\[0\]: list each connection once/,
    );
  });

  it('equal prefixes', () => {
    oneProblem(
      `${connections}virtualServers:\n  toolbox:\n    members: [{ connection: files, prefix: x_ }, { connection: everything, prefix: x_ }]\n`,
      /virtualServers\.toolbox\.members\.1\.prefix/,
      /names could collide: the prefix "x_" and members\[0\]'s "x_" are equal/,
    );
  });

  it('a prefix that is the start of another', () => {
    oneProblem(
      `${connections}virtualServers:\n  toolbox:\n    members: [{ connection: files, prefix: ev }, { connection: everything, prefix: ev_ }]\n`,
      /virtualServers\.toolbox\.members\.1\.prefix/,
      /names could collide: .* start alike/,
    );
  });

  it('an empty prefix beside another member (it starts every name)', () => {
    oneProblem(
      `${connections}virtualServers:\n  toolbox:\n    members: [{ connection: files }, { connection: everything, prefix: "" }]\n`,
      /virtualServers\.toolbox\.members\.1\.prefix/,
      /names could collide: the prefix "" and members\[0\]'s "files__"/,
    );
  });

  it('two renames onto one name, across members', () => {
    oneProblem(
      `${connections}virtualServers:\n  toolbox:\n    members:\n      - { connection: files, rename: { read_file: read } }\n      - { connection: everything, rename: { echo: read } }\n`,
      /virtualServers\.toolbox\.members\.1\.rename\.echo/,
      /names could collide: members\[0\]\.rename\.read_file is renamed to "read" too/,
    );
  });

  it("a rename onto a name that starts with a member's prefix", () => {
    oneProblem(
      `${connections}virtualServers:\n  toolbox:\n    members:\n      - { connection: files, rename: { read_file: everything__read } }\n      - { connection: everything }\n`,
      /virtualServers\.toolbox\.members\.0\.rename\.read_file/,
      /names could collide: "everything__read" starts with members\[1\]'s prefix "everything__"/,
    );
  });

  it('a bad name', () => {
    oneProblem(`${connections}virtualServers:\n  Tool-Box:\n    members: [{ connection: files }]\n`, /virtualServers\.Tool-Box/, /lower-case letters/);
  });

  it('no members', () => {
    oneProblem(`${connections}virtualServers:\n  empty:\n    members: []\n`, /virtualServers\.empty\.members/, /at least one member/);
  });

  it('an unknown key', () => {
    oneProblem(`${connections}virtualServers:\n  ok:\n    members: [{ connection: files, tool: {} }]\n`, /virtualServers\.ok\.members\.0\.tool/, /unknown key/);
  });
});
