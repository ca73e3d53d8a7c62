/** Wall-clock time in microseconds since the Unix epoch, with the resolution of the monotonic clock. */
export function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
