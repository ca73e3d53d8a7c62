import { readCachedToken } from '../identity/token-cache.js';

/** Refresh this long before expiry, so that a request never leaves with a token about to expire. */
const marginMs = 30_000;

/**
 * The token a client command sends to the gateway at `base`: $PORTCULLIS_TOKEN, else the cached one from
 * `portcullis login`. Says once (through `report`) what to do when there is none or it has expired.
 */
export function tokenSource(): (base: string, report: (line: string) => void) => Promise<string | undefined> {
  let warned = false;
  const warn = (report: (line: string) => void, line: string) => {
    if (!warned) report(line);
    warned = true;
  };
  return async (base, report) => {
    const fromEnv = process.env.PORTCULLIS_TOKEN;
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    const cached = readCachedToken(base);
    if (cached === undefined) {
      warn(report, `no token for ${base}: sign in with \`portcullis login\` (or \`portcullis login --dev <user>\` on a gateway with the dev identity)`);
      return undefined;
    }
    if (Date.now() + marginMs < cached.expiresAtMs) return cached.accessToken;
    warn(report, `the token for ${base} (${cached.subject}) has expired: sign in again with \`portcullis login\``);
    return cached.accessToken;
  };
}

export const currentToken = tokenSource();
