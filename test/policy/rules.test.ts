import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig, ConfigError } from '../../src/config/load.js';
import { compileCondition, ConditionError } from '../../src/policy/cel.js';
import { requestFacts } from '../../src/policy/facts.js';
import { RuleSet, type RuleTrace } from '../../src/policy/rules.js';
import type { JsonRpcRequest } from '../../src/protocol/jsonrpc.js';
import { sessionInfo } from '../helpers/session-info.js';

/** Guardrail conditions (CEL) and rules: compiled at start, evaluated in order, failing closed. */

const alice = sessionInfo('s1', 'files', { subject: 'alice', issuer: 'https://idp', email: 'alice@example.com', groups: ['eng'] });
const call = (name: string, args: Record<string, unknown>): JsonRpcRequest => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name, arguments: args },
});
const facts = (request: JsonRpcRequest, annotations: Record<string, unknown> = {}) => requestFacts(request, alice, () => annotations);

function configWith(rules: unknown[], guardrails?: unknown) {
  const yaml = JSON.stringify({
    rules,
    connections: { files: { stdio: { command: 'node', args: ['x.js'] }, access: { groups: ['*'] }, ...(guardrails ? { guardrails } : {}) } },
  });
  return parseConfig(yaml, '(test)');
}

describe('guardrail conditions', () => {
  it('see the identity, connection, method, tool with its annotations, arguments, resource and prompt', () => {
    const f = facts(call('delete_file', { path: '/srv/a', force: true, count: 3 }), { destructiveHint: true });
    for (const source of [
      '"eng" in identity.groups && identity.email.endsWith("@example.com") && identity.subject == "alice"',
      'connection == "files" && method == "tools/call"',
      'tool.name.startsWith("delete_") && tool.annotations.destructiveHint == true',
      'arguments.path.startsWith("/srv") && arguments.force && arguments.count > 2',
      'resource.uri == "" && prompt.name == ""',
      'params.name == "delete_file"',
    ]) {
      assert.equal(compileCondition(source)(f), true, source);
    }
    const read = facts({ jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'file:///etc/passwd' } });
    assert.equal(compileCondition('resource.uri.startsWith("file:///etc/") && tool.name == ""')(read), true);
  });

  describe('through a virtual server', () => {
    /** alice's member session on `files`, serving the virtual server `toolbox` where files' tools are `fs__<name>`. */
    const member = {
      ...alice,
      virtual: { server: 'toolbox', session: 'v1', exposed: (kind: 'tool' | 'prompt', name: string) => (kind === 'tool' ? `fs__${name}` : `fsp__${name}`) },
    };
    const throughToolbox = (request: JsonRpcRequest) => requestFacts(request, member, () => ({}));
    const prompt: JsonRpcRequest = { jsonrpc: '2.0', id: 3, method: 'prompts/get', params: { name: 'summary', arguments: {} } };

    it("see the virtual server and the tool's or prompt's name there, beside the member's own names", () => {
      assert.deepEqual(throughToolbox(call('read_file', {})).virtual, { server: 'toolbox', tool: 'fs__read_file', prompt: '' });
      assert.deepEqual(throughToolbox(prompt).virtual, { server: 'toolbox', tool: '', prompt: 'fsp__summary' });
      assert.deepEqual(throughToolbox({ jsonrpc: '2.0', id: 4, method: 'tools/list' }).virtual, { server: 'toolbox', tool: '', prompt: '' });
      const f = throughToolbox(call('read_file', { path: '/srv/a' }));
      for (const source of [
        'virtual.server == "toolbox" && virtual.tool == "fs__read_file"',
        'connection == "files" && tool.name == "read_file"',
        'virtual.server != "" && virtual.prompt == ""',
        'has(virtual.server) && virtual.?tool.orValue("") == "fs__read_file"',
      ]) {
        assert.equal(compileCondition(source)(f), true, source);
      }
      assert.equal(compileCondition('virtual.prompt == "fsp__summary" && prompt.name == "summary"')(throughToolbox(prompt)), true);
    });

    it('are empty on a direct call, so a rule about virtual names is simply false there (never failing, which would hold)', () => {
      const direct = facts(call('read_file', {}));
      assert.deepEqual(direct.virtual, { server: '', tool: '', prompt: '' });
      for (const source of ['virtual.tool == "fs__read_file"', 'virtual.server == "toolbox"', 'virtual.server != ""', 'virtual.tool.startsWith("fs__")']) {
        assert.equal(compileCondition(source)(direct), false, source);
      }
    });

    it('decide like any rule: one written on the virtual name holds the call made through it, not the same call made directly', () => {
      const config = configWith([
        { name: 'toolbox-writes', when: 'virtual.tool == "fs__write_file"', action: 'review', approvers: ['leads'] },
        { name: 'no-etc', when: 'connection == "files" && arguments.path.startsWith("/etc")', action: 'deny', message: 'not there' },
      ]);
      const rules = new RuleSet(config.rules);
      const defaults = config.connections.get('files')!.guardrails;
      const trace: RuleTrace[] = [];
      assert.equal(rules.decide(throughToolbox(call('write_file', { path: '/srv/a' })), defaults, trace).rule, 'toolbox-writes');
      assert.deepEqual(
        trace.map((t) => [t.rule, t.result]),
        [['toolbox-writes', true]],
      );
      assert.deepEqual(rules.decide(facts(call('write_file', { path: '/srv/a' })), defaults), { action: 'allow' });
      // The member's own rules still apply to calls through the virtual server.
      assert.deepEqual(rules.decide(throughToolbox(call('read_file', { path: '/etc/passwd' })), defaults), {
        action: 'deny',
        rule: 'no-etc',
        message: 'not there',
      });
    });
  });

  for (const [source, why] of [
    ['tool.nmae == "x"', /No such key: nmae/],
    ['user.name == "x"', /Unknown variable: user/],
    ['virtual.tol == "x"', /No such key: tol/],
    ['tool.name ==', /Unexpected/],
    ['tool.name', /must be true or false/],
    ['arguments.path.matches("(unclosed")', /not valid RE2 syntax/],
    ['arguments.path.matches("(?=lookahead)")', /not valid RE2 syntax/],
  ] as const) {
    it(`refuses to compile ${source}`, () =>
      assert.throws(
        () => compileCondition(source),
        (err: Error) => err instanceof ConditionError && why.test(err.message),
      ));
  }

  it('runs matches() on RE2: a pattern that backtracks catastrophically elsewhere takes linear time here', () => {
    const condition = compileCondition('arguments.text.matches("^(a+)+$")');
    const hostile = `${'a'.repeat(50_000)}!`;
    const started = performance.now();
    assert.equal(condition(facts(call('t', { text: hostile }))), false);
    // Backtracking engines take longer than the universe's age on this; RE2 takes milliseconds. The bound is loose on purpose.
    assert.ok(performance.now() - started < 5_000);
    assert.equal(condition(facts(call('t', { text: 'aaaa' }))), true);
  });

  it('a matches() whose pattern comes from the request is compiled then, and a bad one fails the condition', () => {
    const condition = compileCondition('arguments.text.matches(arguments.pattern)');
    assert.equal(condition(facts(call('t', { text: 'abc', pattern: 'b+' }))), true);
    assert.throws(() => condition(facts(call('t', { text: 'abc', pattern: '(' }))));
  });
});

describe('guardrail rules', () => {
  it('stop the gateway at start when a rule does not compile, naming the rule and the key', () => {
    assert.throws(
      () =>
        configWith([
          { name: 'ok', when: 'true', action: 'allow' },
          { name: 'typo', when: 'tool.nmae == "x"', action: 'deny' },
        ]),
      (err: Error) => err instanceof ConfigError && /rules\.1\.when: rule "typo" does not compile: No such key: nmae/.test(err.message),
    );
    assert.throws(() => configWith([{ name: 'r', when: 'true', action: 'review' }]), /rules\.0\.approvers: a review needs approvers/);
    assert.throws(
      () =>
        configWith([
          { name: 'r', when: 'true', action: 'allow' },
          { name: 'r', when: 'true', action: 'deny' },
        ]),
      /two rules are named "r"/,
    );
    assert.throws(
      () => configWith([{ name: 'r', when: 'true', action: 'review', approvers: ['x'], timeout: 'soon' }]),
      /rules\.0\.timeout: expected a duration/,
    );
    assert.throws(() => configWith([], { default: 'review' }), /connections\.files\.guardrails\.approvers/);
  });

  it('the first rule that matches decides, and the trace says which were tried', () => {
    const config = configWith([
      { name: 'admins-anything', when: '"admins" in identity.groups', action: 'allow' },
      { name: 'no-etc', when: 'arguments.path.startsWith("/etc")', action: 'deny', message: 'not there' },
      { name: 'writes', when: 'tool.name == "write_file"', action: 'review', approvers: ['leads'], approvals: 2, timeout: '5m' },
    ]);
    const rules = new RuleSet(config.rules);
    const defaults = config.connections.get('files')!.guardrails;
    const trace: RuleTrace[] = [];
    assert.deepEqual(rules.decide(facts(call('write_file', { path: '/etc/x' })), defaults, trace), { action: 'deny', rule: 'no-etc', message: 'not there' });
    assert.deepEqual(
      trace.map((t) => [t.rule, t.result]),
      [
        ['admins-anything', false],
        ['no-etc', true],
      ],
    );
    assert.deepEqual(rules.decide(facts(call('write_file', { path: '/srv/x' })), defaults), {
      action: 'review',
      rule: 'writes',
      review: { approvers: ['leads'], approvals: 2, timeoutMs: 300_000 },
    });
    assert.deepEqual(rules.decide(facts(call('read_file', { path: '/srv/x' })), defaults), { action: 'allow' });
  });

  it('a condition that fails on a request counts as matching for deny and review rules, never for allow rules', () => {
    const config = configWith([
      { name: 'allow-small', when: 'arguments.size < 10', action: 'allow' },
      { name: 'no-secrets', when: 'arguments.path.contains("secret")', action: 'deny' },
    ]);
    const defaults = config.connections.get('files')!.guardrails;
    // `path` is a number: the deny rule cannot tell, so it denies; the allow rule cannot tell, so it does not allow.
    const d = new RuleSet(config.rules).decide(facts(call('read', { path: 42 })), defaults);
    assert.equal(d.action, 'deny');
    assert.equal(d.rule, 'no-secrets');
    assert.match(d.error!, /no matching overload/);
  });

  it("the connection's default applies to calls no rule decides, not to protocol housekeeping", () => {
    const config = configWith([{ name: 'reads', when: 'tool.name.startsWith("read_")', action: 'allow' }], { default: 'deny', message: 'only reads here' });
    const rules = new RuleSet(config.rules);
    const defaults = config.connections.get('files')!.guardrails;
    assert.deepEqual(rules.decide(facts(call('read_file', {})), defaults), { action: 'allow', rule: 'reads' });
    assert.deepEqual(rules.decide(facts(call('write_file', {})), defaults), { action: 'deny', message: 'only reads here' });
    for (const method of ['initialize', 'tools/list', 'ping', 'resources/list']) {
      assert.deepEqual(rules.decide(facts({ jsonrpc: '2.0', id: 1, method }), defaults), { action: 'allow' }, method);
    }
    assert.equal(rules.decide(facts({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'file:///x' } }), defaults).action, 'deny');
  });
});
