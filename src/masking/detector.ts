/**
 * A detector finds one kind of secret or personal data in a string. Most are a regular expression with a
 * cheap pre-check (literal anchors that every match contains, found with indexOf before any regex runs) and
 * an optional validator (a checksum) that turns look-alikes away. Built-in patterns are written so that no
 * input makes them backtrack: bounded repetitions, no nested quantifiers (test/masking/hostile.test.ts runs
 * ReDoS-shaped strings against every one).
 */

export type Category = 'secret' | 'pii';
export type Confidence = 'high' | 'medium' | 'low';

/** A span of a string to mask, and what found it. */
export interface Finding {
  start: number;
  end: number;
  detector: string;
}

export interface Detector {
  /** Stable name, used in config, in the replacement (`[REDACTED:name]`) and in the recording. */
  readonly name: string;
  /** The family module it comes from (aws, github, cards, …), selectable as a group in config. */
  readonly family: string;
  readonly category: Category;
  readonly confidence: Confidence;
  /** Whether it is on when the config does not list detectors (some, like IP addresses, are opt-in). */
  readonly onByDefault: boolean;
  /** Literal strings one of which every match contains: a detector runs only on text that holds one. */
  readonly anchors?: readonly string[];
  /** The shortest text a match fits in: shorter strings are not looked at. */
  readonly minLength?: number;
  /** As `anchors`, looked for in the lower-cased text. */
  readonly anchorsIgnoringCase?: readonly string[];
  /**
   * Recognizes a whole JSON value by the key it is under, where the value alone says too little (nine digits under
   * `ssn`): `key` tells the keys that say what their value is, `value` the values such a key's value must look like
   * (numbers are given as numbers). Two tests, so the engine can ask about each key once and remember the answer.
   */
  readonly underKey?: { key: (key: string) => boolean; value: (value: string | number) => boolean };
  /**
   * Appends what it finds in `text` (`lower` is `text` lower-cased, computed once for every detector).
   * `anchorsChecked` says the caller has already found one of its anchors in the text.
   */
  find(text: string, lower: () => string, out: Finding[], anchorsChecked?: boolean): void;
}

export interface RegexDetectorSpec {
  name: string;
  family: string;
  category: Category;
  confidence: Confidence;
  onByDefault?: boolean;
  /** Global regex. A named group `secret` marks the part to mask when the match has context around it. */
  pattern: RegExp;
  /** The pattern runs only if one of these occurs in the text (case-sensitive). */
  anchors?: readonly string[];
  /** As `anchors`, but looked for in the lower-cased text. */
  anchorsIgnoringCase?: readonly string[];
  /** Rejects a candidate that only looks right (a checksum that fails, a documentation example). */
  validate?: (value: string) => boolean;
  /** A value in quotes is masked inside them (`password: "…"` keeps its quotes). */
  trimQuotes?: boolean;
  /** The shortest text a match fits in. */
  minLength?: number;
}

function present(haystack: string, needles: readonly string[]): boolean {
  for (const n of needles) if (haystack.includes(n)) return true;
  return false;
}

export function regexDetector(spec: RegexDetectorSpec): Detector {
  if (!spec.pattern.global) throw new Error(`detector ${spec.name}: the pattern must be global`);
  if (spec.pattern.source.includes('(?<secret>') && !spec.pattern.hasIndices)
    throw new Error(`detector ${spec.name}: a pattern with a secret group needs the d flag`);
  return {
    name: spec.name,
    family: spec.family,
    category: spec.category,
    confidence: spec.confidence,
    onByDefault: spec.onByDefault ?? true,
    ...(spec.anchors ? { anchors: spec.anchors } : {}),
    ...(spec.anchorsIgnoringCase ? { anchorsIgnoringCase: spec.anchorsIgnoringCase } : {}),
    ...(spec.minLength ? { minLength: spec.minLength } : {}),
    find(text, lower, out, anchorsChecked) {
      if (!anchorsChecked) {
        if (spec.anchors !== undefined && !present(text, spec.anchors)) return;
        if (spec.anchorsIgnoringCase !== undefined && !present(lower(), spec.anchorsIgnoringCase)) return;
      }
      const re = spec.pattern;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        let [from, to] = m.indices?.groups?.secret ?? [m.index, m.index + m[0].length];
        if (spec.trimQuotes && to - from >= 2 && (text[from] === '"' || text[from] === "'") && text[to - 1] === text[from]) {
          from++;
          to--;
        }
        const span = [from, to] as const;
        const value = text.slice(span[0], span[1]);
        if (value.length === 0) continue;
        if (spec.validate !== undefined && !spec.validate(value)) continue;
        out.push({ start: span[0], end: span[1], detector: spec.name });
      }
    },
  };
}

export interface PivotDetectorSpec {
  name: string;
  family: string;
  category: Category;
  confidence: Confidence;
  /** The rare literal every match contains (`@`, `://`): found with indexOf, the only thing done everywhere. */
  pivot: string;
  /** Where the match starts, scanning back from the pivot at `at`; -1 when nothing before it fits. */
  back: (text: string, at: number) => number;
  /** Sticky regex (flags `y`, and `d` for a `secret` group) matched from the pivot onwards. */
  forward: RegExp;
  /** When the match has a `secret` group, only it is masked; else from the start found behind to the end. */
  validate?: (value: string) => boolean;
}

/**
 * A detector that starts from a rare literal instead of trying every position: indexOf finds each pivot, a
 * scan backwards finds where the match begins, and a sticky regex checks the rest. A regex that would have to
 * begin with the part before the pivot is tried at every word in the text; this is tried only at pivots.
 */
export function pivotDetector(spec: PivotDetectorSpec): Detector {
  if (!spec.forward.sticky) throw new Error(`detector ${spec.name}: the forward pattern must be sticky`);
  return {
    name: spec.name,
    family: spec.family,
    category: spec.category,
    confidence: spec.confidence,
    onByDefault: true,
    anchors: [spec.pivot],
    find(text, _lower, out) {
      for (let at = text.indexOf(spec.pivot); at >= 0; at = text.indexOf(spec.pivot, at + 1)) {
        const start = spec.back(text, at);
        if (start < 0) continue;
        spec.forward.lastIndex = at;
        const m = spec.forward.exec(text);
        if (m === null) continue;
        const [from, to] = m.indices?.groups?.secret ?? [start, at + m[0].length];
        const value = text.slice(from, to);
        if (value.length === 0 || (spec.validate !== undefined && !spec.validate(value))) continue;
        out.push({ start: from, end: to, detector: spec.name });
        at = Math.max(at, to - 1);
      }
    },
  };
}

/** Scans back from `at` over characters `ok` accepts, at most `max` of them; -1 when there are none or too many. */
export function scanBack(text: string, at: number, ok: (c: number) => boolean, max: number, first?: (c: number) => boolean): number {
  let i = at;
  while (i > 0 && at - i < max + 1 && ok(text.charCodeAt(i - 1))) i--;
  if (i === at || at - i > max) return -1;
  // The run must not continue past the limit (then it is longer than any valid match), and must begin well.
  if (i > 0 && ok(text.charCodeAt(i - 1))) return -1;
  if (first !== undefined) {
    while (i < at && !first(text.charCodeAt(i))) i++;
    if (i === at) return -1;
  }
  return i;
}
