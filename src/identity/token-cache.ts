import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The CLI's tokens, one entry per gateway, in `$PORTCULLIS_HOME/tokens.json` (default `~/.portcullis`): the
 * directory 0700 and the file 0600, written whole to a temporary file and renamed so that a reader never sees
 * half of it. `portcullis login` writes an entry; `portcullis connect` reads it and refreshes it.
 */

export interface CachedToken {
  accessToken: string;
  /** When the access token expires (ms since the epoch). */
  expiresAtMs: number;
  refreshToken?: string;
  /** `dev` for the embedded dev identity, else the OIDC issuer. */
  issuer: string;
  subject: string;
  /** For a refresh: the client and the issuer's token endpoint. */
  clientId?: string;
  tokenEndpoint?: string;
  /** The resource (audience) the token was asked for, and the scopes: asked for again on refresh. */
  resource?: string;
  scopes?: string[];
  /** Hosts besides the issuer's own its endpoints may be on (as accepted at sign-in). */
  endpointHosts?: string[];
}

export function portcullisHome(): string {
  return process.env.PORTCULLIS_HOME ?? join(homedir(), '.portcullis');
}

function cacheFile(): string {
  return join(portcullisHome(), 'tokens.json');
}

/** A gateway's key in the cache: its origin, so http://h:1/ and http://h:1 are one gateway. */
export function gatewayKey(base: string): string {
  return new URL(base).origin;
}

function readAll(): Record<string, CachedToken> {
  const file = cacheFile();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  // Someone loosened the permissions: tighten them again before trusting the file any further.
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, CachedToken>) : {};
  } catch {
    return {};
  }
}

export function readCachedToken(base: string): CachedToken | undefined {
  return readAll()[gatewayKey(base)];
}

export function writeCachedToken(base: string, token: CachedToken | undefined): void {
  const home = portcullisHome();
  mkdirSync(home, { recursive: true, mode: 0o700 });
  chmodSync(home, 0o700);
  const all = readAll();
  if (token === undefined) delete all[gatewayKey(base)];
  else all[gatewayKey(base)] = token;
  const file = cacheFile();
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, file);
}
