import assert from 'node:assert/strict';

/** The base64 characters that encode `value` alone when it sits `offset` bytes into a longer encoded text. */
function base64Inside(value: string, offset: number, alphabet: 'base64' | 'base64url'): string {
  const encoded = Buffer.from(`${'\0'.repeat(offset)}${value}`)
    .toString(alphabet)
    .replace(/=+$/, '');
  const bits = 8 * Buffer.byteLength(value);
  return encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * offset + bits) / 6));
}

/** Every spelling of a credential that must never leave the gateway. */
export function spellingsOf(value: string): string[] {
  const unicode = [...value].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
  const url = encodeURIComponent(value);
  const hex = Buffer.from(value).toString('hex');
  const forms = [value, JSON.stringify(value).slice(1, -1), unicode, url, url.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()), hex, hex.toUpperCase()];
  for (const offset of [0, 1, 2]) for (const alphabet of ['base64', 'base64url'] as const) forms.push(base64Inside(value, offset, alphabet));
  return forms;
}

/** Asserts that no spelling of any value, nor any 10-character piece of a value (as is or `\u`-escaped), is in `text`. */
export function assertNoCredential(text: string, values: readonly string[], where: string): void {
  for (const value of values) {
    for (const form of spellingsOf(value)) assert.ok(!text.includes(form), `${where} holds a spelling of a credential: ${JSON.stringify(form)}`);
    const unicode = spellingsOf(value)[2]!;
    for (let i = 0; i + 10 <= value.length; i++) {
      assert.ok(!text.includes(value.slice(i, i + 10)), `${where} holds a piece of a credential: ${JSON.stringify(value.slice(i, i + 10))}`);
      assert.ok(!text.includes(unicode.slice(6 * i, 6 * (i + 10))), `${where} holds a \\u-escaped piece of a credential`);
    }
  }
}
