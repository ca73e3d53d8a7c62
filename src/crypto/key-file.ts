import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export class KeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFileError';
  }
}

/**
 * Puts a new secret file (mode 0600) at `path` whole, or leaves the one another process put there first: false then.
 * Written aside and linked into place, so that a process racing to read it never sees it empty or half written.
 */
export function writeNewSecretFile(path: string, content: string): boolean {
  const aside = join(dirname(path), `.${randomBytes(8).toString('hex')}.new`);
  writeFileSync(aside, content, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(aside, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    unlinkSync(aside);
  }
}

/**
 * An Ed25519 private key kept in a PEM file (mode 0600, its directory 0700), made on first use. When two
 * processes race to make it, one writes and the other reads what was written.
 */
export function loadOrCreateEd25519Key(path: string, what: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new KeyFileError(`${what} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    if (writeNewSecretFile(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)) return privateKey;
    pem = readFileSync(path, 'utf8');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new KeyFileError(`${what} ${path} is not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new KeyFileError(`${what} ${path} holds a ${key.asymmetricKeyType ?? 'unknown'} key; expected Ed25519`);
  }
  return key;
}
