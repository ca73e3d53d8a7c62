/**
 * Base64 inside messages, made readable for the detectors: runs of base64 (or base64url) in text, and binary
 * fields (a resource's `blob`). A run is decoded only when its first bytes decode to text or to a binary format
 * known to carry readable text, so ordinary long words, hex digests and ids (valid base64 characters all) cost a
 * 48-byte decode and nothing more. Decoded text is read whole; a binary, as the printable runs a `strings` would
 * show (random bytes make short look-alikes of an e-mail address now and then; 16 printable characters in a row
 * they practically never make).
 */

/** The shortest run worth decoding: 16 characters are 12 bytes (an SSN written with dashes is 11). */
export const minRun = 16;

/** A run of base64 in a text: where it is, and its characters (a wrapped encoding's lines joined). */
export interface EncodedRun {
  start: number;
  end: number;
  encoded: string;
}

/** What decoded bytes give the detectors: text, or a binary's printable runs. */
export type Readable = { text: string } | { strings: string[] };

/** Letters, digits, + / (base64) and - _ (base64url), in a table (the scan below reads few characters, each fast). */
/** Each base64 and base64url character's value plus one (0: not a base64 character). */
const base64Values = new Uint8Array(128);
[...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].forEach((c, i) => (base64Values[c.charCodeAt(0)] = i + 1));
base64Values['-'.charCodeAt(0)] = 63;
base64Values['_'.charCodeAt(0)] = 64;

function isBase64Char(c: number): boolean {
  return c < 128 && base64Values[c] !== 0;
}

/**
 * Where the next run of at least `minRun` base64 characters begins, from `from` (its end in `runFound`); -1 when
 * there is none. A skip search: the last character of a window of `minRun` is read first, then the window
 * backwards from it; the first character found outside the alphabet rules out every window that holds it, so the
 * next window tried ends `minRun` past it. In prose and logs a probe lands in a word and reads back to its start,
 * so about one character in three or four is read, and a character outside the alphabet skips a whole window.
 */
function nextRun(text: string, from: number): number {
  // Invariant: no window of `minRun` base64 characters, starting at `from` or later, ends before `last`.
  for (let last = from + minRun - 1; last < text.length; ) {
    if (!isBase64Char(text.charCodeAt(last))) {
      last += minRun;
      continue;
    }
    const first = last - minRun + 1;
    let j = last - 1;
    while (j >= first && isBase64Char(text.charCodeAt(j))) j--;
    if (j >= first) {
      last = j + minRun;
      continue;
    }
    // The window [first, last] is the first one whole, so its run starts at `first` (a base64 character before it,
    // at `from` or later, would have made an earlier window whole) and ends where the alphabet does.
    let end = last + 1;
    while (end < text.length && isBase64Char(text.charCodeAt(end))) end++;
    runFound = end;
    return first;
  }
  return -1;
}

/** Where the run `nextRun` last found ends (one number kept here rather than an object made for each run). */
let runFound = 0;

/** Where the run that reaches `from` ends: at the first character `stop` finds from there, or the end of `text`. */
function runEnd(text: string, from: number, stop: RegExp): number {
  stop.lastIndex = from;
  return stop.exec(text)?.index ?? text.length;
}

const notPrintable = /[^\t\n\r\x20-\x7e]/g;

/**
 * The base64 runs of `text` worth decoding (their first bytes decode to text or a known binary) that can be whole encodings: at least 16 characters, with valid padding (up to two
 * `=` that end it and make its length a multiple of 4) or none (then not one character past a multiple of 4,
 * which no encoding is). Lines of equal width, a multiple of 4, are one wrapped encoding (`base64` on the command
 * line, MIME, PEM bodies), so a secret split by a line break is still decoded whole.
 */
export function base64Runs(text: string): EncodedRun[] | undefined {
  let runs: EncodedRun[] | undefined;
  if (text.length < minRun) return runs;
  for (let start = nextRun(text, 0), end = runFound; start !== -1; start = nextRun(text, end), end = runFound) {
    if (!worthDecoding(text, start, Math.min(end, start + 64))) continue;
    let encoded = text.slice(start, end);
    const width = encoded.length;
    if (width % 4 === 0) {
      for (;;) {
        const next = text.charCodeAt(end) === 10 ? end + 1 : text.charCodeAt(end) === 13 && text.charCodeAt(end + 1) === 10 ? end + 2 : -1;
        if (next < 0) break;
        let stop = next;
        while (stop < text.length && stop - next <= width && isBase64Char(text.charCodeAt(stop))) stop++;
        if (stop === next || stop - next > width) break;
        encoded += text.slice(next, stop);
        end = stop;
        if (stop - next < width) break;
      }
    }
    let pad = 0;
    while (pad < 2 && text.charCodeAt(end + pad) === 61) pad++;
    // `=` followed by more (key=value) is not padding.
    if (pad > 0 && (isBase64Char(text.charCodeAt(end + pad)) || text.charCodeAt(end + pad) === 61 || (encoded.length + pad) % 4 !== 0)) pad = 0;
    end += pad;
    if (pad > 0 || encoded.length % 4 !== 1) (runs ??= []).push({ start, end, encoded });
  }
  return runs;
}

/** The first bytes of a run, decoded into one buffer reused (most runs are ids and digests, turned away here). */
const head = new Uint8Array(48);

/** Whether `text[from, to)` (at most 64 base64 characters) decodes to text or to the start of a binary format known to carry readable text. */
function worthDecoding(text: string, from: number, to: number): boolean {
  // The first 16 characters (12 bytes) first, none of them amiss: noise is turned away having decoded only those.
  if (!(decodeHead(text, from, from + 16) === 12 && looksLikeText(head, 12, true, 0)) && !knownBinary(head)) return false;
  const length = decodeHead(text, from, to);
  return looksLikeText(head, length, true) || knownBinary(head);
}

/** Decodes `text[from, to)` into `head`; the number of bytes decoded. */
function decodeHead(text: string, from: number, to: number): number {
  let bits = 0;
  let n = 0;
  let length = 0;
  for (let i = from; i < to; i++) {
    bits = (bits << 6) | (base64Values[text.charCodeAt(i)]! - 1);
    if (++n === 4) {
      head[length++] = bits >> 16;
      head[length++] = (bits >> 8) & 0xff;
      head[length++] = bits & 0xff;
      bits = 0;
      n = 0;
    }
  }
  return length;
}

/** Decoded bytes as the detectors read them: valid, printable UTF-8 as text; anything else as its printable runs. */
export function readable(bytes: Buffer): Readable {
  if (looksLikeText(bytes, bytes.length, false)) return { text: bytes.toString('utf8') };
  const latin1 = bytes.toString('latin1');
  const strings: string[] = [];
  printable.lastIndex = 0;
  for (let m = printable.exec(latin1); m !== null; m = printable.exec(latin1)) {
    const end = runEnd(latin1, m.index + minRun, notPrintable);
    strings.push(latin1.slice(m.index, end));
    printable.lastIndex = end;
  }
  return { strings };
}

/** Sixteen printable ASCII characters (tab and line breaks included): where a binary's readable run begins. */
const printable = /[\t\n\r\x20-\x7e]{16}/g;

/** A replacement for a binary field: the marker, encoded as base64 so the field stays valid. */
export function encodedMarker(marker: string): string {
  return Buffer.from(marker, 'utf8').toString('base64');
}

/**
 * Text: UTF-8 in which at most one byte in twenty is a control character or breaks the encoding (a `partial`
 * head may end inside a character). Random bytes fail at once: half of them are not valid UTF-8.
 */
function looksLikeText(bytes: Uint8Array, length: number, partial: boolean, allowed = Math.floor(length / 20)): boolean {
  if (length === 0) return false;
  let bad = 0;
  for (let i = 0; i < length; i++) {
    const b = bytes[i]!;
    if (b < 0x80) {
      if ((b < 0x20 && b !== 9 && b !== 10 && b !== 13) || b === 0x7f) bad++;
    } else {
      const follow = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
      let ok = follow > 0;
      for (let k = 1; ok && k <= follow; k++) {
        if (i + k >= length) {
          ok = partial;
          break;
        }
        const c = bytes[i + k]!;
        ok = c >= 0x80 && c <= 0xbf;
      }
      if (ok) i += Math.min(follow, length - 1 - i);
      else bad++;
    }
    if (bad > allowed) return false;
  }
  return true;
}

/** PDF, PNG, GIF, JPEG, ZIP (office documents too) and gzip, by their first bytes. */
const magics = [
  [0x25, 0x50, 0x44, 0x46],
  [0x89, 0x50, 0x4e, 0x47],
  [0x47, 0x49, 0x46, 0x38],
  [0xff, 0xd8, 0xff],
  [0x50, 0x4b, 0x03, 0x04],
  [0x1f, 0x8b],
];

/** Plain loops: this runs for every run of base64 characters, most of them ids and digests. */
function knownBinary(head: Uint8Array): boolean {
  for (const magic of magics) {
    let i = 0;
    while (i < magic.length && head[i] === magic[i]) i++;
    if (i === magic.length) return true;
  }
  return false;
}
