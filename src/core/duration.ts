/** Human durations and sizes in config: `30s`, `15m`, `1h`, `500ms`; `16MiB`, `512KiB`, or plain numbers. */

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const sizeUnits: Record<string, number> = { b: 1, kib: 1024, kb: 1000, mib: 1024 ** 2, mb: 1000 ** 2, gib: 1024 ** 3, gb: 1000 ** 3 };

/** Milliseconds, or undefined when the text is not a duration. A bare number means seconds. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v * 1000 : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(v);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (durationUnits[(m[2] ?? 's').toLowerCase()] ?? 1000));
}

/** Bytes, or undefined when the text is not a size. A bare number means bytes. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$/i.exec(v);
  if (!m) return undefined;
  const unit = sizeUnits[(m[2] ?? 'b').toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.round(Number(m[1]) * unit);
  // A limit of zero bytes would refuse every message.
  return bytes > 0 ? bytes : undefined;
}
