import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAgentConfig } from '../../src/agent/config.js';
import { CredentialScrubber } from '../../src/scrub/credential-scrubber.js';
import { credentialsOf, StderrBudget } from '../../src/agent/agent.js';
import { passedEnvironment } from '../../src/upstream/stdio.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';

/** The agent's config, and the scrubbing of the credentials it injects. */

const sources = {
  env: { TOKEN: 'pca_abcdefghijklmnop', AWS_SECRET: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz', WIKI: 'wiki-bearer-0123456789' },
  readFile: () => 'from-a-file-secret-42\n',
};

const valid = `
gateway: https://portcullis.example.com/
name: vpc-prod
token: \${env:TOKEN}
connections:
  aws:
    stdio: { command: aws-mcp, env: { AWS_SECRET_ACCESS_KEY: "\${env:AWS_SECRET}", REGION: eu-west-1 } }
  wiki:
    http: { url: "http://wiki.internal/mcp", headers: { Authorization: "Bearer \${env:WIKI}", X-Extra: "\${file:/run/x}" } }
`;

describe('the agent config', () => {
  it('reads the gateway, the name, the token and the connections; the tunnel is wss://…/agent', () => {
    const c = parseAgentConfig(valid, '(test)', sources);
    assert.equal(c.tunnelUrl, 'wss://portcullis.example.com/agent');
    assert.equal(c.name, 'vpc-prod');
    assert.equal(c.token.reveal(), 'pca_abcdefghijklmnop');
    assert.deepEqual([...c.connections.keys()], ['aws', 'wiki']);
    assert.equal(c.heartbeatMs, 15_000);
  });

  it('names every problem: a literal token, an unknown key, a connection with two upstreams', () => {
    const bad = `
gateway: ftp://x
name: VPC
token: pca_literal
tsl: {}
connections:
  aws: { stdio: { command: x }, http: { url: "http://x" } }
`;
    assert.throws(
      () => parseAgentConfig(bad, 'agent.yaml', sources),
      (err: Error) =>
        err instanceof ConfigError &&
        /gateway: expected the gateway's base URL/.test(err.message) &&
        /name: an agent name is lower-case/.test(err.message) &&
        /token: the agent token must be a reference/.test(err.message) &&
        /tsl: unknown key/.test(err.message) &&
        /connections\.aws: a connection has exactly one upstream, found stdio and http/.test(err.message),
    );
  });

  it('passes variables of its own environment through by name or prefix, and says what a bad pattern is', () => {
    const env = { AWS_ACCESS_KEY_ID: 'AKIA0000', AWS_SESSION_TOKEN: 'tok', HOME: '/root', AWSOME: 'no' };
    assert.deepEqual(passedEnvironment(['AWS_*', 'HOME', 'MISSING'], env), { AWS_ACCESS_KEY_ID: 'AKIA0000', AWS_SESSION_TOKEN: 'tok', HOME: '/root' });
    assert.deepEqual(passedEnvironment([], env), {});
    const c = parseAgentConfig(valid.replace('aws-mcp, env', 'aws-mcp, passEnv: ["PORTCULLIS_TEST_PASSED_*"], env'), '(test)', sources);
    assert.deepEqual((c.connections.get('aws')!.upstream as { passEnv: string[] }).passEnv, ['PORTCULLIS_TEST_PASSED_*']);
    // What is passed through is a credential the agent injected: scrubbed like the referenced ones.
    process.env.PORTCULLIS_TEST_PASSED_KEY = 'passed-through-value-123';
    try {
      assert.ok(credentialsOf(c).some((k) => k.name === 'aws.env.PORTCULLIS_TEST_PASSED_KEY' && k.value === 'passed-through-value-123'));
    } finally {
      delete process.env.PORTCULLIS_TEST_PASSED_KEY;
    }
    assert.throws(
      () => parseAgentConfig(valid.replace('aws-mcp, env', 'aws-mcp, passEnv: ["AWS-*"], env'), 'agent.yaml', sources),
      /connections\.aws\.stdio\.passEnv\.0: expected an environment variable name, or a prefix ending in \*/,
    );
  });

  it('keeps one tunnel by default; several with gateways (one per URL) or tunnels (through one load-balanced URL)', () => {
    const one = parseAgentConfig(valid, '(test)', sources);
    assert.deepEqual([one.tunnelUrls, one.tunnels], [['wss://portcullis.example.com/agent'], 1]);
    const list = parseAgentConfig(
      valid.replace('gateway: https://portcullis.example.com/', 'gateways: [https://gw-1.internal, "http://gw-2.internal:8080/"]'),
      '(test)',
      sources,
    );
    assert.deepEqual([list.tunnelUrls, list.tunnels], [['wss://gw-1.internal/agent', 'ws://gw-2.internal:8080/agent'], 2]);
    const balanced = parseAgentConfig(`${valid}tunnels: 3\n`, '(test)', sources);
    assert.deepEqual([balanced.tunnelUrls, balanced.tunnels], [['wss://portcullis.example.com/agent'], 3]);
  });

  it('names the key and the fix when the gateways are missing, doubled, or outnumber the tunnels', () => {
    const without = valid.replace('gateway: https://portcullis.example.com/\n', '');
    assert.throws(() => parseAgentConfig(without, 'agent.yaml', sources), /gateway: expected the gateway's base URL.*or gateways: a list/);
    assert.throws(
      () => parseAgentConfig(`${valid}gateways: [https://gw-1.internal]\n`, 'agent.yaml', sources),
      /gateways: set either gateway \(one URL\) or gateways \(a list of URLs\), not both/,
    );
    assert.throws(
      () => parseAgentConfig(`${without}gateways: [https://a.internal, https://b.internal]\ntunnels: 1\n`, 'agent.yaml', sources),
      /tunnels: expected at least one tunnel per URL of gateways \(2\): raise tunnels or remove it/,
    );
    assert.throws(() => parseAgentConfig(`${without}gateways: []\n`, 'agent.yaml', sources), /gateways: expected at least one URL/);
    assert.throws(() => parseAgentConfig(`${valid}tunnels: 0\n`, 'agent.yaml', sources), /tunnels: expected a number ≥ 1, found number 0/);
    assert.throws(() => parseAgentConfig(`${valid}tunnels: 1.5\n`, 'agent.yaml', sources), /tunnels: expected an integer, found number 1.5/);
  });

  it('holds a flood of stderr to its budget and says how much it dropped', () => {
    const budget = new StderrBudget(3);
    const at = 1_000_000;
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => budget.take(at)),
      [0, 0, 0, false, false],
    );
    assert.equal(budget.take(at + 999), false);
    assert.equal(budget.take(at + 1000), 3, 'the next second: the line goes, carrying the count dropped before it');
    assert.equal(budget.take(at + 1001), 0);
  });

  it('the gateway refuses agent connections without a store', () => {
    assert.throws(
      () => parseConfig('recording: { mode: "off" }\nconnections:\n  aws: { agent: vpc-prod, access: { groups: ["*"] } }\n', '(test)'),
      /recording\.mode: connections served by an agent need the store/,
    );
  });
});

describe('the credential scrubber', () => {
  const config = parseAgentConfig(valid, '(test)', sources);
  const scrubber = new CredentialScrubber(credentialsOf(config));
  const secret = sources.env.AWS_SECRET;

  for (const [form, text] of [
    ['as is', `{"text":"AWS_SECRET_ACCESS_KEY=${secret}"}`],
    ['JSON-escaped', JSON.stringify({ text: `key: "${secret}"` })],
    ['base64', `{"b":"${Buffer.from(secret).toString('base64')}"}`],
    ['base64url unpadded', `{"b":"${Buffer.from(secret).toString('base64url')}"}`],
    ['URL-encoded', `{"u":"https://x/?k=${encodeURIComponent(secret)}"}`],
    // The two it used to miss: every character a \u escape (valid JSON that parses back to the secret), and the
    // secret one or two bytes into a longer base64 text (a dumped environment, a Basic header).
    ['\\u-escaped', `{"text":"${[...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"}`],
    ['in base64, one byte in', `{"b":"${Buffer.from(`x${secret}`).toString('base64')}"}`],
    ['in base64, two bytes in', `{"b":"${Buffer.from(`xy${secret}`).toString('base64')}"}`],
  ] as const) {
    it(`replaces a credential ${form}`, () => {
      const out = scrubber.scrub(text);
      assert.ok(!out.includes(secret) && !out.includes(Buffer.from(secret).toString('base64').slice(0, 20)), out);
      assert.notEqual(JSON.parse(out).text, secret, 'what it parses to is not the secret either');
      assert.match(out, /\[REDACTED:credential:aws\.env\.AWS_SECRET_ACCESS_KEY\]/);
      assert.doesNotThrow(() => JSON.parse(out), 'still JSON');
    });
  }

  it('knows the values of references inside header text, files, and its own token; not literal config text', () => {
    const out = scrubber.scrub('Bearer wiki-bearer-0123456789 from-a-file-secret-42 pca_abcdefghijklmnop region eu-west-1');
    assert.equal(
      out,
      'Bearer [REDACTED:credential:wiki.headers.Authorization] [REDACTED:credential:wiki.headers.X-Extra] [REDACTED:credential:agent.token] region eu-west-1',
    );
  });

  it('returns the very same string when nothing is there', () => {
    const text = '{"jsonrpc":"2.0","id":1,"result":{}}';
    assert.equal(scrubber.scrub(text), text);
  });
});
