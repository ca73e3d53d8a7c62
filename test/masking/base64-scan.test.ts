import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { base64Runs } from '../../src/masking/base64.js';

/**
 * The scan for base64 runs reads only some characters (a skip search over windows of 16), so a run must be found
 * wherever it starts and however long it is, next to words made of the same alphabet that are too short to count.
 */

/** Base64 of plain text (it decodes to text, so the scan keeps it), `length` characters long. */
function run(length: number): string {
  return Buffer.from('The quick brown fox jumps over the lazy dog, twice over. '.repeat(2)).toString('base64').slice(0, length);
}

/** `length` characters of short base64-alphabet words (at most 15 in a row) and separators. */
function filler(length: number): string {
  const words = ['a', 'id', 'user_9', 'x-y', 'ab/cd', 'Q', 'abcdefghijklmno', 'v1+2'];
  const separators = [' ', '.', ':', ', ', '\n', '='];
  let out = '';
  for (let i = 0; out.length < length; i++) out += words[i % words.length]! + separators[i % separators.length]!;
  // Cut, and end on a separator so the run after it stands alone.
  return `${out.slice(0, Math.max(0, length - 1))}${length > 0 ? ' ' : ''}`;
}

describe('the base64 run scan', () => {
  it('finds a run at every offset and of every length from 16 characters, between short words', () => {
    for (let length = 16; length <= 44; length++) {
      if (length % 4 === 1) continue; // no encoding is one character past a multiple of 4
      for (let offset = 0; offset <= 40; offset++) {
        const before = filler(offset);
        const text = `${before}${run(length)} ${filler(offset % 7)}`;
        assert.deepEqual(
          base64Runs(text)?.map((r) => [r.start, r.end]),
          [[before.length, before.length + length]],
          `length ${length} after ${JSON.stringify(before)}`,
        );
      }
    }
  });

  it('finds runs one separator apart, and none in 15-character words', () => {
    const a = run(24);
    const b = run(20);
    assert.deepEqual(
      base64Runs(`${a}.${b}`)?.map((r) => [r.start, r.end]),
      [
        [0, 24],
        [25, 45],
      ],
    );
    assert.equal(base64Runs(`${'abcdefghijklmno '.repeat(20)}`), undefined);
    assert.equal(base64Runs(run(15)), undefined);
  });
});
