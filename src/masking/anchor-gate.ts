import type { Detector, Finding } from './detector.js';

/**
 * Runs the detectors on a string, but only those that can match: a regex pass over the text finds which of
 * all the detectors' anchors (literal strings every match contains) occur in it, and a detector whose anchors
 * do not is skipped. Most strings hold no anchor at all, so most detectors never run on them. Case-sensitive
 * and case-insensitive anchors are looked for in two passes (the first is much the faster). Single-character
 * anchors (`@`, `+`) occur too often to gather this way: those detectors check with indexOf themselves, as do
 * detectors without anchors (after a length check).
 */

interface Gated {
  detector: Detector;
  bit: number;
}

export class AnchorGate {
  readonly #always: Detector[] = [];
  readonly #gated: Gated[] = [];
  readonly #exact: RegExp | undefined;
  readonly #folded: RegExp | undefined;
  /** Anchor (as found, lower-cased for folded ones) → the detectors it lets run, as bits; an anchor also lets run those of the anchors inside it. */
  readonly #bits = new Map<string, number>();

  constructor(detectors: readonly Detector[]) {
    const exact = new Map<string, number>();
    const folded = new Map<string, number>();
    for (const d of detectors) {
      const anchors = d.anchors ?? d.anchorsIgnoringCase;
      // Up to 31 gated detectors (bits of a number); the rest, and those anchors cannot gate, always run.
      if (anchors === undefined || (d.anchors && d.anchorsIgnoringCase) || anchors.some((a) => a.length < 2) || this.#gated.length >= 31) {
        this.#always.push(d);
        continue;
      }
      const bit = 1 << this.#gated.length;
      this.#gated.push({ detector: d, bit });
      const into = d.anchors === undefined ? folded : exact;
      for (const a of anchors) {
        const key = d.anchors === undefined ? a.toLowerCase() : a;
        into.set(key, (into.get(key) ?? 0) | bit);
      }
    }
    // Finding an anchor means finding every anchor inside it too (`github_pat_` holds `gh`).
    for (const [map, fold] of [
      [exact, false],
      [folded, true],
    ] as const) {
      for (const [a, bits] of map) {
        let all = bits;
        for (const [b, other] of [...exact, ...folded]) if (b !== a && (fold ? a : a.toLowerCase()).includes(b.toLowerCase()) && (exact.has(b) ? a.includes(b) : true)) all |= other;
        this.#bits.set(fold ? `i:${a}` : a, all);
      }
    }
    this.#exact = alternation([...exact.keys()], 'g');
    this.#folded = alternation([...folded.keys()], 'gi');
  }

  run(text: string, lower: () => string, out: Finding[]): void {
    for (const d of this.#always) if (d.minLength === undefined || text.length >= d.minLength) d.find(text, lower, out);
    let bits = 0;
    const exact = this.#exact;
    if (exact !== undefined) {
      exact.lastIndex = 0;
      for (let m = exact.exec(text); m !== null; m = exact.exec(text)) bits |= this.#bits.get(m[0]) ?? 0;
    }
    const folded = this.#folded;
    if (folded !== undefined) {
      folded.lastIndex = 0;
      for (let m = folded.exec(text); m !== null; m = folded.exec(text)) bits |= this.#bits.get(`i:${m[0].toLowerCase()}`) ?? 0;
    }
    if (bits === 0) return;
    for (const g of this.#gated) if ((bits & g.bit) !== 0) g.detector.find(text, lower, out, true);
  }
}

function alternation(anchors: string[], flags: string): RegExp | undefined {
  if (anchors.length === 0) return undefined;
  // Longest first, so that where two anchors start together the longer one is the one found.
  const sorted = [...anchors].sort((a, b) => b.length - a.length);
  return new RegExp(sorted.map((a) => a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), flags);
}
