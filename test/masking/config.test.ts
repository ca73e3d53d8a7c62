import { sessionInfo } from '../helpers/session-info.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { MaskingPolicies, maskerFor } from '../../src/masking/policy.js';

const oneStdio = 'connections:\n  a:\n    stdio: {command: node}\n    access: {groups: ["*"]}\n';

function problems(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected the config to be refused');
}

describe('masking config', () => {
  it('is on by default with secrets and personal data, field rules and labels', () => {
    const c = parseConfig(oneStdio, 'test.yaml');
    assert.equal(c.masking.enabled, true);
    assert.deepEqual(c.masking.detectors, ['secrets', 'pii']);
    assert.deepEqual(c.masking.replace, { kind: 'redact' });
    assert.ok(c.masking.fields.includes('password'));
    const { rules, ...gatewayWide } = c.masking;
    assert.deepEqual(rules, []);
    assert.deepEqual(c.connections.get('a')!.masking, gatewayWide, 'a connection has the gateway-wide settings (rules apply per caller)');
  });

  it('maxDecodedSize: 16 MiB by default, a size per connection, a clear error for a bad one', () => {
    const c = parseConfig(
      `masking: {maxDecodedSize: 4MiB}\n${oneStdio}    masking: {exclude: [email]}\n  b:\n    stdio: {command: node}\n    access: {groups: ["*"]}\n    masking: {maxDecodedSize: 512KiB}\n`,
      'test.yaml',
    );
    assert.equal(c.masking.maxDecodedSize, 4 * 1024 * 1024);
    assert.equal(c.connections.get('a')!.masking.maxDecodedSize, 4 * 1024 * 1024, 'a connection that does not set it keeps the gateway-wide value');
    assert.equal(c.connections.get('b')!.masking.maxDecodedSize, 512 * 1024);
    assert.equal(parseConfig(oneStdio, 'test.yaml').masking.maxDecodedSize, 16 * 1024 * 1024);
    assert.ok(problems(`masking: {maxDecodedSize: lots}\n${oneStdio}`).some((p) => /^masking\.maxDecodedSize: expected a size such as 16MiB/.test(p)));
  });

  it('a connection overrides the keys it names, and keeps the rest', () => {
    const c = parseConfig(
      `masking: {exclude: [phone-number], replace: hash}\n${oneStdio}    masking: {replace: {keepLast: 4}, exclude: [email]}\n`,
      'test.yaml',
    );
    assert.deepEqual(c.masking.exclude, ['phone-number']);
    assert.deepEqual(c.connections.get('a')!.masking.exclude, ['email']);
    assert.deepEqual(c.connections.get('a')!.masking.replace, { kind: 'keep-last', count: 4 });
    assert.equal(c.connections.get('a')!.masking.enabled, true);
  });

  it('names an unknown detector, a regex RE2 refuses, a malformed JSON path and a name taken by a built-in', () => {
    const found = problems(
      `masking:\n  detectors: [secrets, credit-cards]\n  custom:\n    - {name: bad-regex, regex: "(a)\\\\1"}\n    - {name: bad-path, jsonPath: "result.x"}\n    - {name: email, regex: "x"}\n${oneStdio}`,
    );
    assert.ok(
      found.some((p) => /^masking\.detectors\.1: there is no detector or family named "credit-cards"/.test(p)),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) => /^masking\.custom\.0\.regex: the regex of custom detector "bad-regex" is not valid RE2 syntax/.test(p)),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) => /^masking\.custom\.1\.jsonPath: the jsonPath of custom detector "bad-path" must start with \$/.test(p)),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) => /^masking\.custom\.2\.name: this name is a built-in detector or family/.test(p)),
      found.join('\n'),
    );
  });

  it('custom detectors: a regex (RE2, linear time) and a JSON path', () => {
    const c = parseConfig(
      `masking:\n  custom:\n    - {name: employee-id, regex: "EMP-[0-9]{6}"}\n    - {name: customer-notes, jsonPath: "$..notes"}\n  exclude: []\n${oneStdio}`,
      'test.yaml',
    );
    const masker = maskerFor(c.masking);
    const { value, redactions } = masker.maskValue({ text: 'ticket by EMP-123456', customer: { notes: { free: 'anything at all' } } }, ['result']);
    assert.deepEqual(value, { text: 'ticket by [REDACTED:employee-id]', customer: { notes: { free: '[REDACTED:customer-notes]' } } });
    assert.deepEqual(
      redactions.map((r) => [r.detector, r.path]),
      [
        ['employee-id', '$.result.text'],
        ['customer-notes', '$.result.customer.notes.free'],
      ],
    );
  });

  it('a custom regex cannot be driven into catastrophic backtracking', { timeout: 20_000 }, () => {
    const c = parseConfig(`masking:\n  custom:\n    - {name: evil, regex: "(a+)+b"}\n${oneStdio}`, 'test.yaml');
    const masker = maskerFor(c.masking);
    const start = performance.now();
    assert.equal(masker.maskString(`${'a'.repeat(50_000)}c`), undefined);
    assert.ok(performance.now() - start < 5000, 'RE2 semantics: linear in the input');
  });
});

describe('masking per caller group', () => {
  const text = 'mail ada@example.com, card 4111 1111 1111 1111';
  const config = parseConfig(
    `masking:\n  rules:\n    - {groups: [support], exclude: [email]}\n    - {groups: [auditors], connections: [b], replace: {keepLast: 4}}\n` +
      `connections:\n  a:\n    stdio: {command: node}\n    access: {groups: ["*"]}\n  b:\n    stdio: {command: node}\n    access: {groups: ["*"]}\n    masking: {replace: hash}\n`,
    'test.yaml',
  );
  const policies = new MaskingPolicies(config.connections, config.masking.rules);
  const session = (connection: string, groups: string[]) =>
    sessionInfo(`s-${connection}-${groups.join('+')}`, connection, { subject: 'u', issuer: 'https://idp', groups });

  it("a rule's keys apply to members of its groups only", () => {
    assert.equal(policies.forSession(session('a', ['support']))!.maskString(text)!.text, 'mail ada@example.com, card [REDACTED:payment-card]');
    assert.equal(policies.forSession(session('a', ['eng']))!.maskString(text)!.text, 'mail [REDACTED:email], card [REDACTED:payment-card]');
  });

  it('a rule may be limited to some connections', () => {
    assert.match(policies.forSession(session('b', ['auditors']))!.maskString(text)!.text, /card \[REDACTED:payment-card\]1111$/);
    assert.doesNotMatch(policies.forSession(session('a', ['auditors']))!.maskString(text)!.text, /1111$/);
  });

  it('keyed hashes are per session: the same value masks alike within one session and differently in another', () => {
    const one = session('b', ['eng']);
    const first = policies.forSession(one)!.maskString(text)!.text;
    assert.equal(policies.forSession(one)!.maskString(text)!.text, first);
    assert.notEqual(policies.forSession(session('b', ['other']))!.maskString(text)!.text, first);
  });

  it('names in rules are checked like the rest', () => {
    const found = problems(`masking:\n  rules:\n    - {groups: [x], exclude: [emails]}\n${oneStdio}`);
    assert.ok(
      found.some((p) => /^masking\.rules\.0\.exclude\.0: there is no detector or family named "emails"/.test(p)),
      found.join('\n'),
    );
  });
});
