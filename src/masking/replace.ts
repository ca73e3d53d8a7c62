import { createHmac } from 'node:crypto';

/** How a match is replaced: a label, the label with the last characters kept, or the label with a keyed hash (the same value masks the same way within a session). */
export type Replacement = { kind: 'redact' } | { kind: 'keep-last'; count: number } | { kind: 'hash' };

export function replacer(how: Replacement, hashKey: Buffer): (value: string, detector: string) => string {
  switch (how.kind) {
    case 'redact': {
      // One label string per detector, not a new one for each value masked (a pass over the benchmark's corpus
      // masks some 14,000 addresses).
      const labels = new Map<string, string>();
      return (_value, detector) => {
        let label = labels.get(detector);
        if (label === undefined) labels.set(detector, (label = `[REDACTED:${detector}]`));
        return label;
      };
    }
    case 'keep-last':
      // Never more than a quarter of the value, so a short secret is not given away.
      return (value, detector) => {
        const keep = Math.min(how.count, Math.floor(value.length / 4));
        return keep > 0 ? `[REDACTED:${detector}]${value.slice(-keep)}` : `[REDACTED:${detector}]`;
      };
    case 'hash':
      return (value, detector) => `[REDACTED:${detector}:${createHmac('sha256', hashKey).update(value).digest('hex').slice(0, 12)}]`;
  }
}
