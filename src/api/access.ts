import { sameSecret } from '../crypto/secrets.js';
import type { IncomingMessage } from 'node:http';
import type { SecretString } from '../core/secrets.js';

/**
 * The machine credentials of /api/sessions and /metrics: `api.token` (for a Prometheus scrape, or scripts on other
 * hosts) and the gateway's local API key (the file api-key in its data directory, for the CLI and scripts on its
 * host). Nothing is trusted for arriving on loopback: a TLS proxy on the same host makes every remote caller a
 * loopback one.
 */
export interface MachineKeys {
  token?: SecretString;
  localKey: string;
}

/** What a request with no credential is told. */
export const anonymousApiRefusal =
  "the API needs a bearer token (Authorization: Bearer …): a person's token for the gateway, api.token, or the local API key (the file api-key in the gateway's data directory)";

/** The bearer token of a request, or undefined when it sends none. */
function bearer(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** Whether the request presents a machine credential (api.token or the local API key) as its bearer token. */
export function isMachineCaller(req: IncomingMessage, keys: MachineKeys): boolean {
  const given = bearer(req);
  if (given === undefined) return false;
  // Both compared, so that the time taken does not say which one was nearly right.
  const isToken = keys.token !== undefined && sameSecret(given, keys.token.reveal());
  const isLocal = sameSecret(given, keys.localKey);
  return isToken || isLocal;
}

/** Why a request for a machine-only resource (/metrics) is refused, or undefined when it presents a machine credential. */
export function apiRefusal(req: IncomingMessage, keys: MachineKeys): { status: 401; message: string } | undefined {
  if (isMachineCaller(req, keys)) return undefined;
  return {
    status: 401,
    message: req.headers.authorization === undefined ? anonymousApiRefusal : 'the bearer token is neither api.token nor the local API key',
  };
}
