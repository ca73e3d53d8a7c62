import type { Detector, Finding } from './detector.js';
import type { JsonPathRule } from './custom.js';
import { AnchorGate } from './anchor-gate.js';
import { base64Runs, encodedMarker, minRun, readable } from './base64.js';
import { fieldMatcher } from './fields.js';
import { embeddedJson, isBinaryField, withKeysRenamed } from './json-shapes.js';

/**
 * The masking engine: finds what the detectors find in every string of a JSON value, keys included (decoded
 * strings, so an escape sequence cannot hide a secret), masks the value of every key a field rule names, and
 * descends into JSON carried inside strings and into base64 (text runs and binary fields, see base64.ts). Copy on
 * write: a value with nothing to mask comes back as the same object, so the common case allocates nothing. Each
 * redaction is reported with its detector, JSON path and count, never the value.
 */

export interface Redaction {
  detector: string;
  /**
   * Where, as a JSONPath (`$.result.content[0].text`); `<json>` marks a descent into JSON inside a string, `<key>`
   * an object's keys, `<base64>` a finding inside base64.
   */
  path: string;
  count: number;
}

/** A value the engine will not process (nested too deep): the caller fails closed. */
export class MaskingRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MaskingRefusedError';
  }
}

export interface MaskerOptions {
  detectors: readonly Detector[];
  /** Key words of the field rules; empty turns them off. */
  fieldWords: readonly string[];
  replace: (value: string, detector: string) => string;
  /** Exact values never masked (documentation examples such as AKIAIOSFODNN7EXAMPLE). */
  allow?: readonly string[];
  /** Deeper JSON is refused rather than walked. */
  maxDepth?: number;
  /** Places in a message whose value is masked whatever it holds (custom JSON-path detectors). */
  pathRules?: readonly JsonPathRule[];
  /** Base64 decoded per message, at most; a message with more is refused (default 16 MiB). */
  maxDecodedBytes?: number;
}

/** Keys the protocol itself uses to correlate messages: their values are identifiers, never masked (or progress would stop reaching its request). */
const protocolKeys = new Set(['progressToken']);

/** The detector name under which field rules report. */
export const fieldRule = 'field-rule';

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Base64 decoded per message, at most (decoding is linear, but a message may be all base64). */
export const defaultMaxDecodedBytes = 16 * 1024 * 1024;

/** Base64 decoded, and its decoded text decoded once more (base64 in base64), no deeper. */
const maxDecodeDepth = 2;

/** A finding, and whether it is a base64 run credited to what its decoded content holds. */
interface Found extends Finding {
  inBase64?: boolean | undefined;
}

interface MaskedText {
  text: string;
  counts: Map<string, number>;
  /** Findings inside base64, by detector. */
  inBase64: Map<string, number>;
}

/** What the walk needs to know of a key, worked out once per key (objects of one shape repeat their keys). */
interface KeyFacts {
  /** A key the protocol uses to correlate messages (`progressToken`): its value is left alone. */
  protocol: boolean;
  /** A field rule names it: its value is masked whole. */
  secretField: boolean;
  /** The detectors that recognize a value by this key (nine digits under `ssn`); mostly none. */
  byKey: readonly Detector[];
}

/** One message's walk: where it is, how it reports, and how many bytes of base64 it may still decode. */
interface Walk {
  path: Array<string | number>;
  /** Records redactions at the current path, with a marker after it (`<key>`, `<base64>`). */
  record: (counts: Map<string, number>, marker?: string) => void;
  decodeLeft: number;
}

export class Masker {
  readonly #isSecretField: (key: string) => boolean;
  readonly #replace: (value: string, detector: string) => string;
  readonly #allow: ReadonlySet<string>;
  readonly #maxDepth: number;
  readonly #maxDecodedBytes: number;
  readonly #fieldRules: boolean;
  readonly #pathRules: readonly JsonPathRule[];
  readonly #gate: AnchorGate;
  /** Detectors that recognize a value by its key (nine digits under `ssn`). */
  readonly #byKey: readonly Detector[];
  /**
   * The facts of keys found to hold nothing, so the many objects of one shape cost one lookup per key (a key that
   * holds a finding is never kept here, so neither is a secret).
   */
  readonly #cleanKeys = new Map<string, KeyFacts>();

  constructor(o: MaskerOptions) {
    this.#isSecretField = fieldMatcher(o.fieldWords);
    this.#fieldRules = o.fieldWords.length > 0;
    this.#replace = o.replace;
    this.#allow = new Set(o.allow ?? []);
    this.#maxDepth = o.maxDepth ?? 512;
    this.#maxDecodedBytes = o.maxDecodedBytes ?? defaultMaxDecodedBytes;
    this.#pathRules = o.pathRules ?? [];
    this.#gate = new AnchorGate(o.detectors);
    this.#byKey = o.detectors.filter((d) => d.underKey !== undefined);
    o.detectors.forEach((d, i) => {
      if (!this.#rank.has(d.name)) this.#rank.set(d.name, i);
    });
  }

  /** Each detector's rank: the earlier in the list (specific before generic), the more it is credited. */
  readonly #rank = new Map<string, number>();

  #rankOf(detector: string): number {
    return this.#rank.get(detector) ?? Number.MAX_SAFE_INTEGER;
  }

  /**
   * What the detectors find in `text`, and the base64 runs in it whose decoded content holds a finding (each a
   * finding over the whole run, credited to what is inside; decoded text is looked into once more, for base64
   * inside base64, and no deeper): overlapping findings merged into one span, credited to the most specific detector.
   */
  #findings(text: string, walk: Walk, depth = 0): Found[] {
    const findings: Found[] = [];
    this.#gate.run(text, findings);
    const runs = depth < maxDecodeDepth && text.length >= minRun ? base64Runs(text) : undefined;
    if (runs !== undefined) {
      for (const run of runs) {
        if (this.#allow.has(run.encoded)) continue;
        const inside = this.#decodedFinding(run.encoded, walk, depth + 1);
        if (inside !== undefined) findings.push({ start: run.start, end: run.end, detector: inside, inBase64: true });
      }
    }
    if (findings.length === 0) return findings;
    if (findings.length === 1) return this.#allow.size > 0 && this.#allow.has(text.slice(findings[0]!.start, findings[0]!.end)) ? [] : findings;
    findings.sort((a, b) => a.start - b.start || b.end - a.end);
    const merged: Found[] = [];
    for (const f of findings) {
      if (this.#allow.has(text.slice(f.start, f.end))) continue;
      const last = merged.at(-1);
      if (last !== undefined && f.start < last.end) {
        last.end = Math.max(last.end, f.end);
        if (this.#rankOf(f.detector) < this.#rankOf(last.detector)) {
          last.detector = f.detector;
          last.inBase64 = f.inBase64;
        }
      } else {
        merged.push({ ...f });
      }
    }
    return merged;
  }

  /** The detector credited with what decoded bytes hold (the most specific), or undefined when they hold nothing. */
  #decodedFinding(encoded: string, walk: Walk, depth: number): string | undefined {
    // Counted before decoding (3 bytes for 4 characters), so no more than the limit is ever allocated.
    walk.decodeLeft -= Math.floor((encoded.length * 3) / 4);
    if (walk.decodeLeft < 0) {
      throw new MaskingRefusedError(
        `the message holds more than ${this.#maxDecodedBytes} bytes of base64 to decode, so it cannot be checked for secrets (raise masking.maxDecodedSize to allow more)`,
      );
    }
    const content = readable(Buffer.from(encoded, 'base64'));
    let credit: string | undefined;
    for (const text of 'text' in content ? [content.text] : content.strings) {
      for (const f of this.#findings(text, walk, depth)) if (credit === undefined || this.#rankOf(f.detector) < this.#rankOf(credit)) credit = f.detector;
    }
    return credit;
  }

  /** The string with every finding replaced, and how many each detector found (plain, and inside base64); undefined when nothing was found. */
  #maskText(text: string, walk: Walk, depth = 0): MaskedText | undefined {
    if (text.length < 6) return undefined;
    const findings = this.#findings(text, walk, depth);
    if (findings.length === 0) return undefined;
    const counts = new Map<string, number>();
    const inBase64 = new Map<string, number>();
    let out = '';
    let at = 0;
    for (const f of findings) {
      out += text.slice(at, f.start) + this.#replace(text.slice(f.start, f.end), f.detector);
      at = f.end;
      const tally = f.inBase64 ? inBase64 : counts;
      tally.set(f.detector, (tally.get(f.detector) ?? 0) + 1);
    }
    return { text: out + text.slice(at), counts, inBase64 };
  }

  /** `text` with every finding replaced, and how many each detector found; undefined when nothing was found. */
  maskString(text: string): { text: string; counts: Map<string, number> } | undefined {
    const masked = this.#maskText(
      text,
      this.#newWalk([], () => {}),
    );
    if (masked === undefined) return undefined;
    for (const [detector, count] of masked.inBase64) masked.counts.set(detector, (masked.counts.get(detector) ?? 0) + count);
    return { text: masked.text, counts: masked.counts };
  }

  #newWalk(path: Array<string | number>, record: Walk['record']): Walk {
    return { path, record, decodeLeft: this.#maxDecodedBytes };
  }

  /**
   * `value` with everything masked (the same object when nothing was), and the redactions made. `at` is where
   * the value is in its message (`['result']`), for the reported paths and for JSON-path rules.
   */
  maskValue(value: unknown, at: ReadonlyArray<string | number> = []): { value: unknown; redactions: Redaction[] } {
    const redactions: Redaction[] = [];
    const path: Array<string | number> = [...at];
    const record = (counts: Map<string, number>, marker = '') => {
      if (counts.size === 0) return;
      const where = `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : p === '<json>' ? '<json>' : identifier.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('')}${marker}`;
      for (const [detector, count] of counts) redactions.push({ detector, path: where, count });
    };
    const masked = this.#walk(value, 0, undefined, this.#newWalk(path, record));
    return { value: masked, redactions };
  }

  /** `whole` names the rule under which everything here is masked (a field rule or a JSON path above). */
  #walk(value: unknown, depth: number, whole: string | undefined, walk: Walk): unknown {
    const path = walk.path;
    if (whole === undefined && this.#pathRules.length > 0) whole = this.#pathRuleAt(path);
    if (typeof value === 'string') return this.#string(value, depth, whole, walk);
    if (value === null || typeof value !== 'object') return value;
    if (depth >= this.#maxDepth) throw new MaskingRefusedError(`the message nests deeper than ${this.#maxDepth} levels, so it cannot be checked for secrets`);
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        const next = this.#walk(value[i], depth + 1, whole, walk);
        path.pop();
        if (next !== value[i]) (copy ??= value.slice())[i] = next;
      }
      return copy ?? value;
    }
    let copy: Record<string, unknown> | undefined;
    const object = value as Record<string, unknown>;
    /** Keys that hold a finding themselves (an e-mail address, a token used as a key), and what they become. */
    let renamed: Map<string, string> | undefined;
    let binaryMasked = false;
    // Under a key that names a secret, an object's own keys are judged one by one (a `credentials` object's `user`
    // is kept, its `password` masked); a JSON-path rule, though, covers everything below it.
    if (whole === fieldRule) whole = undefined;
    // for…in over a parsed JSON object: its own keys, in order, without allocating an array of them.
    for (const key in object) {
      let facts = this.#cleanKeys.get(key);
      let newKey: string | undefined;
      if (facts === undefined) {
        facts = this.#factsOf(key);
        if (!facts.protocol) newKey = this.#maskKey(key, walk);
        if (newKey === undefined && this.#cleanKeys.size < 10_000) this.#cleanKeys.set(key, facts);
      }
      if (facts.protocol) continue;
      if (newKey !== undefined) (renamed ??= new Map()).set(key, newKey);
      const child = object[key];
      // The path never holds a key that was masked: the redactions recorded under it would give it away.
      path.push(newKey ?? key);
      let next: unknown;
      const byKey =
        whole === undefined && facts.byKey.length > 0 && (typeof child === 'string' || typeof child === 'number') ? recognizing(facts.byKey, child) : undefined;
      const rule = whole ?? (facts.secretField ? fieldRule : undefined);
      if (byKey !== undefined) {
        walk.record(new Map([[byKey.name, 1]]));
        next = this.#replace(String(child), byKey.name);
      } else if (typeof child === 'string' && isBinaryField(object, key)) {
        next = this.#binary(child, rule, walk);
        if (next !== child) binaryMasked = true;
      } else if (typeof child === 'string' || (typeof child === 'object' && child !== null)) {
        next = this.#walk(child, depth + 1, rule, walk);
      } else {
        // A number, boolean or null holds nothing to find (a number under an SSN key was looked at above).
        next = child;
      }
      path.pop();
      if (next !== child) (copy ??= { ...object })[key] = next;
    }
    // A binary field masked holds the marker as text now: its type says so.
    if (binaryMasked) copy!.mimeType = 'text/plain';
    return renamed === undefined ? (copy ?? value) : withKeysRenamed(copy ?? object, renamed);
  }

  /**
   * The JSON-path rule naming `path`, if one does. (A method, not a closure in #walk: a closure there capturing
   * `path` made every call of #walk allocate a context, even with no rules.)
   */
  #pathRuleAt(path: ReadonlyArray<string | number>): string | undefined {
    for (const r of this.#pathRules) if (r.matches(path)) return r.name;
    return undefined;
  }

  /** What the walk needs to know of `key`, worked out when it is first seen. */
  #factsOf(key: string): KeyFacts {
    return {
      protocol: protocolKeys.has(key),
      secretField: this.#fieldRules && this.#isSecretField(key),
      byKey: this.#byKey.filter((d) => d.underKey!.key(key)),
    };
  }

  /** A key masked as a string is (undefined when it holds nothing), recorded at its object's path. */
  #maskKey(key: string, walk: Walk): string | undefined {
    const masked = this.#maskText(key, walk);
    if (masked === undefined) return undefined;
    walk.record(masked.counts, '<key>');
    walk.record(masked.inBase64, '<key><base64>');
    return masked.text;
  }

  /**
   * A binary field (a resource's `blob`, an image's `data`): decoded and looked into (its text whole, or a binary's
   * printable runs), and its raw characters too; when anything is found the whole field is replaced by the marker,
   * encoded as base64 so the field stays valid.
   */
  #binary(blob: string, whole: string | undefined, walk: Walk): string {
    let credit = whole;
    if (credit === undefined) {
      credit = this.#decodedFinding(blob, walk, 1) ?? this.#findings(blob, walk, maxDecodeDepth)[0]?.detector;
      if (credit === undefined) return blob;
    }
    walk.record(new Map([[credit, 1]]), '<base64>');
    return encodedMarker(this.#replace(blob, credit));
  }

  #string(text: string, depth: number, whole: string | undefined, walk: Walk): string {
    const path = walk.path;
    if (whole !== undefined) {
      if (text.length === 0 || this.#allow.has(text)) return text;
      // Masked whole whatever it holds; credited to what a detector recognizes in it, when one does.
      // The key is context some detectors need (`SecretAccessKey`), so it is looked at with the value.
      const key = path.at(-1);
      const context = typeof key === 'string' ? `${key}=${text}` : text;
      // (A generic key=value detector would only restate the field rule, so it is not the one credited.)
      const credit =
        text.length < 6
          ? whole
          : (this.#findings(text, walk)[0]?.detector ?? this.#findings(context, walk).find((f) => f.detector !== 'password-assignment')?.detector ?? whole);
      walk.record(new Map([[credit, 1]]));
      return this.#replace(text, credit);
    }
    const embedded = embeddedJson(text);
    if (embedded !== undefined) {
      path.push('<json>');
      const inner = this.#walk(embedded.value, depth + 1, undefined, walk);
      path.pop();
      if (inner !== embedded.value) return JSON.stringify(inner, null, embedded.indent);
      // Nothing inside the JSON: the raw text is still looked at (`"password": "…"` shows only unparsed), but its
      // base64 is not decoded again: every run of it sits in a string the walk above has decoded.
    }
    const masked = this.#maskText(text, walk, embedded === undefined ? 0 : maxDecodeDepth);
    if (masked === undefined) return text;
    walk.record(masked.counts);
    walk.record(masked.inBase64, '<base64>');
    return masked.text;
  }
}

/** The first of `detectors` (each recognizing values by the key they are under) that recognizes `value`. */
function recognizing(detectors: readonly Detector[], value: string | number): Detector | undefined {
  for (const d of detectors) if (d.underKey!.value(value)) return d;
  return undefined;
}
