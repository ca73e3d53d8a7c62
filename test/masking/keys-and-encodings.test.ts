import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { base64Runs } from '../../src/masking/base64.js';
import { builtInDetectors } from '../../src/masking/catalog.js';
import { Masker, MaskingRefusedError } from '../../src/masking/engine.js';
import { defaultFieldWords } from '../../src/masking/fields.js';
import { replacer } from '../../src/masking/replace.js';
import { MaskStage } from '../../src/pipeline/mask.js';
import { ErrorCode, type JsonRpcMessage } from '../../src/protocol/jsonrpc.js';
import { sessionInfo } from '../helpers/session-info.js';

/**
 * What masking looked past before: secrets and personal data used as JSON keys, base64 (text runs, resource blobs,
 * image data), nine-digit SSNs next to a label, IBANs in lower case.
 */

const onByDefault = builtInDetectors.filter((d) => d.onByDefault);
const masker = new Masker({ detectors: onByDefault, fieldWords: defaultFieldWords, replace: replacer({ kind: 'redact' }, Buffer.alloc(32)) });
const token = `ghp_${'k3Y'.repeat(12)}`;
const base64 = (text: string | Buffer) => Buffer.from(text).toString('base64');
const decoded = (blob: string) => Buffer.from(blob, 'base64').toString('utf8');
/** `n` bytes that look random but are the same on every run (SHA-256 in counter mode), so no run can differ. */
function noise(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0, at = 0; at < n; i++) at += createHash('sha256').update(`${seed}-${i}`).digest().copy(out, at);
  return out;
}

describe('keys', () => {
  it('a key holding a secret or personal data is masked, its value kept, and the path recorded never holds it', () => {
    const { value, redactions } = masker.maskValue({ owners: { 'ada@example.com': 'admin', [token]: { note: 'mail bob@example.com' } } }, ['result']);
    assert.deepEqual(value, { owners: { '[REDACTED:email]': 'admin', '[REDACTED:github-token]': { note: 'mail [REDACTED:email]' } } });
    assert.deepEqual(
      redactions.map((r) => [r.detector, r.path]),
      [
        ['email', '$.result.owners<key>'],
        ['github-token', '$.result.owners<key>'],
        ['email', '$.result.owners["[REDACTED:github-token]"].note'],
      ],
    );
    assert.ok(!JSON.stringify(redactions).includes(token));
  });

  it('what is learnt of a key is remembered only for keys that hold nothing: a secret key is masked every time', () => {
    // The engine looks at each clean key once; a key holding a finding must not be remembered as clean.
    const rows = Array.from({ length: 3 }, (_, i) => ({ 'ada@example.com': i, ssn: 536228726, note: 'n' }));
    const { value, redactions } = masker.maskValue(rows);
    assert.deepEqual(
      value,
      Array.from({ length: 3 }, (_, i) => ({ '[REDACTED:email]': i, ssn: '[REDACTED:us-ssn]', note: 'n' })),
    );
    assert.equal(redactions.filter((r) => r.path.endsWith('<key>')).length, 3);
  });

  it('keys that mask the same are told apart, in their places, so none is dropped (nor one the object already had)', () => {
    const { value } = masker.maskValue({ 'ada@example.com': 1, plain: 2, 'grace@example.com': 3, '[REDACTED:email]': 4 });
    assert.deepEqual(Object.entries(value as object), [
      ['[REDACTED:email] #2', 1],
      ['plain', 2],
      ['[REDACTED:email] #3', 3],
      ['[REDACTED:email]', 4],
    ]);
  });

  it('with keyed-hash replacement, two keys stay distinct by their hashes', () => {
    const hashed = new Masker({ detectors: onByDefault, fieldWords: [], replace: replacer({ kind: 'hash' }, Buffer.alloc(32, 7)) });
    const keys = Object.keys(hashed.maskValue({ 'ada@example.com': 1, 'grace@example.com': 2 }).value as object);
    assert.equal(keys.length, 2);
    for (const k of keys) assert.match(k, /^\[REDACTED:email:[0-9a-f]{12}\]$/);
  });

  it('keys in JSON inside a text are masked too, and an object of clean keys comes back as the same object', () => {
    const text = JSON.stringify({ by_user: { 'ada@example.com': 3 } }, null, 2);
    const masked = (masker.maskValue({ text }).value as { text: string }).text;
    assert.deepEqual(JSON.parse(masked), { by_user: { '[REDACTED:email]': 3 } });
    const clean = { rows: [{ customer_name: 'a', created_at: 'b' }] };
    assert.equal(masker.maskValue(clean).value, clean);
  });

  it('a key named __proto__ next to a masked key stays an ordinary key', () => {
    const parsed = JSON.parse('{"__proto__": {"x": 1}, "ada@example.com": 2}') as object;
    const value = masker.maskValue(parsed).value as Record<string, unknown>;
    assert.deepEqual(Object.keys(value), ['__proto__', '[REDACTED:email]']);
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
  });
});

describe('base64 in text', () => {
  it('a run that decodes to a secret is replaced whole, reported at <base64>', () => {
    const run = base64(`GITHUB_TOKEN=${token}\n`);
    const { value, redactions } = masker.maskValue({ text: `secret data: ${run} (opaque)` }, ['result']);
    assert.deepEqual(value, { text: 'secret data: [REDACTED:github-token] (opaque)' });
    assert.deepEqual(redactions, [{ detector: 'github-token', path: '$.result.text<base64>', count: 1 }]);
  });

  it('base64url without padding, wrapped base64 (76 columns), and base64 inside base64', () => {
    const url = Buffer.from(`https://admin:Sup3r-Secret@db.example.com/`).toString('base64url');
    assert.equal(masker.maskString(`u=${url}`)?.text, 'u=[REDACTED:url-credentials]');
    const wrapped = base64(`${'x'.repeat(70)} AWS_ACCESS_KEY_ID=AKIA${'Z7'.repeat(8)} ${'y'.repeat(70)}`).replace(/(.{76})/g, '$1\n');
    assert.ok(wrapped.split('\n').length >= 3, 'the key is split across lines');
    assert.equal(masker.maskString(`$ base64 f\n${wrapped}\n$`)?.text, '$ base64 f\n[REDACTED:aws-access-key-id]\n$');
    const nested = base64(`config: ${base64(`token ${token}`)}`);
    assert.equal(masker.maskString(nested)?.text, '[REDACTED:github-token]');
  });

  it('leaves alone: base64 of harmless text, of random bytes, hex digests, long words, ids', () => {
    for (const text of [
      base64('nothing to see here, just a sentence about apples'),
      base64(noise(3000, 'text')),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 internationalization /usr/local/lib/node_modules',
      'requestId=123e4567-e89b-12d3-a456-426614174000 2026-11-25T10:01:02Z',
    ]) {
      const holder = { text };
      assert.equal(masker.maskValue(holder).value, holder, text.slice(0, 40));
    }
  });

  it('finds runs only where whole encodings can be: padding that ends them, key=value not padding', () => {
    const text = base64('some text that is long enough');
    assert.deepEqual(
      base64Runs(`a ${text} b`)?.map((r) => [r.start, r.end]),
      [[2, 2 + text.length]],
    );
    assert.equal(base64Runs(`${'Q'.repeat(17)}`), undefined, 'one past a multiple of 4 is no encoding');
    assert.equal(base64Runs('short words only, nothing long here at all'), undefined);
  });
});

describe('binary fields', () => {
  const resource = (blob: string, mimeType = 'application/octet-stream') => ({ contents: [{ uri: 'file:///data.bin', mimeType, blob }] });

  it("a resource's blob holding a secret is replaced whole by the marker, as valid base64, its mimeType text/plain", () => {
    const { value, redactions } = masker.maskValue(resource(base64(`export GITHUB_TOKEN=${token}\n`)), ['result']);
    const item = (value as { contents: Array<{ uri: string; mimeType: string; blob: string }> }).contents[0]!;
    assert.equal(decoded(item.blob), '[REDACTED:github-token]');
    assert.equal(item.mimeType, 'text/plain');
    assert.equal(item.uri, 'file:///data.bin');
    assert.deepEqual(redactions, [{ detector: 'github-token', path: '$.result.contents[0].blob<base64>', count: 1 }]);
  });

  it('a binary (a PNG whose text chunk holds a card number) is looked into by its printable runs', () => {
    const png = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      noise(2000, 'png-a'),
      Buffer.from('tEXtComment\0paid with 4111 1111 1111 1111\0'),
      noise(2000, 'png-b'),
    ]);
    const item = (masker.maskValue(resource(base64(png), 'image/png')).value as { contents: Array<{ mimeType: string; blob: string }> }).contents[0]!;
    assert.equal(decoded(item.blob), '[REDACTED:payment-card]');
    assert.equal(item.mimeType, 'text/plain');
  });

  it("an image's data is a binary field too", () => {
    const { value } = masker.maskValue({ content: [{ type: 'image', mimeType: 'image/png', data: base64(`contact ada@example.com`) }] });
    assert.deepEqual(value, { content: [{ type: 'image', mimeType: 'text/plain', data: base64('[REDACTED:email]') }] });
  });

  it('a clean blob (text, or 1 MB of bytes that look random) comes back unchanged, the same object', () => {
    for (const blob of [base64('plain notes, nothing secret'), base64(noise(1024 * 1024, 'blob'))]) {
      const holder = resource(blob);
      assert.equal(masker.maskValue(holder).value, holder);
    }
  });

  it('a short blob is decoded too (an SSN is 9 bytes), and an empty one passes', () => {
    const { value } = masker.maskValue({
      contents: [
        { uri: 'u', blob: base64('SSN 536228726') },
        { uri: 'v', blob: '' },
      ],
    });
    assert.deepEqual(value, {
      contents: [
        { uri: 'u', blob: base64('[REDACTED:us-ssn]'), mimeType: 'text/plain' },
        { uri: 'v', blob: '' },
      ],
    });
  });

  it('a secret written raw into a blob field (not base64) is masked too', () => {
    const item = (masker.maskValue(resource(`token ${token}`)).value as { contents: Array<{ blob: string }> }).contents[0]!;
    assert.equal(decoded(item.blob), '[REDACTED:github-token]');
  });
});

describe('the decoding limit', () => {
  const small = new Masker({ detectors: onByDefault, fieldWords: [], replace: replacer({ kind: 'redact' }, Buffer.alloc(32)), maxDecodedBytes: 1024 });

  it('a message with more base64 to decode than the limit is refused, naming the setting', () => {
    const blob = base64(Buffer.alloc(4096, 'a'));
    assert.throws(
      () => small.maskValue({ contents: [{ uri: 'x', blob }] }),
      (err: Error) => err instanceof MaskingRefusedError && /more than 1024 bytes of base64/.test(err.message) && /masking\.maxDecodedSize/.test(err.message),
    );
  });

  it('the limit is per message: many small runs add up', () => {
    const run = base64('harmless text of some length, forty bytes');
    assert.throws(() => small.maskValue({ items: Array.from({ length: 40 }, () => run) }), MaskingRefusedError);
    assert.doesNotThrow(() => small.maskValue({ items: Array.from({ length: 10 }, () => run) }));
  });

  it('base64 in a JSON text is decoded once, not again when the raw text is looked at', () => {
    const text = JSON.stringify({ attachment: base64('harmless words '.repeat(45)) });
    assert.doesNotThrow(() => small.maskValue({ content: [{ type: 'text', text }] }));
  });

  it('the mask stage withholds such a response from the client (fail closed)', () => {
    const stage = new MaskStage(() => small);
    const v = stage.inspect({ jsonrpc: '2.0', id: 9, result: { contents: [{ uri: 'x', blob: base64(Buffer.alloc(4096, 'a')) }] } } as JsonRpcMessage, {
      session: sessionInfo('s', 'c', { subject: 'u', issuer: 'i', groups: [] }),
      direction: 'toClient',
    });
    const m = (v as { message: { error: { code: number; message: string } } }).message;
    assert.equal(m.error.code, ErrorCode.Denied);
    assert.match(m.error.message, /withheld: .*base64/);
  });

  it('a run of megabytes is scanned without overflowing the stack, in bounded time', { timeout: 60_000 }, () => {
    const huge = { text: `x ${'A'.repeat(12 * 1024 * 1024)} ${base64(`k ${token}`)}` };
    const { value } = masker.maskValue(huge);
    assert.ok(!JSON.stringify(value).includes(base64(`k ${token}`)));
  });
});

describe('nine-digit SSNs and lower-case IBANs', () => {
  it('masks nine digits next to an SSN label, or under an SSN key (as a string or a number), and nowhere else', () => {
    assert.equal(masker.maskString('SSN: 536228726; ssn#536-22-8726')?.text, 'SSN: [REDACTED:us-ssn]; ssn#[REDACTED:us-ssn]');
    assert.equal(masker.maskString('Social Security No. 536 22 8726')?.text, 'Social Security No. [REDACTED:us-ssn]');
    assert.deepEqual(masker.maskValue({ ssn: 536228726, employeeSSN: '536228726', id: 536228726, order: '536228726' }).value, {
      ssn: '[REDACTED:us-ssn]',
      employeeSSN: '[REDACTED:us-ssn]',
      id: 536228726,
      order: '536228726',
    });
    for (const text of ['order 536228726', 'SSN: 000228726', 'ssn: 666228726', 'SSN: 5362287261', 'ssn_count 536228726'])
      assert.equal(masker.maskString(text), undefined, text);
  });

  it('masks lower-case IBANs, grouped or not; not mixed case, nor letters where a country has only digits', () => {
    assert.equal(masker.maskString('to de89 3704 0044 0532 0130 00 and gb82west12345698765432')?.text, 'to [REDACTED:iban] and [REDACTED:iban]');
    for (const text of ['De89370400440532013000', 'span be5609f728403e19', 'de89 3704 0044 0532 0130 01'])
      assert.equal(masker.maskString(text), undefined, text);
  });
});
