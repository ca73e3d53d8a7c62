import type { Logger } from 'pino';

/** The principal of a refusal decided before (or because) the caller could not be authenticated. */
export const unauthenticatedPrincipal = 'unauthenticated';

/**
 * What every log line about a refusal says, in the same four fields wherever the refusal was decided, so that one
 * query finds who was refused what and why: the principal (a token's subject, or `unauthenticated`), the connection,
 * the method (the JSON-RPC method when the message was read; `HTTP POST` and the like when it was refused before),
 * and the reason. What is specific to one refusal (a status, a limit, a stage) comes as further fields.
 */
export interface Refusal {
  principal: string;
  connection: string;
  method: string;
  reason: string;
}

/** Where a refusal was decided: the connection, and the method asked for (see Refusal). */
export type RefusalPlace = Pick<Refusal, 'connection' | 'method'>;

/** The connection of a refusal of a request to the gateway's own API (/api, the console), not to a connection. */
export const gatewayApi = '(gateway API)';

/** The method of a refusal of a new session (a session or server-process count, the rate of session opens). */
export const sessionOpening = '(opening a session)';

/** The method of a refusal decided on the HTTP request, before any JSON-RPC message was read from it. */
export function httpMethod(req: { method?: string | undefined }): string {
  return `HTTP ${req.method ?? '?'}`;
}

/**
 * Logs a refusal with `refusal: true` and the four fields (the ones the logger is already bound to with the same
 * value are not repeated). Refusals are info (a client was told no, the gateway is fine); `warn` for those that
 * suggest an attack or a misconfiguration.
 */
export function logRefusal(log: Logger, refusal: Refusal, message: string, extra: Record<string, unknown> = {}, level: 'info' | 'warn' = 'info'): void {
  if (!log.isLevelEnabled(level)) return;
  const bound = log.bindings();
  const fields: Record<string, unknown> = { refusal: true, ...extra };
  for (const [key, value] of Object.entries(refusal)) if (bound[key] !== value) fields[key] = value;
  log[level](fields, message);
}

/**
 * A reason for the log with the text it quotes from the request elided, and short: what a client sent (a name, a URI,
 * the part of a body JSON.parse shows in its error) may hold its token. Everything from the first double quote to the
 * last goes: a quoted excerpt of a body can itself hold quotes, so quotes cannot be paired.
 */
export function quotedElided(reason: string): string {
  const first = reason.indexOf('"');
  const last = reason.lastIndexOf('"');
  const elided = first < 0 ? reason : first === last ? `${reason.slice(0, first)}"…` : `${reason.slice(0, first)}"…"${reason.slice(last + 1)}`;
  return elided.length > 300 ? `${elided.slice(0, 300)}…` : elided;
}

/** Logs refusals for one principal on one connection (an edge's request): each call says the method and the reason. */
export function refusalsFor(
  log: Logger,
  who: Pick<Refusal, 'principal' | 'connection'>,
): (method: string, reason: string, message: string, extra?: Record<string, unknown>, level?: 'info' | 'warn') => void {
  return (method, reason, message, extra, level) => logRefusal(log, { ...who, method, reason }, message, extra, level);
}

/** The method of a request's messages for a refusal: the first request's (or message's), else the HTTP method. */
export function methodOf(messages: readonly unknown[], req: { method?: string | undefined }): string {
  for (const m of messages)
    if (m !== null && typeof m === 'object' && typeof (m as { method?: unknown }).method === 'string') return (m as { method: string }).method;
  return httpMethod(req);
}
