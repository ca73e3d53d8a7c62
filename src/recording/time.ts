/** Wall-clock time in microseconds since the Unix epoch, with the resolution of the monotonic clock. */
export function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * A point in time as people write it on a command line or in a query: an ISO date or time
 * (2026-11-24, 2026-11-24T10:00Z), or a duration ago (90s, 15m, 2h, 7d). Microseconds, or undefined.
 */
export function parseTimeSpec(value: string, now = Date.now()): number | undefined {
  const relative = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(value.trim());
  if (relative) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[relative[2] as 's' | 'm' | 'h' | 'd'];
    return Math.round((now - Number(relative[1]) * unit) * 1000);
  }
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms * 1000;
}
