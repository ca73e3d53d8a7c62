/**
 * The agent knows the exact credentials it hands to the servers it runs (the values of the references in their
 * config), so before anything leaves its network it replaces every occurrence of one of them, and of its common
 * encodings, with a marker naming the credential. This catches what no pattern can: a tool that prints its
 * environment leaks nothing, whatever the secret looks like.
 *
 * The text scrubbed is a JSON message, so a value is looked for as it appears inside a JSON string (escaped), as
 * well as base64 (standard and URL-safe, with and without padding) and URL-encoded.
 */

export interface Credential {
  /** Where it comes from (`aws.env.AWS_SECRET_ACCESS_KEY`): the marker names this, never the value. */
  name: string;
  value: string;
}

/** Values shorter than this are not scrubbed: `1` or `true` would mangle every message and protect nothing. */
export const minimumCredentialLength = 8;

function encodings(value: string): string[] {
  const b64 = Buffer.from(value).toString('base64');
  const b64url = Buffer.from(value).toString('base64url');
  const forms = [value, JSON.stringify(value).slice(1, -1), b64, b64.replace(/=+$/, ''), b64url, encodeURIComponent(value), JSON.stringify(JSON.stringify(value).slice(1, -1)).slice(1, -1)];
  return [...new Set(forms)].filter((f) => f.length >= minimumCredentialLength);
}

export class CredentialScrubber {
  readonly #pattern: RegExp | undefined;
  readonly #names = new Map<string, string>();

  constructor(credentials: readonly Credential[]) {
    for (const c of credentials) {
      if (c.value.length < minimumCredentialLength) continue;
      for (const form of encodings(c.value)) if (!this.#names.has(form)) this.#names.set(form, c.name);
    }
    // Longest first, so that a value containing another is replaced whole.
    const forms = [...this.#names.keys()].sort((a, b) => b.length - a.length);
    this.#pattern = forms.length === 0 ? undefined : new RegExp(forms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  }

  get size(): number {
    return this.#names.size;
  }

  /** The text with every credential replaced by `[REDACTED:credential:<name>]`; the same string when none occurs. */
  scrub(text: string): string {
    if (this.#pattern === undefined) return text;
    this.#pattern.lastIndex = 0;
    if (!this.#pattern.test(text)) return text;
    this.#pattern.lastIndex = 0;
    return text.replace(this.#pattern, (found) => `[REDACTED:credential:${this.#names.get(found) ?? 'unknown'}]`);
  }
}
