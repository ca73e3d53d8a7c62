import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError } from '../../src/core/http-error.js';
import { AuthError, TooManyAttemptsError } from '../../src/identity/auth-error.js';
import { AccessRequestError } from '../../src/identity/access-requests.js';
import { PinError } from '../../src/pins/tool-pins.js';
import { ReviewError } from '../../src/reviews/reviews.js';
import { SignInError } from '../../src/console/oidc-sign-in.js';

test('an HttpError carries its status, its message for the caller and the headers of its reply (none by default)', () => {
  const err = new HttpError(404, 'no session "x"');
  assert.ok(err instanceof Error);
  assert.equal(err.status, 404);
  assert.equal(err.message, 'no session "x"');
  assert.deepEqual(err.headers, {});
  assert.equal(err.name, 'HttpError');
  assert.deepEqual(new HttpError(429, 'slow down', { 'retry-after': '3' }).headers, { 'retry-after': '3' });
});

test('every error that carries an HTTP status is an HttpError, named after its own class', () => {
  const errors = [
    new AccessRequestError(409, 'already decided'),
    new PinError(404, 'no such pin'),
    new ReviewError(503, 'the decision could not be stored'),
    new SignInError('the state does not match'),
    new AuthError(401, 'invalid_token', 'expired'),
  ];
  for (const err of errors) assert.ok(err instanceof HttpError, err.name);
  assert.deepEqual(
    errors.map((e) => [e.name, e.status]),
    [
      ['AccessRequestError', 409],
      ['PinError', 404],
      ['ReviewError', 503],
      ['SignInError', 400],
      ['AuthError', 401],
    ],
  );
});

test('too many attempts is a 429 whose reply says when to retry', () => {
  const err = new TooManyAttemptsError(7, 'too many requests without a valid token from this address');
  assert.ok(err instanceof AuthError && err instanceof HttpError);
  assert.equal(err.status, 429);
  assert.equal(err.code, undefined);
  assert.equal(err.retryAfterSeconds, 7);
  assert.deepEqual(err.headers, { 'retry-after': '7' });
  assert.equal(err.name, 'TooManyAttemptsError');
});
