import { literalForms, unescaped, valuePattern } from './encoded-forms.js';
import { LiteralFinder } from './literal-finder.js';

/**
 * Whoever injects a credential (the gateway into its upstreams' headers and environments, the agent into the servers
 * it runs) knows its exact value, so before anything a server sends goes further it replaces every occurrence of one
 * of them, in every common encoding (encoded-forms.ts), with a marker naming the credential. This catches what no
 * pattern can: a server that echoes its request headers or prints its environment leaks nothing, whatever the
 * secret looks like.
 */

export interface Credential {
  /** Where it comes from (`aws.env.AWS_SECRET_ACCESS_KEY`): the marker names this, never the value. */
  name: string;
  value: string;
}

/**
 * Values shorter than this are not scrubbed: `1`, `true` or `admin` would mangle every message and protect little
 * (a value that short is guessed faster than it is leaked). Eight characters of a real credential are unlikely to
 * occur by chance in ordinary text.
 */
export const minimumCredentialLength = 8;

/** What a credential is replaced with: its name, never its value; only characters that need no escaping in JSON. */
export function credentialMarker(name: string): string {
  return `[REDACTED:credential:${name.replace(/[^\w.:[\]@-]/g, '_')}]`;
}

/**
 * Finding and replacing are two steps, for speed: a message with no credential in it is the common case, and
 * costs one search for plain strings (in the text, and in the text with its escapes decoded when it has any). Only
 * the credentials found that way are then replaced, each with a pattern that matches every spelling of it.
 */
export class CredentialScrubber {
  /** Every literal form of every credential, tagged with the credential's index: which ones occur. */
  readonly #finder: LiteralFinder | undefined;
  /** Per credential, longest value first (so that a value containing another is replaced whole). */
  readonly #credentials: Array<{ marker: string; value: string; pattern?: RegExp }> = [];

  constructor(credentials: readonly Credential[]) {
    const byValue = new Map<string, string>();
    for (const c of credentials) if (c.value.length >= minimumCredentialLength && !byValue.has(c.value)) byValue.set(c.value, c.name);
    const values = [...byValue.keys()].sort((a, b) => b.length - a.length);
    for (const value of values) this.#credentials.push({ marker: credentialMarker(byValue.get(value)!), value });
    const literals = values.flatMap((v, tag) => literalForms(v).map((text) => ({ text, tag })));
    this.#finder = literals.length === 0 ? undefined : new LiteralFinder(literals);
  }

  /** How many distinct credential values it looks for. */
  get size(): number {
    return this.#credentials.length;
  }

  /** The text with every credential replaced by `[REDACTED:credential:<name>]`; the very same string when none occurs. */
  scrub(text: string): string {
    if (this.#finder === undefined || text.length < minimumCredentialLength) return text;
    const found = new Set<number>();
    this.#finder.findTags(text, found);
    if (text.includes('\\') || text.includes('%')) this.#finder.findTags(unescaped(text), found);
    if (found.size === 0) return text;
    let out = text;
    for (const i of [...found].sort((a, b) => a - b)) {
      const c = this.#credentials[i]!;
      c.pattern ??= new RegExp(valuePattern(c.value), 'g');
      out = out.replace(c.pattern, c.marker);
    }
    return out;
  }

  /**
   * Scrubs a JSON text and keeps it valid JSON. Replacing in the text keeps the server's bytes everywhere else; in
   * the rare case that a match spans JSON syntax (a value containing `"`, a match starting inside an escape), the
   * value is parsed, every string (keys included) scrubbed, and serialized again.
   */
  scrubJson(text: string): string {
    const scrubbed = this.scrub(text);
    if (scrubbed === text) return text;
    try {
      JSON.parse(scrubbed);
      return scrubbed;
    } catch {
      // Falls through to the structural scrub.
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return scrubbed; // Not JSON to begin with: the text scrub is all there is.
    }
    return JSON.stringify(this.#scrubValue(value));
  }

  #scrubValue(value: unknown): unknown {
    if (typeof value === 'string') return this.scrub(value);
    if (Array.isArray(value)) return value.map((v) => this.#scrubValue(v));
    if (value !== null && typeof value === 'object') {
      // A null prototype: a `__proto__` key stays a key.
      const out = Object.create(null) as Record<string, unknown>;
      for (const [k, v] of Object.entries(value)) out[this.scrub(k)] = this.#scrubValue(v);
      return out;
    }
    return value;
  }
}

/** A scrubber that knows no credential: scrub() returns its input. */
export const noCredentials = new CredentialScrubber([]);
