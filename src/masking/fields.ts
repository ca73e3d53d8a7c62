/**
 * Field rules: the value of a JSON key that names a secret is masked whatever it looks like. A key matches when,
 * lower-cased and with `-`, `_`, `.` and spaces removed, it ends with one of the words (`dbPassword`,
 * `client_secret`, `X-Api-Key`), so `max_tokens` or `secretName` do not.
 */
export const defaultFieldWords = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'token',
  'apikey',
  'accesskey',
  'secretkey',
  'privatekey',
  'credential',
  'credentials',
];

export function fieldMatcher(words: readonly string[]): (key: string) => boolean {
  const normalized = words.map((w) => w.toLowerCase().replace(/[-_. ]/g, ''));
  const cache = new Map<string, boolean>();
  return (key) => {
    let hit = cache.get(key);
    if (hit === undefined) {
      const k = key.toLowerCase().replace(/[-_. ]/g, '');
      hit = normalized.some((w) => k.endsWith(w));
      if (cache.size < 10_000) cache.set(key, hit);
    }
    return hit;
  };
}
