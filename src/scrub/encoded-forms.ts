/**
 * How one credential value is found in text, however a server wrote it back: as is, inside JSON strings (short
 * escapes, `\u` escapes, any mix of them, JSON inside JSON), URL-encoded (either hex case, `+` for a space, twice
 * encoded), in base64 (standard and URL-safe) at every byte alignment inside a longer encoding, and in hex.
 *
 * Finding uses plain strings (literalForms), looked for in the text and in the text with its escapes decoded
 * (unescaped). Replacing uses one pattern per value (valuePattern) in which each character matches any of its
 * escaped spellings, so that every mix is replaced (a server that escapes only some characters, as Go escapes `<>&`
 * and PHP escapes `/`).
 *
 * Runs of backslashes are bounded (at most 8: JSON nested three deep) in both, so that a server cannot make the
 * search quadratic with a long run of them; the two must accept exactly the same escapes.
 */

const hexDigits = '0123456789abcdef';

/** `n` as `width` hex digits, each letter matching either case. */
function hexPattern(n: number, width: number): string {
  let out = '';
  for (const d of n.toString(16).padStart(width, '0')) out += hexDigits.indexOf(d) < 10 ? d : `[${d}${d.toUpperCase()}]`;
  return out;
}

function regexLiteral(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** JSON's short escapes, as patterns: one backslash per nesting level (a JSON text inside a JSON string has more). */
const shortEscapes: Record<string, string> = {
  '"': '\\\\{1,8}"',
  '/': '\\\\{1,8}/',
  '\\': '\\\\{2,8}',
  '\n': '\\\\{1,8}n',
  '\r': '\\\\{1,8}r',
  '\t': '\\\\{1,8}t',
  '\b': '\\\\{1,8}b',
  '\f': '\\\\{1,8}f',
};

/** Every spelling of one character (a code point) inside JSON strings at any nesting depth, or in a URL. */
function characterPattern(char: string): string {
  const spellings: string[] = [];
  // Escaped spellings first, so that the backslashes of an escape are never taken for a literal backslash.
  const short = shortEscapes[char];
  if (short !== undefined) spellings.push(short);
  let units = '';
  for (let i = 0; i < char.length; i++) units += `\\\\{1,8}u${hexPattern(char.charCodeAt(i), 4)}`;
  spellings.push(units);
  let bytes = '';
  for (const b of Buffer.from(char, 'utf8')) bytes += `%(?:25)?${hexPattern(b, 2)}`;
  spellings.push(bytes);
  if (char === ' ') spellings.push('\\+');
  spellings.push(regexLiteral(char));
  return `(?:${spellings.join('|')})`;
}

/** A pattern matching `text` with each character in any of its spellings. */
export function spelledPattern(text: string): string {
  let out = '';
  for (const char of text) out += characterPattern(char);
  return out;
}

/**
 * The base64 characters that depend on `bytes` alone when they sit at `offset` (0, 1 or 2) bytes past a 3-byte
 * boundary of a longer encoded text: the characters that mix in bits of the neighbouring bytes are dropped.
 */
export function base64Core(bytes: Buffer, offset: number, alphabet: 'base64' | 'base64url'): string {
  const encoded = Buffer.concat([Buffer.alloc(offset), bytes])
    .toString(alphabet)
    .replace(/=+$/, '');
  return encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
}

/** The spellings a value is first looked for in, as plain strings: itself, its base64 cores, its hex. */
export function literalForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms = new Set([value, value.replaceAll(' ', '+')]);
  for (const offset of [0, 1, 2]) {
    forms.add(base64Core(bytes, offset, 'base64'));
    forms.add(base64Core(bytes, offset, 'base64url'));
  }
  forms.add(bytes.toString('hex'));
  forms.add(bytes.toString('hex').toUpperCase());
  return [...forms];
}

/**
 * One pattern for every spelling of a value: each literal form with each character in any of its escaped
 * spellings; hex in either case, or mixed.
 */
export function valuePattern(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  const patterns = new Set([spelledPattern(value)]);
  for (const offset of [0, 1, 2]) {
    patterns.add(spelledPattern(base64Core(bytes, offset, 'base64')));
    patterns.add(spelledPattern(base64Core(bytes, offset, 'base64url')));
  }
  patterns.add([...bytes].map((b) => hexPattern(b, 2)).join(''));
  return [...patterns].join('|');
}

const escapes = /\\{1,8}u([0-9a-fA-F]{4})|\\{1,8}(["\\/bfnrt])|(?:%(?:25)?[0-9a-fA-F]{2})+/g;
const shortUnescaped: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * The text with every escape that valuePattern() accepts decoded, so that the literal forms can be looked for in it
 * quickly. Only for finding which credentials occur: the text itself is then scrubbed with their patterns.
 */
export function unescaped(text: string): string {
  return text.replace(escapes, (found: string, unit: string | undefined, short: string | undefined) => {
    if (unit !== undefined) return String.fromCharCode(parseInt(unit, 16));
    if (short !== undefined) return shortUnescaped[short]!;
    // A run of URL-encoded bytes: decoded together, so that multi-byte UTF-8 characters come out whole.
    const bytes = found
      .split('%')
      .slice(1)
      .map((h) => parseInt(h.slice(-2), 16));
    return Buffer.from(bytes).toString('utf8');
  });
}
