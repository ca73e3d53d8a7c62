import type { Detector, Finding } from './detector.js';

/**
 * Runs the detectors on a string, but only those that can match: one regex pass over the text finds which of
 * all the detectors' anchors (literal strings every match contains) occur in it, and a detector whose anchors
 * do not is skipped. Most strings hold no anchor at all, so most detectors never run on them. The pass ignores
 * case for every anchor (one case-insensitive pass over a prefix tree of them is faster than a case-sensitive
 * and a case-insensitive pass): a case-sensitive anchor found in another case only lets its detector run for
 * nothing, since the detector's own pattern is case-sensitive. Single-character anchors (`@`, `+`) occur too
 * often to gather this way: those detectors check with indexOf themselves, as do detectors without anchors
 * (after a length check).
 */
export class AnchorGate {
  readonly #always: Detector[] = [];
  readonly #gated: Detector[] = [];
  readonly #anchors: RegExp | undefined;
  /** Lower-cased anchor → the detectors it lets run, as bits (bit i is #gated[i]). */
  readonly #bits = new Map<string, number>();

  constructor(detectors: readonly Detector[]) {
    const own = new Map<string, number>();
    for (const d of detectors) {
      const anchors = d.anchors ?? d.anchorsIgnoringCase;
      // Up to 31 gated detectors (bits of a number); the rest, and those anchors cannot gate, always run.
      if (anchors === undefined || (d.anchors && d.anchorsIgnoringCase) || anchors.some((a) => a.length < 2) || this.#gated.length >= 31) {
        this.#always.push(d);
        continue;
      }
      const bit = 1 << this.#gated.length;
      this.#gated.push(d);
      for (const a of anchors) own.set(a.toLowerCase(), (own.get(a.toLowerCase()) ?? 0) | bit);
    }
    // Finding an anchor means finding every anchor inside it (`github_pat_` holds `gh`). And the pass stops at the
    // shortest anchor where several start together (`sk-` of `sk-ant-`), so an anchor stands for those it begins.
    for (const [a, bits] of own) {
      let all = bits;
      for (const [b, other] of own) if (a.includes(b) || b.startsWith(a)) all |= other;
      this.#bits.set(a, all);
    }
    this.#anchors = own.size > 0 ? new RegExp(prefixTree([...own.keys()]), 'gi') : undefined;
  }

  /** The text being looked at, and it lower-cased once a detector asks (one function for every text, not a closure made for each). */
  #text = '';
  #lowered: string | undefined;
  readonly #lower = () => (this.#lowered ??= this.#text.toLowerCase());

  /** Appends to `out` what the detectors that can match find in `text`. */
  run(text: string, out: Finding[]): void {
    this.#text = text;
    this.#lowered = undefined;
    try {
      this.#find(text, out);
    } finally {
      // Not kept past the call: the text may hold a secret.
      this.#text = '';
      this.#lowered = undefined;
    }
  }

  #find(text: string, out: Finding[]): void {
    const lower = this.#lower;
    for (const d of this.#always) if (d.minLength === undefined || text.length >= d.minLength) d.find(text, lower, out);
    const anchors = this.#anchors;
    if (anchors === undefined) return;
    let bits = 0;
    anchors.lastIndex = 0;
    for (let m = anchors.exec(text); m !== null; m = anchors.exec(text)) bits |= this.#bits.get(m[0].toLowerCase()) ?? 0;
    if (bits === 0) return;
    for (let i = 0; i < this.#gated.length; i++) if ((bits & (1 << i)) !== 0) this.#gated[i]!.find(text, lower, out, true);
  }
}

/** A regex source matching any of `words`, factored by common prefixes (`g(?:h(?:p_|o_)|l…)`), which the regex engine scans faster than a flat alternation. A word that is a prefix of others ends the branch there. */
function prefixTree(words: readonly string[]): string {
  if (words.includes('')) return '';
  const byFirst = new Map<string, string[]>();
  for (const w of words) byFirst.set(w[0]!, [...(byFirst.get(w[0]!) ?? []), w.slice(1)]);
  const branches = [...byFirst].map(([c, rest]) => c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&') + prefixTree(rest));
  return branches.length === 1 ? branches[0]! : `(?:${branches.join('|')})`;
}
