import { type CachedToken, readCachedToken, writeCachedToken } from '../identity/token-cache.js';

/** Refresh this long before expiry, so that a request never leaves with a token about to expire. */
const marginMs = 30_000;

/**
 * The token a client command sends to the gateway at `base`: $PORTCULLIS_TOKEN, else the cached one from
 * `portcullis login`, refreshed (and the cache updated) when it is about to expire and a refresh token is at
 * hand. Says once (through `report`) what to do when there is none, or it expired and cannot be refreshed.
 */
export function tokenSource(): (base: string, report: (line: string) => void) => Promise<string | undefined> {
  const warned = new Set<string>();
  const warn = (report: (line: string) => void, line: string) => {
    if (!warned.has(line)) report(line);
    warned.add(line);
  };
  let refreshing: Promise<CachedToken> | undefined;
  return async (base, report) => {
    const fromEnv = process.env.PORTCULLIS_TOKEN;
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    const cached = readCachedToken(base);
    if (cached === undefined) {
      warn(report, `no token for ${base}: sign in with \`portcullis login\` (or \`portcullis login --dev <user>\` on a gateway with the dev identity)`);
      return undefined;
    }
    if (Date.now() + marginMs < cached.expiresAtMs) return cached.accessToken;
    if (cached.refreshToken !== undefined) {
      // The OIDC client is loaded only for a refresh: most commands find a token that is still good.
      const { LoginError, refreshToken } = await import('../identity/oidc-login.js');
      // One refresh at a time, however many requests are waiting for it.
      refreshing ??= refreshToken(cached).finally(() => (refreshing = undefined));
      try {
        const fresh = await refreshing;
        writeCachedToken(base, fresh);
        return fresh.accessToken;
      } catch (err) {
        if (!(err instanceof LoginError)) throw err;
        warn(report, `${err.message}; sign in again with \`portcullis login\``);
        return cached.accessToken;
      }
    }
    warn(report, `the token for ${base} (${cached.subject}) has expired: sign in again with \`portcullis login\``);
    return cached.accessToken;
  };
}

export const currentToken = tokenSource();
