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
  /** Appends what it finds in `text` (`lower` is `text` lower-cased, computed once for every detector). */
  find(text: string, lower: () => string, out: Finding[]): void;
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
}

function present(haystack: string, needles: readonly string[]): boolean {
  for (const n of needles) if (haystack.includes(n)) return true;
  return false;
}

export function regexDetector(spec: RegexDetectorSpec): Detector {
  if (!spec.pattern.global) throw new Error(`detector ${spec.name}: the pattern must be global`);
  if (spec.pattern.source.includes('(?<secret>') && !spec.pattern.hasIndices) throw new Error(`detector ${spec.name}: a pattern with a secret group needs the d flag`);
  return {
    name: spec.name,
    family: spec.family,
    category: spec.category,
    confidence: spec.confidence,
    onByDefault: spec.onByDefault ?? true,
    find(text, lower, out) {
      if (spec.anchors !== undefined && !present(text, spec.anchors)) return;
      if (spec.anchorsIgnoringCase !== undefined && !present(lower(), spec.anchorsIgnoringCase)) return;
      const re = spec.pattern;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        const span = m.indices?.groups?.secret ?? [m.index, m.index + m[0].length];
        const value = text.slice(span[0], span[1]);
        if (value.length === 0) continue;
        if (spec.validate !== undefined && !spec.validate(value)) continue;
        out.push({ start: span[0], end: span[1], detector: spec.name });
      }
    },
  };
}
