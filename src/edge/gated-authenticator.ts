import { gatewayApi, httpMethod } from '../core/refusal-log.js';
import type { IncomingMessage } from 'node:http';
import type { ConnectionConfig } from '../config/schema.js';
import { AuthError, TooManyAttemptsError } from '../identity/auth-error.js';
import { LimitExceededError } from '../limits/limit-error.js';
import type { UnauthenticatedGate } from '../limits/unauthenticated.js';
import type { Authenticated, Authenticator } from './authenticate.js';

const bearer = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * An authenticator behind the unauthenticated gate (limits.unauthenticated): a token verified lately goes straight
 * through; anything else (no token, a new one, a forged one) must first get past its address's allowance, so a
 * flood of bad tokens is refused with 429 before a signature is checked. A request that then authenticates gives
 * its allowance back; one that fails (or cannot be checked) has spent it.
 */
export class GatedAuthenticator implements Authenticator {
  constructor(
    private readonly inner: Authenticator,
    private readonly gate: UnauthenticatedGate,
    private readonly knows: (token: string) => boolean,
  ) {}

  authenticate(req: IncomingMessage, url: URL, connection: ConnectionConfig): Promise<Authenticated> {
    return this.#gated(req, connection.name, () => this.inner.authenticate(req, url, connection));
  }

  authenticateGateway(req: IncomingMessage, url: URL): Promise<Authenticated> {
    return this.#gated(req, gatewayApi, () => this.inner.authenticateGateway(req, url));
  }

  /** `connection`: the connection asked for, or the gateway's own API; for the log line of a refusal. */
  async #gated(req: IncomingMessage, connection: string, run: () => Promise<Authenticated>): Promise<Authenticated> {
    const token = bearer.exec(req.headers.authorization ?? '')?.[1];
    if (token !== undefined && this.knows(token)) return run();
    const attempt = this.gate.enter(req.socket.remoteAddress, { connection, method: httpMethod(req) });
    if (attempt instanceof LimitExceededError) throw new TooManyAttemptsError(attempt.retryAfterSeconds, attempt.message);
    try {
      const caller = await run();
      attempt.succeeded();
      return caller;
    } catch (err) {
      // The identity provider could not be asked (503): not the caller's failure.
      if (err instanceof AuthError && err.status === 503) attempt.succeeded();
      throw err;
    }
  }
}
