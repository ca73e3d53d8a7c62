/**
 * Why a request's credentials were not accepted, in words safe to send back and to log (never the token).
 * `code` is the RFC 6750 error for the WWW-Authenticate challenge; none when no credentials were sent at all.
 */
export class AuthError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 503,
    readonly code: undefined | 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'temporarily_unavailable',
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}
