/**
 * A request a service refuses (access requests, reviews, tool pins, console sign-ins), carrying the HTTP status the API answers
 * with and a message meant for the caller. Services throw their own subclass; the API turns any of them into a
 * reply.
 */
export class Refusal extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 429 | 502 | 503,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
