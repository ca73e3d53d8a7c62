import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KeyFileError, writeNewSecretFile } from './key-file.js';

/**
 * The gateway's local API key: a bearer secret in the data directory (mode 0600), made at the first start, that
 * gives the machine's view of /api/sessions and /metrics, as api.token does. It is how the CLI and scripts on the
 * gateway's host (as its user) use the API without an OIDC sign-in, now that arriving on loopback proves nothing:
 * a TLS proxy on the same host, or any other local user, arrives there too. Whoever can read the file could read
 * the recordings in the data directory anyway.
 */

export const localApiKeyFile = 'api-key';

const keyShape = /^pcl_[A-Za-z0-9_-]{43}$/;

/** The key file's path in a data directory. */
export function localApiKeyPath(dataDir: string): string {
  return join(dataDir, localApiKeyFile);
}

/** The key, made on first use. Refuses a key file other users may read, or one that does not hold a key. */
export function loadOrCreateLocalApiKey(dataDir: string): string {
  const path = localApiKeyPath(dataDir);
  const existing = readLocalApiKey(dataDir);
  if (existing !== undefined) return existing;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = `pcl_${randomBytes(32).toString('base64url')}`;
  // Two processes started at once: one puts its key in place whole, the other reads that one.
  if (writeNewSecretFile(path, `${key}\n`)) return key;
  return readLocalApiKey(dataDir)!;
}

/** The key when the file exists (the CLI and tests read it; only the gateway makes it); throws when it is unusable. */
export function readLocalApiKey(dataDir: string): string | undefined {
  const path = localApiKeyPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new KeyFileError(`the local API key ${path} cannot be read (${code ?? String(err)}); run as the gateway's user`);
  }
  if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
    throw new KeyFileError(`the local API key ${path} may be read by other users; chmod 600 it (or remove it to have a new one made)`);
  }
  const key = text.trim();
  if (!keyShape.test(key)) throw new KeyFileError(`${path} does not hold a local API key; remove it to have a new one made`);
  return key;
}
