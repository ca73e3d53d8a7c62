/**
 * The one error that carries an HTTP status: a request the gateway refuses (a service's refusal, a bad API
 * request, credentials not accepted), with a message meant for the caller and the headers its reply carries (a
 * 429's Retry-After). Services throw it or their own subclass (name = the subclass's name); the HTTP layer turns
 * any of them into a reply. Never put a token or a credential in the message: it is sent back and logged.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Headers the reply carries. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}
