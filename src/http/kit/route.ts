import { gatewayApi, httpMethod, logRefusal, unauthenticatedPrincipal } from '../../core/refusal-log.js';
import type { ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { HttpError } from '../../core/http-error.js';
import type { Identity } from '../../core/identity.js';
import { replyApiJson, replyJson } from '../../edge/http-reply.js';
import { checkHostAndOrigin, type HostPolicy } from '../../edge/origin.js';

/**
 * What a control-plane route is written against (src/http/control-plane.ts mounts the routes): a Hono context whose
 * bindings are the node request and response, and whose variables the middleware set. A route reads its path
 * parameters from the router, throws HttpError for anything it refuses (the control plane turns it into the reply
 * in one place), and writes its answer on the node response (exact headers, streams, exports), then returns `sent`.
 * This folder imports nothing of src/api or src/console, so that both can use it and src/http can mount them.
 */

/** How an area's refusals look: JSON `{ error }` never cached (the API), or the area's own (a sign-in page). */
export type ErrorReply = (res: ServerResponse, err: HttpError) => void;

/** An API refusal: JSON `{ error }`, never cached, with the headers the error carries. */
export const apiErrorReply: ErrorReply = (res, err) => replyApiJson(res, err.status, { error: err.message }, { ...err.headers });

/** A refusal of a public document, a scrape or a page: JSON `{ error }` with the error's headers. */
export const plainErrorReply: ErrorReply = (res, err) => replyJson(res, err.status, { error: err.message }, { ...err.headers });

/** Middleware that makes an area's refusals look like `reply`. */
export function errorsAs(reply: ErrorReply): MiddlewareHandler<ControlEnv> {
  return (c, next) => {
    c.set('errorReply', reply);
    return next();
  };
}

/**
 * Middleware: a request with a foreign Host or Origin (DNS rebinding, another site's page) is refused with a 403
 * before anything else, in the form `reply` and with `headers` (the pages' security headers), and logged.
 */
export function hostGuard(
  policy: HostPolicy,
  log: Logger,
  reply: ErrorReply = apiErrorReply,
  headers: Record<string, string> = {},
): MiddlewareHandler<ControlEnv> {
  return async (c, next) => {
    const req = c.env.incoming;
    const refusal = checkHostAndOrigin(req, policy);
    if (refusal !== undefined) {
      const refused = { principal: unauthenticatedPrincipal, connection: gatewayApi, method: httpMethod(req), reason: refusal };
      logRefusal(log, refused, 'foreign host or origin refused', { host: req.headers.host, origin: req.headers.origin }, 'warn');
      c.set('refusalLogged', true);
      c.set('errorReply', reply);
      throw new HttpError(403, `Forbidden: ${refusal}`, headers);
    }
    await next();
  };
}

/**
 * Middleware: the body of a request that no route reads is drained unread, so that its connection can carry the
 * next request; the paths under `readers` keep theirs (each reads it with its own size limit).
 */
export function drainUnreadBodies(readers: readonly string[]): MiddlewareHandler<ControlEnv> {
  return async (c, next) => {
    const path = requestUrl(c).pathname;
    if (!readers.some((p) => path === p || path.startsWith(`${p}/`))) c.env.incoming.resume();
    await next();
  };
}

/**
 * An API a feature adds under /api: its module declares the mount (src/features/feature.ts, `FeatureModule.api`) and
 * its running part the routes; the control plane mounts each in registration order behind the caller's authentication.
 */
export interface ApiMount {
  readonly path: `/api/${string}`;
  /** Who may call it: a person (a bearer token, the console's sign-in), or also a machine credential (api.token, the local API key). */
  readonly caller: 'person' | 'machineOrPerson';
  /** Whether its routes read request bodies; the body of every other request is drained unread. */
  readonly readsBody: boolean;
  /** The 503's message when the feature is off, e.g. 'tool pins need the recording store (recording.mode is off)'. */
  readonly whenOff: string;
}

/** An API as mounted: its routes, or undefined when its feature is off (the mount then answers 503 with `whenOff`). */
export interface MountedApi {
  readonly mount: ApiMount;
  readonly routes: Hono<ControlEnv> | undefined;
}

export interface ControlVariables {
  /** Who is calling: set by the person authentication of /api/access, /api/reviews, /api/pins, /api/agents. */
  identity: Identity;
  /** Whose recordings the caller may see: a person's own (a subject at an issuer), or everyone's when undefined. */
  seesOnly: { subject: string; issuer: string } | undefined;
  /** Whether the caller holds a machine credential (api.token, the local API key). */
  machine: boolean;
  /** How this area's errors are replied; the API's JSON when unset. */
  errorReply: ErrorReply;
  /** The refusal was logged where it was decided (a foreign Origin, /metrics): the error handler does not log it again. */
  refusalLogged: boolean;
}

export interface ControlEnv {
  Bindings: HttpBindings;
  Variables: ControlVariables;
}

export type ControlContext = Context<ControlEnv>;

/** What a route returns once it has written its reply on the node response itself: Hono adds nothing. */
export const sent: Response = RESPONSE_ALREADY_SENT;

/** An /api answer (JSON, never cached), written on the node response. */
export function replyJsonApi(c: ControlContext, status: number, value: unknown, headers: Record<string, string> = {}): Response {
  replyApiJson(c.env.outgoing, status, value, headers);
  return sent;
}

/** The request's URL (path and query), read as the gateway always has: relative to a fixed base, never the Host. */
export function requestUrl(c: ControlContext): URL {
  return new URL(c.env.incoming.url ?? '/', 'http://gateway');
}

/**
 * The path parameters, decoded strictly: a malformed %-escape is a 400, not a name that silently keeps its escape
 * (Hono's own decoding is lenient).
 */
export function strictParams(c: ControlContext): Record<string, string> {
  try {
    decodeURIComponent(requestUrl(c).pathname);
  } catch {
    throw new HttpError(400, 'the path has a malformed %-escape');
  }
  return c.req.param() as Record<string, string>;
}

/** A router for one API's paths: a path with a malformed %-escape is refused (400) before any route reads it. */
export function apiRouter(): Hono<ControlEnv> {
  const r = new Hono<ControlEnv>();
  r.use(async (c, next) => {
    strictParams(c);
    await next();
  });
  return r;
}
