import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { builtInDetectors } from '../../src/masking/catalog.js';
import type { Finding } from '../../src/masking/detector.js';
import { Masker, MaskingRefusedError } from '../../src/masking/engine.js';
import { defaultFieldWords } from '../../src/masking/fields.js';
import { replacer } from '../../src/masking/replace.js';

/**
 * Hostile input: strings shaped to make a backtracking regex take exponential or quadratic time, a huge
 * response, and absurdly deep JSON. Each must finish within a generous bound, or be refused with a clear error.
 * The bounds are not speed targets (those are in `npm run bench`): they are what "does not hang" means here.
 */

const masker = new Masker({ detectors: builtInDetectors, fieldWords: defaultFieldWords, replace: replacer({ kind: 'redact' }, Buffer.alloc(32)) });

/** Strings that would make a careless pattern backtrack, each about 200 KB. */
const shapes: Array<[string, string]> = [
  ['a run of letters and digits', 'aA1'.repeat(70_000)],
  ['digits separated by spaces', '1 '.repeat(100_000)],
  ['digits separated by dashes', '4-'.repeat(100_000)],
  ['an endless local part', `${'a.'.repeat(100_000)}@`],
  ['an endless domain', `a@${'b.'.repeat(100_000)}`],
  ['a key with no value', `password${' '.repeat(5)}=`.repeat(20_000)],
  ['endless key prefixes', 'a_'.repeat(100_000) + 'password'],
  ['an unterminated private key', `-----BEGIN PRIVATE KEY-----\n${'A'.repeat(200_000)}`],
  ['many private key headers', '-----BEGIN RSA PRIVATE KEY-----'.repeat(7000)],
  ['JWT-like parts', 'eyJ.'.repeat(50_000)],
  ['URL-like prefixes', 'a://b:'.repeat(35_000)],
  ['IPv6-like colons', '1:'.repeat(100_000)],
  ['IBAN-like groups', 'DE89 '.repeat(40_000)],
  ['Authorization without an end', `Authorization: Bearer ${'a'.repeat(200_000)}`],
];

describe('hostile input', () => {
  for (const [what, text] of shapes) {
    it(`every built-in pattern finishes on ${what}`, { timeout: 20_000 }, () => {
      for (const d of builtInDetectors) {
        const start = performance.now();
        let lowered: string | undefined;
        d.find(text, () => (lowered ??= text.toLowerCase()), [] as Finding[]);
        const ms = performance.now() - start;
        assert.ok(ms < 2000, `${d.name} took ${ms.toFixed(0)} ms on ${what}`);
      }
    });
  }

  it('masks a 50 MB response (a secret at its end included) in bounded time', { timeout: 60_000 }, () => {
    const line = 'INFO 2026-11-25T10:00:00Z request served path=/api/items status=200 bytes=5120 user=42\n';
    const big = line.repeat(Math.ceil((50 * 1024 * 1024) / line.length));
    const token = `ghp_${'Q'.repeat(36)}`;
    const { value, redactions } = masker.maskValue({ content: [{ type: 'text', text: `${big}GITHUB_TOKEN=${token}` }] });
    assert.ok(!JSON.stringify(value).includes(token));
    assert.deepEqual(
      redactions.map((r) => r.detector),
      ['github-token'],
    );
  });

  it('base64-shaped input (wrapped lines, padding everywhere, runs a character too long) is masked in bounded time', { timeout: 60_000 }, () => {
    const token = `ghp_${'Q'.repeat(36)}`;
    for (const text of [
      `${'QUJD'.repeat(4)}\n`.repeat(50_000),
      'QUJDRA=='.repeat(50_000),
      `${'QUJDREVG'.repeat(2)}Q `.repeat(20_000),
      `${'aGVsbG8g'.repeat(50_000)}`,
    ]) {
      const start = performance.now();
      const { value } = masker.maskValue({ content: [{ type: 'text', text: `${text} GITHUB_TOKEN=${token}` }] });
      assert.ok(!JSON.stringify(value).includes(token));
      assert.ok(performance.now() - start < 10_000, `${text.slice(0, 20)}… took ${(performance.now() - start).toFixed(0)} ms`);
    }
  });

  it('refuses JSON nested 10,000 deep with a clear error, rather than walking it', () => {
    const deep = JSON.parse(`${'['.repeat(10_000)}"x"${']'.repeat(10_000)}`) as unknown;
    assert.throws(
      () => masker.maskValue(deep),
      (err: Error) => err instanceof MaskingRefusedError && /deeper than 512 levels/.test(err.message),
    );
  });

  it('refuses such JSON inside a text content too', () => {
    const text = `${'['.repeat(10_000)}1${']'.repeat(10_000)}`;
    assert.throws(() => masker.maskValue({ content: [{ type: 'text', text }] }), MaskingRefusedError);
  });
});
