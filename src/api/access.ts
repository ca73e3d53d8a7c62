import { sameSecret } from '../crypto/secrets.js';
import type { IncomingMessage } from 'node:http';
import type { SecretString } from '../config/secrets.js';
import { isLoopbackAddress } from '../net/loopback.js';

/**
 * Who may use /api (until it takes OIDC tokens with roles): with `api.token` set, whoever presents it as a bearer token;
 * without it, only clients on the loopback interface. Returns why a request is refused, with its status.
 */
export function apiRefusal(req: IncomingMessage, token: SecretString | undefined): { status: 401 | 403; message: string } | undefined {
  if (token !== undefined) {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (sameSecret(m?.[1] ?? '', token.reveal())) return undefined;
    return { status: 401, message: m ? 'the API token is not valid' : 'the API needs a bearer token (Authorization: Bearer …; api.token in the gateway config)' };
  }
  if (isLoopbackAddress(req.socket.remoteAddress)) return undefined;
  return { status: 403, message: 'the API answers loopback clients only, unless api.token is set in the gateway config' };
}
