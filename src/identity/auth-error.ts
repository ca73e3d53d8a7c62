import { HttpError } from '../core/http-error.js';

/**
 * Why a request's credentials were not accepted, in words safe to send back and to log (never the token).
 * `code` is the RFC 6750 error for the WWW-Authenticate challenge; none when no credentials were sent at all.
 */
export class AuthError extends HttpError {
  constructor(
    override readonly status: 400 | 401 | 403 | 429 | 503,
    readonly code: undefined | 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'temporarily_unavailable',
    message: string,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(status, message, headers);
    this.name = 'AuthError';
  }
}

/** Too many requests without a valid token came from the caller's address: refused before any verification. */
export class TooManyAttemptsError extends AuthError {
  constructor(
    readonly retryAfterSeconds: number,
    message: string,
  ) {
    super(429, undefined, message, { 'retry-after': String(retryAfterSeconds) });
    this.name = 'TooManyAttemptsError';
  }
}
