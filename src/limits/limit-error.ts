/** A refusal: which limit (its config key), its value, and when trying again makes sense. */
export class LimitExceededError extends Error {
  constructor(
    /** The config key of the limit, e.g. limits.principal.sessions. */
    readonly limit: string,
    readonly value: string,
    readonly retryAfterSeconds: number,
    message: string,
  ) {
    super(message);
    this.name = 'LimitExceededError';
  }
}
