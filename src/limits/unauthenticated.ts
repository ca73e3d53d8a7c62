import { type RefusalPlace, unauthenticatedPrincipal } from '../core/refusal-log.js';
import { isIPv4, isIPv6 } from 'node:net';
import type { LimitsConfig } from './config.js';
import type { BurstLog } from './burst-log.js';
import { KeyedBuckets } from './keyed.js';
import { LimitExceededError } from './limit-error.js';
import { type Clock, monotonicClock, TokenBucket } from './token-bucket.js';

/**
 * The address a client is limited by: an IPv4 address, or the /64 an IPv6 address belongs to (one host usually
 * holds a whole /64, so limiting single IPv6 addresses would limit nothing).
 */
export function addressKey(remote: string | undefined): string {
  if (remote === undefined || remote === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  if (mapped) return mapped[1]!;
  if (isIPv4(remote)) return remote;
  if (!isIPv6(remote)) return remote.slice(0, 64);
  const [head, tail] = remote.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** An attempt let through to verification: a success gives its token back, a failure keeps it spent. */
export interface Attempt {
  succeeded(): void;
}

/**
 * Paces requests whose token is not already known to be valid (none, a new one, a forged one), by remote address
 * and all together, before any signature is checked: a flood of bad tokens is refused with 429 at the cost of a
 * map lookup, and never burns CPU on verification. Each attempt takes a token from its address's bucket and from
 * the total; a verified token gives both back, so only failures use the allowance up. At most
 * `limits.unauthenticated.addresses` addresses are remembered.
 */
export class UnauthenticatedGate {
  readonly #addresses: KeyedBuckets;
  readonly #total: TokenBucket;

  constructor(
    private readonly config: LimitsConfig['unauthenticated'],
    private readonly bursts: BurstLog,
    clock: Clock = monotonicClock,
    private readonly onRefused: (limit: string) => void = () => {},
  ) {
    this.#addresses = new KeyedBuckets(config.addresses, clock);
    this.#total = new TokenBucket(config.total, clock);
  }

  get addresses(): number {
    return this.#addresses.size;
  }

  /** Lets one attempt from `remote` go on to verification, or refuses it. */
  enter(remote: string | undefined, at: RefusalPlace): Attempt | LimitExceededError {
    const address = addressKey(remote);
    const own = this.#addresses.get(address, this.config.perAddress);
    if (!own.take()) return this.#refuse(address, at, 'limits.unauthenticated.perAddress', own.waitMs(), `from ${address}`);
    if (!this.#total.take()) {
      own.refund();
      return this.#refuse(address, at, 'limits.unauthenticated.total', this.#total.waitMs(), 'to the gateway');
    }
    let settled = false;
    return {
      succeeded: () => {
        if (settled) return;
        settled = true;
        own.refund();
        this.#total.refund();
      },
    };
  }

  #refuse(address: string, at: RefusalPlace, limit: string, waitMs: number, where: string): LimitExceededError {
    const wait = Math.max(1, Math.ceil(waitMs / 1000));
    this.onRefused(limit);
    const reason = `too many requests without a valid token ${where} (${limit}); try again in ${wait}s`;
    this.bursts.refused(
      `unauthenticated\n${address}\n${limit}`,
      { refusal: true, principal: unauthenticatedPrincipal, connection: at.connection, method: at.method, reason, remote: address, limit },
      'limit reached: refusing unauthenticated requests',
    );
    return new LimitExceededError(limit, '', wait, reason);
  }
}
