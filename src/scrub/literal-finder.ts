/**
 * Finds which of many fixed strings occur in a text, in one pass whatever their number: a filter on the last four
 * characters seen (a bit per hash of them) lets through only the positions where a string might start, and those
 * are checked exactly. A regular expression alternating hundreds of literals is slower by orders of magnitude.
 */

/** log2 of the bits in the filter: about 64 bits per string (few false candidates), from 512 bytes to 128 KiB. */
function filterBitsFor(strings: number): number {
  return Math.min(20, Math.max(12, Math.ceil(Math.log2(Math.max(1, strings) * 64))));
}

/** The key of four characters: their low bytes (the filter only narrows; matches are checked exactly). */
function keyOf(text: string, at: number): number {
  return (
    (((text.charCodeAt(at) & 0xff) << 24) |
      ((text.charCodeAt(at + 1) & 0xff) << 16) |
      ((text.charCodeAt(at + 2) & 0xff) << 8) |
      (text.charCodeAt(at + 3) & 0xff)) >>>
    0
  );
}

export class LiteralFinder {
  readonly #hashBits: number;
  readonly #bits: Int32Array;
  /** By slot: the strings starting with characters of that hash, and the tag each stands for. */
  readonly #bySlot = new Map<number, Array<{ text: string; tag: number }>>();

  /** Each string must be at least four characters long. */
  constructor(literals: ReadonlyArray<{ text: string; tag: number }>) {
    this.#hashBits = filterBitsFor(literals.length);
    this.#bits = new Int32Array(1 << (this.#hashBits - 5));
    for (const l of literals) {
      if (l.text.length < 4) throw new Error('LiteralFinder: strings shorter than four characters are not supported');
      const slot = Math.imul(keyOf(l.text, 0), 0x9e3779b1) >>> (32 - this.#hashBits);
      this.#bits[slot >>> 5]! |= 1 << (slot & 31);
      let list = this.#bySlot.get(slot);
      if (list === undefined) this.#bySlot.set(slot, (list = []));
      list.push(l);
    }
  }

  /** Adds the tag of every string that occurs in `text` to `found`. */
  findTags(text: string, found: Set<number>): void {
    const bits = this.#bits;
    const shift = 32 - this.#hashBits;
    let key = 0;
    for (let i = 0; i < text.length; i++) {
      key = ((key << 8) | (text.charCodeAt(i) & 0xff)) >>> 0;
      if (i < 3) continue;
      const slot = Math.imul(key, 0x9e3779b1) >>> shift;
      if ((bits[slot >>> 5]! & (1 << (slot & 31))) === 0) continue;
      for (const l of this.#bySlot.get(slot) ?? []) if (text.startsWith(l.text, i - 3)) found.add(l.tag);
    }
  }
}
