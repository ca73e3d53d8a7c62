import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { builtInDetectors } from '../../src/masking/catalog.js';
import { Masker } from '../../src/masking/engine.js';
import { defaultFieldWords } from '../../src/masking/fields.js';
import { detectorsFor } from '../../src/masking/policy.js';
import { replacer } from '../../src/masking/replace.js';
import { negatives, positives } from './corpus.js';

/**
 * The corpus: every detector against secrets in realistic surroundings and against look-alikes that must stay.
 * Recall and the false-positive rate are reported in the test output; on this corpus both must be perfect.
 */

const defaults = {
  enabled: true,
  detectors: ['secrets', 'pii'],
  exclude: [],
  fields: defaultFieldWords,
  replace: { kind: 'redact' as const },
  allow: [],
  custom: [],
  recordArguments: false,
  maxDecodedSize: 16 * 1024 * 1024,
};
const masker = new Masker({ detectors: detectorsFor(defaults), fieldWords: defaults.fields, replace: replacer(defaults.replace, Buffer.alloc(32)) });

/** What a tool result carrying `text` becomes. */
function throughToolResult(text: string) {
  const result = { content: [{ type: 'text', text }], isError: false };
  return masker.maskValue(result, ['result']);
}

describe('the masking corpus', () => {
  it('every built-in detector is covered by a positive', () => {
    const onByDefault = builtInDetectors.filter((d) => d.onByDefault).map((d) => d.name);
    const covered = new Set(positives.map((p) => p.detector));
    assert.deepEqual(
      [...new Set(onByDefault)].filter((n) => !covered.has(n)),
      [],
    );
  });

  for (const p of positives) {
    it(`finds ${p.detector} in ${JSON.stringify(p.text.slice(0, 40))}…`, () => {
      const { value, redactions } = throughToolResult(p.text);
      const masked = (value as { content: Array<{ text: string }> }).content[0]!.text;
      assert.ok(!masked.includes(p.secret), `the secret survived: ${masked}`);
      assert.ok(
        redactions.some((r) => r.detector === p.detector),
        `found by ${redactions.map((r) => r.detector).join(', ') || 'nothing'}, not ${p.detector}`,
      );
      for (const r of redactions) assert.match(r.path, /^\$\.result\.content\[0\]\.text/);
    });
  }

  for (const n of negatives) {
    it(`leaves ${n.why} alone`, () => {
      const { value, redactions } = throughToolResult(n.text);
      assert.deepEqual(redactions, []);
      assert.equal((value as { content: Array<{ text: string }> }).content[0]!.text, n.text);
    });
  }

  it('reports recall and false-positive rate', (t) => {
    const found = positives.filter((p) => !JSON.stringify(throughToolResult(p.text).value).includes(JSON.stringify(p.secret).slice(1, -1))).length;
    const falsePositives = negatives.filter((n) => throughToolResult(n.text).redactions.length > 0).length;
    const recall = found / positives.length;
    const fpRate = falsePositives / negatives.length;
    t.diagnostic(
      `masking corpus: recall ${(recall * 100).toFixed(1)}% (${found}/${positives.length}), false positives ${(fpRate * 100).toFixed(1)}% (${falsePositives}/${negatives.length})`,
    );
    assert.equal(recall, 1);
    assert.equal(fpRate, 0);
  });
});

describe('the masking engine', () => {
  it('sees through JSON escapes: a secret spelled with \\u escapes is decoded before it is looked for', () => {
    const token = positives.find((p) => p.detector === 'github-token')!.secret;
    const escaped = token.replace(/[a-z]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const message = JSON.parse(`{"text": "token: ${escaped}"}`) as { text: string };
    assert.ok(message.text.includes(token));
    const { value } = masker.maskValue(message);
    assert.ok(!JSON.stringify(value).includes(token));
  });

  it('descends into JSON inside text content, keeping it JSON with its indentation', () => {
    const doc = JSON.stringify({ user: 'ada', db: { host: 'db', password: 'n0t-a-real-one' }, note: 'mail ada@example.com' }, null, 2);
    const { value, redactions } = masker.maskValue({ text: doc });
    const text = (value as { text: string }).text;
    const parsed = JSON.parse(text) as { db: { password: string }; note: string };
    assert.equal(parsed.db.password, '[REDACTED:field-rule]');
    assert.equal(parsed.note, 'mail [REDACTED:email]');
    assert.match(text, /\n  "user"/, 'indented as it was');
    assert.deepEqual(redactions.map((r) => [r.detector, r.path]).sort(), [
      ['email', '$.text<json>.note'],
      ['field-rule', '$.text<json>.db.password'],
    ]);
  });

  it('field rules mask a named field whatever it holds, and leave look-alike keys', () => {
    const { value } = masker.maskValue({
      dbPassword: 'x',
      client_secret: 'y',
      'X-Api-Key': 'z',
      max_tokens: 'keep',
      secretName: 'keep',
      nested: { secret: ['a1', 'b2'], credentials: { user: 'svc', password: 'p' } },
    });
    assert.deepEqual(value, {
      dbPassword: '[REDACTED:field-rule]',
      client_secret: '[REDACTED:field-rule]',
      'X-Api-Key': '[REDACTED:field-rule]',
      max_tokens: 'keep',
      secretName: 'keep',
      nested: { secret: ['[REDACTED:field-rule]', '[REDACTED:field-rule]'], credentials: { user: 'svc', password: '[REDACTED:field-rule]' } },
    });
  });

  it('a named field is masked whole, credited to the detector that recognizes its value', () => {
    const key = `sk-proj-${'a1B2'.repeat(12)}`;
    const { value, redactions } = masker.maskValue({ OPENAI_API_KEY: `${key} (rotated monthly)` });
    assert.deepEqual(value, { OPENAI_API_KEY: '[REDACTED:openai-key]' });
    assert.deepEqual(redactions, [{ detector: 'openai-key', path: '$.OPENAI_API_KEY', count: 1 }]);
  });

  it('overlapping findings are masked as one span, credited to the most specific detector', () => {
    const masked = masker.maskString('git remote: https://x-access-token:ghs_0123456789abcdefghij0123456789abcdef@github.com/acme/app.git');
    assert.ok(masked !== undefined);
    assert.deepEqual([...masked.counts.keys()], ['github-token']);
    assert.doesNotMatch(masked.text, /ghs_/);
  });

  it('returns the very same object when there is nothing to mask', () => {
    const clean = { content: [{ type: 'text', text: 'nothing to see here, just 42 apples' }] };
    assert.equal(masker.maskValue(clean).value, clean);
  });

  it('replaces by label, keeps the last characters, or a keyed hash stable within a key', () => {
    const card = '4111 1111 1111 1111';
    const keep = new Masker({ detectors: builtInDetectors, fieldWords: [], replace: replacer({ kind: 'keep-last', count: 4 }, Buffer.alloc(32)) });
    assert.equal(keep.maskString(`card ${card}`)!.text, 'card [REDACTED:payment-card]1111');
    const hashA = new Masker({ detectors: builtInDetectors, fieldWords: [], replace: replacer({ kind: 'hash' }, Buffer.alloc(32, 1)) });
    const hashB = new Masker({ detectors: builtInDetectors, fieldWords: [], replace: replacer({ kind: 'hash' }, Buffer.alloc(32, 2)) });
    const first = hashA.maskString(`a ${card}`)!.text;
    assert.match(first, /^a \[REDACTED:payment-card:[0-9a-f]{12}\]$/);
    assert.equal(hashA.maskString(`b ${card}`)!.text.slice(2), first.slice(2), 'the same value masks the same way under one key');
    assert.notEqual(hashB.maskString(`a ${card}`)!.text, first, 'and differently under another');
  });

  it('leaves allow-listed values (documentation examples) alone', () => {
    const docs = new Masker({
      detectors: builtInDetectors,
      fieldWords: [],
      replace: replacer({ kind: 'redact' }, Buffer.alloc(32)),
      allow: ['AKIAIOSFODNN7EXAMPLE'],
    });
    assert.equal(docs.maskString('aws_access_key_id = AKIAIOSFODNN7EXAMPLE'), undefined);
  });
});

describe('the opt-in IP address detectors', () => {
  const network = new Masker({
    detectors: builtInDetectors.filter((d) => d.family === 'network'),
    fieldWords: [],
    replace: replacer({ kind: 'redact' }, Buffer.alloc(32)),
  });
  const found = (text: string) => [...(network.maskString(text)?.counts.keys() ?? [])];

  for (const [text, address] of [
    ['inet6 2001:db8:85a3::8a2e:370:7334/64 scope global', '2001:db8:85a3::8a2e:370:7334'],
    ['peer fe80:0000:0000:0000:0202:b3ff:fe1e:8329 connected', 'fe80:0000:0000:0000:0202:b3ff:fe1e:8329'],
    ['listening on ::1.', '::1'],
  ] as const) {
    it(`finds the IPv6 address in ${JSON.stringify(text)}`, () => {
      assert.deepEqual(found(text), ['ipv6-address']);
      assert.ok(!network.maskString(text)!.text.includes(address));
    });
  }

  it('masks an IPv4-mapped IPv6 address whole', () => {
    assert.equal(network.maskString('mapped ::ffff:192.0.2.128 ok')!.text, 'mapped [REDACTED:ipv4-address] ok');
  });

  for (const text of ['2026-11-25T10:00:01.123Z up 10:00:01', 'mac 00:1a:2b:3c:4d:5e', 'std::vector<int> v;', 'ratio 3:2:1 at 12:30']) {
    it(`leaves ${JSON.stringify(text)} alone`, () => assert.deepEqual(found(text), []));
  }

  it('finds IPv4 addresses, not versions or out-of-range quads', () => {
    assert.deepEqual(found('pod ip 10.0.12.44 ready'), ['ipv4-address']);
    assert.deepEqual(found('version 1.2.3.4.5 and 256.1.1.1'), []);
  });
});
