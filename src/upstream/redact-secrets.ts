import type { SecretString } from '../config/secrets.js';

/** Replaces every configured secret value found in `text` with a marker naming its reference. */
export function redactKnownSecrets(text: string, secrets: readonly SecretString[]): string {
  let out = text;
  for (const s of secrets) {
    const value = s.reveal();
    // Very short values would blank out ordinary words; they are not worth hiding this way.
    if (value.length < 6) continue;
    if (out.includes(value)) out = out.split(value).join(`[secret ${s.template}]`);
  }
  return out;
}
