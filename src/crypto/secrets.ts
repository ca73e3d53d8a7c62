import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Bearer secrets the gateway hands out and checks (agent tokens, console cookies, CSRF tokens, the dev sign-in key,
 * api.token): what is stored of one, and how two are compared.
 */

/** What the store keeps of a bearer secret: its SHA-256, hex. */
export function secretHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Whether `given` is `expected`, in time that does not depend on where they differ. */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
