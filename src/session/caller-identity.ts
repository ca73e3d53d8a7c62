import type { Logger } from 'pino';
import type { Identity } from '../core/identity.js';

/**
 * Who is on a session, as their latest request's token says. Access is decided by the caller's groups now, not those
 * they had when the session opened (a refreshed token may carry fewer); only the same principal may take it over.
 */
export class CallerIdentity {
  #identity: Identity;

  constructor(
    identity: Identity,
    private readonly log: Logger,
  ) {
    this.#identity = identity;
  }

  get current(): Identity {
    return this.#identity;
  }

  /** Takes the identity of a request on the session; throws for another principal (the edges refuse those first). */
  refresh(identity: Identity): void {
    if (identity === this.#identity) return;
    if (identity.subject !== this.#identity.subject || identity.issuer !== this.#identity.issuer)
      throw new Error('a session belongs to the identity that opened it');
    const before = this.#identity.groups.join(',');
    this.#identity = identity;
    if (identity.groups.join(',') !== before) this.log.info({ groups: identity.groups }, "the caller's groups changed");
  }
}
