import { codePoint, excerpt, type ScanRule } from '../rule.js';

/**
 * Characters a person does not see but a model reads: text hidden in Unicode tag characters (U+E0000 block, an
 * ASCII copy the screen never shows), bidirectional controls that make the shown order differ from the read
 * order ("Trojan Source"), and zero-width and other format or control characters that hide or split words.
 * A tool definition has no use for any of them. These rules read every string, names included.
 */

const names: Record<number, string> = {
  0x00ad: 'soft hyphen',
  0x034f: 'combining grapheme joiner',
  0x061c: 'arabic letter mark',
  0x180e: 'mongolian vowel separator',
  0x200b: 'zero width space',
  0x200c: 'zero width non-joiner',
  0x200d: 'zero width joiner',
  0x200e: 'left-to-right mark',
  0x200f: 'right-to-left mark',
  0x202a: 'left-to-right embedding',
  0x202b: 'right-to-left embedding',
  0x202c: 'pop directional formatting',
  0x202d: 'left-to-right override',
  0x202e: 'right-to-left override',
  0x2060: 'word joiner',
  0x2066: 'left-to-right isolate',
  0x2067: 'right-to-left isolate',
  0x2068: 'first strong isolate',
  0x2069: 'pop directional isolate',
  0xfeff: 'zero width no-break space',
};

const describe = (c: string) => `${codePoint(c)}${names[c.codePointAt(0)!] ? ` ${names[c.codePointAt(0)!]}` : ''}`;

/** Finds every match of a global pattern: how many, the first, and where. */
function scan(text: string, pattern: RegExp): { count: number; first: string; at: number } | undefined {
  let count = 0;
  let first = '';
  let at = -1;
  for (const m of text.matchAll(pattern)) {
    if (count === 0) [first, at] = [m[0], m.index];
    count++;
  }
  return count === 0 ? undefined : { count, first, at };
}

const bidi = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
const tags = /[\u{e0000}-\u{e007f}]+/gu;
/**
 * Format characters (\p{Cf}: zero widths, word joiner, invisible operators, BOM, …) other than the bidi and tag
 * ones, fillers that render as nothing, runs of variation selectors, and control characters other than tab and
 * line breaks. A zero width joiner between two pictographs (an emoji sequence) is allowed, and so is one
 * variation selector after a character (an emoji's presentation).
 */
const hidden =
  /(?!(?<=\p{Extended_Pictographic}\uFE0F?)\u200d(?=\p{Extended_Pictographic}))(?![\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u{e0000}-\u{e007f}])\p{Cf}|[\u115f\u1160\u17b4\u17b5\u3164\uffa0\u034f]|[\ufe00-\ufe0f\u{e0100}-\u{e01ef}]{2,}|(?<![\ufe00-\ufe0f\u{e0100}-\u{e01ef}])[\u{e0100}-\u{e01ef}]|[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/gu;

export const invisibleRules: readonly ScanRule[] = [
  {
    name: 'tag-characters',
    family: 'invisible',
    reads: 'all',
    check({ text }) {
      const found = scan(text, tags);
      if (found === undefined) return undefined;
      const decoded = [...found.first].map((c) => String.fromCharCode(c.codePointAt(0)! - 0xe0000)).join('');
      return {
        message: `hides text in ${found.count === 1 ? 'a run' : `${found.count} runs`} of Unicode tag characters (invisible), reading ${excerpt(decoded)}`,
      };
    },
  },
  {
    name: 'bidi-control',
    family: 'invisible',
    reads: 'all',
    check({ text }) {
      const found = scan(text, bidi);
      if (found === undefined) return undefined;
      return {
        message: `${found.count} bidirectional control character${found.count === 1 ? '' : 's'} (${describe(found.first)} first), which make the text shown differ from the text read: ${excerpt(text, found.at, 1)}`,
      };
    },
  },
  {
    name: 'invisible-characters',
    family: 'invisible',
    reads: 'all',
    check({ text }) {
      const found = scan(text, hidden);
      if (found === undefined) return undefined;
      return {
        message: `${found.count} invisible or control character${found.count === 1 ? '' : 's'} (${describe([...found.first][0]!)} first): ${excerpt(text, found.at, 1)}`,
      };
    },
  },
];
