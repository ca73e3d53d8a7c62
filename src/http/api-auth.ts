import { gatewayApi, httpMethod, logRefusal, unauthenticatedPrincipal } from '../core/refusal-log.js';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { anonymousApiRefusal, isMachineCaller, type MachineKeys } from '../api/access.js';
import type { ConsoleEdge } from '../console/console-edge.js';
import { HttpError } from '../core/http-error.js';
import type { Identity } from '../core/identity.js';
import { untrustedPath } from '../core/untrusted-text.js';
import { type Authenticator, bearerChallenge } from '../edge/authenticate.js';
import type { PublicUrls } from '../edge/public-urls.js';
import { AuthError, TooManyAttemptsError } from '../identity/auth-error.js';
import { inGroups } from '../identity/roles.js';
import { type ControlEnv, requestUrl } from './kit/route.js';

/**
 * Who is calling the API, as middleware: each sets the caller on the context, or throws the HttpError (with the
 * headers its reply needs: a bearer challenge, a retry hint) that the control plane replies. Three kinds of caller,
 * as before: a person (their console cookie, else their bearer token for the gateway), a machine (api.token or the
 * local API key), or nobody, who is refused even on loopback.
 */
export interface ApiAuthOptions {
  authenticator: Authenticator;
  keys: MachineKeys;
  /** The signed-in console user of a request with a console cookie; absent when the console is off. */
  console: ConsoleEdge | undefined;
  publicUrls: PublicUrls;
  /** Groups that see every session. */
  auditors: readonly string[];
  log: Logger;
}

export function apiAuth(o: ApiAuthOptions) {
  /** A person: their console sign-in, else their bearer token for the gateway (`identity`). */
  const person: MiddlewareHandler<ControlEnv> = async (c, next) => {
    const req = c.env.incoming;
    let identity: Identity;
    try {
      const user = await o.console?.caller(req);
      identity = user !== undefined ? user.identity : (await o.authenticator.authenticateGateway(req, requestUrl(c))).identity;
    } catch (err) {
      // The console's refusals (an expired sign-in, a change from another page) and a burst's 429 are replied as they are.
      if (!(err instanceof AuthError) || err instanceof TooManyAttemptsError) throw err;
      const refusal = { principal: unauthenticatedPrincipal, connection: gatewayApi, method: httpMethod(req), reason: err.message };
      logRefusal(o.log, refusal, 'API request not authenticated', { path: untrustedPath(requestUrl(c).pathname), status: err.status });
      const challenge = bearerChallenge(`${o.publicUrls.for(req)}/.well-known/oauth-protected-resource`, err);
      throw new HttpError(err.status, err.message, err.status === 503 ? { 'retry-after': '10' } : { 'www-authenticate': challenge });
    }
    c.set('identity', identity);
    c.set('machine', false);
    await next();
  };

  /** A machine credential (`machine`), else a person. */
  const machineOrPerson: MiddlewareHandler<ControlEnv> = async (c, next) => {
    if (!isMachineCaller(c.env.incoming, o.keys)) return person(c, next);
    c.set('machine', true);
    await next();
  };

  /**
   * Whose recordings a request may read (`seesOnly`). A person sees their own sessions, or everyone's with
   * roles.auditors; a machine sees them all. A refusal is a 401 that points a client at the API's bearer realm.
   */
  const sessionsReader: MiddlewareHandler<ControlEnv> = async (c, next) => {
    const req = c.env.incoming;
    const url = requestUrl(c);
    const scoped = (identity: Identity) => {
      c.set('identity', identity);
      return inGroups(identity, o.auditors) ? undefined : { subject: identity.subject, issuer: identity.issuer };
    };
    const refuse = (status: number, message: string, headers: Readonly<Record<string, string>> = {}) =>
      new HttpError(status, message, status === 401 ? { 'www-authenticate': 'Bearer realm="portcullis-api"' } : headers);
    let seesOnly: { subject: string; issuer: string } | undefined;
    try {
      const user = await o.console?.caller(req);
      if (user !== undefined) seesOnly = scoped(user.identity);
      else if (isMachineCaller(req, o.keys)) {
        c.set('machine', true);
        seesOnly = undefined;
      } else if (req.headers.authorization !== undefined) {
        try {
          seesOnly = scoped((await o.authenticator.authenticateGateway(req, url)).identity);
        } catch (err) {
          if (!(err instanceof AuthError) || err instanceof TooManyAttemptsError) throw err;
          const refusal = { principal: unauthenticatedPrincipal, connection: gatewayApi, method: httpMethod(req), reason: err.message };
          logRefusal(o.log, refusal, 'API request not authenticated', { path: untrustedPath(url.pathname), status: err.status });
          throw new HttpError(401, `the bearer token is neither api.token, the local API key, nor a valid token for the gateway: ${err.message}`);
        }
      } else {
        const refusal = { principal: unauthenticatedPrincipal, connection: gatewayApi, method: httpMethod(req), reason: 'no credential' };
        logRefusal(o.log, refusal, 'API request without a credential refused', { path: untrustedPath(url.pathname), remote: req.socket.remoteAddress });
        throw new HttpError(401, anonymousApiRefusal);
      }
    } catch (err) {
      if (err instanceof HttpError) throw refuse(err.status, err.message, err.headers);
      throw err;
    }
    c.set('seesOnly', seesOnly);
    await next();
  };

  return { person, machineOrPerson, sessionsReader };
}
