import type { Detector, Finding } from './detector.js';
import type { JsonPathRule } from './custom.js';
import { AnchorGate } from './anchor-gate.js';
import { fieldMatcher } from './fields.js';

/**
 * The masking engine: finds what the detectors find in every string of a JSON value (decoded strings, so an
 * escape sequence cannot hide a secret), masks the value of every key a field rule names, and descends into
 * JSON carried inside strings. Copy on write: a value with nothing to mask comes back as the same object, so
 * the common case allocates nothing. Each redaction is reported with its detector, JSON path and count, never
 * the value.
 */

export interface Redaction {
  detector: string;
  /** Where, as a JSONPath (`$.result.content[0].text`); `<json>` marks a descent into JSON inside a string. */
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
}

/** Keys the protocol itself uses to correlate messages: their values are identifiers, never masked (or progress would stop reaching its request). */
const protocolKeys = new Set(['progressToken']);

/** The detector name under which field rules report. */
export const fieldRule = 'field-rule';

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export class Masker {
  readonly #detectors: readonly Detector[];
  readonly #isSecretField: (key: string) => boolean;
  readonly #replace: (value: string, detector: string) => string;
  readonly #allow: ReadonlySet<string>;
  readonly #maxDepth: number;
  readonly #fieldRules: boolean;
  readonly #pathRules: readonly JsonPathRule[];
  readonly #gate: AnchorGate;

  constructor(o: MaskerOptions) {
    this.#detectors = o.detectors;
    this.#isSecretField = fieldMatcher(o.fieldWords);
    this.#fieldRules = o.fieldWords.length > 0;
    this.#replace = o.replace;
    this.#allow = new Set(o.allow ?? []);
    this.#maxDepth = o.maxDepth ?? 512;
    this.#pathRules = o.pathRules ?? [];
    this.#gate = new AnchorGate(o.detectors);
    o.detectors.forEach((d, i) => {
      if (!this.#rank.has(d.name)) this.#rank.set(d.name, i);
    });
  }

  /** Each detector's rank: the earlier in the list (specific before generic), the more it is credited. */
  readonly #rank = new Map<string, number>();

  #rankOf(detector: string): number {
    return this.#rank.get(detector) ?? Number.MAX_SAFE_INTEGER;
  }

  /** What the detectors find in `text`: overlapping findings merged into one span, credited to the most specific detector. */
  #findings(text: string): Finding[] {
    const findings: Finding[] = [];
    let lowered: string | undefined;
    const lower = () => (lowered ??= text.toLowerCase());
    this.#gate.run(text, lower, findings);
    if (findings.length === 0) return findings;
    if (findings.length === 1) return this.#allow.size > 0 && this.#allow.has(text.slice(findings[0]!.start, findings[0]!.end)) ? [] : findings;
    findings.sort((a, b) => a.start - b.start || b.end - a.end);
    const merged: Finding[] = [];
    for (const f of findings) {
      if (this.#allow.has(text.slice(f.start, f.end))) continue;
      const last = merged.at(-1);
      if (last !== undefined && f.start < last.end) {
        last.end = Math.max(last.end, f.end);
        if (this.#rankOf(f.detector) < this.#rankOf(last.detector)) last.detector = f.detector;
      } else {
        merged.push({ ...f });
      }
    }
    return merged;
  }

  /** The string with every finding replaced, and how many each detector found; undefined when nothing was found. */
  maskString(text: string): { text: string; counts: Map<string, number> } | undefined {
    if (text.length < 6) return undefined;
    const findings = this.#findings(text);
    if (findings.length === 0) return undefined;
    const counts = new Map<string, number>();
    let out = '';
    let at = 0;
    for (const f of findings) {
      out += text.slice(at, f.start) + this.#replace(text.slice(f.start, f.end), f.detector);
      at = f.end;
      counts.set(f.detector, (counts.get(f.detector) ?? 0) + 1);
    }
    return { text: out + text.slice(at), counts };
  }

  /**
   * `value` with everything masked (the same object when nothing was), and the redactions made. `at` is where
   * the value is in its message (`['result']`), for the reported paths and for JSON-path rules.
   */
  maskValue(value: unknown, at: ReadonlyArray<string | number> = []): { value: unknown; redactions: Redaction[] } {
    const redactions: Redaction[] = [];
    const path: Array<string | number> = [...at];
    const record = (counts: Map<string, number>) => {
      const where = `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : p === '<json>' ? '<json>' : identifier.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('')}`;
      for (const [detector, count] of counts) redactions.push({ detector, path: where, count });
    };
    const masked = this.#walk(value, path, 0, undefined, record);
    return { value: masked, redactions };
  }

  /** `whole` names the rule under which everything here is masked (a field rule or a JSON path above). */
  #walk(value: unknown, path: Array<string | number>, depth: number, whole: string | undefined, record: (counts: Map<string, number>) => void): unknown {
    if (whole === undefined && this.#pathRules.length > 0) whole = this.#pathRules.find((r) => r.matches(path))?.name;
    if (typeof value === 'string') return this.#string(value, path, depth, whole, record);
    if (value === null || typeof value !== 'object') return value;
    if (depth >= this.#maxDepth) throw new MaskingRefusedError(`the message nests deeper than ${this.#maxDepth} levels, so it cannot be checked for secrets`);
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        const next = this.#walk(value[i], path, depth + 1, whole, record);
        path.pop();
        if (next !== value[i]) (copy ??= value.slice())[i] = next;
      }
      return copy ?? value;
    }
    let copy: Record<string, unknown> | undefined;
    const object = value as Record<string, unknown>;
    // Under a key that names a secret, an object's own keys are judged one by one (a `credentials` object's `user`
    // is kept, its `password` masked); a JSON-path rule, though, covers everything below it.
    if (whole === fieldRule) whole = undefined;
    // for…in over a parsed JSON object: its own keys, in order, without allocating an array of them.
    for (const key in object) {
      if (protocolKeys.has(key)) continue;
      const child = object[key];
      path.push(key);
      const next = this.#walk(child, path, depth + 1, whole ?? (this.#fieldRules && this.#isSecretField(key) ? fieldRule : undefined), record);
      path.pop();
      if (next !== child) (copy ??= { ...object })[key] = next;
    }
    return copy ?? value;
  }

  #string(text: string, path: Array<string | number>, depth: number, whole: string | undefined, record: (counts: Map<string, number>) => void): string {
    if (whole !== undefined) {
      if (text.length === 0 || this.#allow.has(text)) return text;
      // Masked whole whatever it holds; credited to what a detector recognizes in it, when one does.
      // The key is context some detectors need (`SecretAccessKey`), so it is looked at with the value.
      const key = path.at(-1);
      const context = typeof key === 'string' ? `${key}=${text}` : text;
      // (A generic key=value detector would only restate the field rule, so it is not the one credited.)
      const credit =
        text.length < 6 ? whole : (this.#findings(text)[0]?.detector ?? this.#findings(context).find((f) => f.detector !== 'password-assignment')?.detector ?? whole);
      record(new Map([[credit, 1]]));
      return this.#replace(text, credit);
    }
    const embedded = embeddedJson(text);
    if (embedded !== undefined) {
      path.push('<json>');
      const inner = this.#walk(embedded.value, path, depth + 1, undefined, record);
      path.pop();
      if (inner !== embedded.value) return JSON.stringify(inner, null, embedded.indent);
      // Nothing inside the JSON: the raw text can still hold what only shows unparsed (a secret in a key).
    }
    const masked = this.maskString(text);
    if (masked === undefined) return text;
    record(masked.counts);
    return masked.text;
  }
}

/** JSON carried in a string (a tool's text content that is a JSON document), parsed, with the indentation it used. */
function embeddedJson(text: string): { value: unknown; indent: number | string | undefined } | undefined {
  if (text.length < 2) return undefined;
  let i = 0;
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  const first = text[i];
  if (first !== '{' && first !== '[') return undefined;
  let j = text.length - 1;
  while (j > i && (text[j] === ' ' || text[j] === '\n' || text[j] === '\r' || text[j] === '\t')) j--;
  if (text[j] !== (first === '{' ? '}' : ']')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const m = /\n( +|\t)\S/.exec(text);
  return { value, indent: m === null ? undefined : m[1] === '\t' ? '\t' : m[1]!.length };
}
