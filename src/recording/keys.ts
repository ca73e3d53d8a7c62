import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SecretString } from '../core/secrets.js';
import { KeyFileError, loadOrCreateEd25519Key } from '../crypto/key-file.js';

/**
 * The gateway's Ed25519 signing key, which seals every closed session. Generated on first start into the
 * data directory (mode 0600), or supplied by config (`recording.signingKey: ${file:…}`). Its id is the first
 * 16 hex digits of the SHA-256 of the public key (SPKI DER), stored beside every seal.
 */
export interface SigningKey {
  readonly keyId: string;
  readonly publicKeyPem: string;
  sign(data: Buffer): string;
}

export class SigningKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SigningKeyError';
  }
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

function fromPrivateKey(privateKey: KeyObject, where: string): SigningKey {
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new SigningKeyError(`${where} holds a ${privateKey.asymmetricKeyType ?? 'unknown'} key; the recording is signed with Ed25519`);
  }
  const publicKey = createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    keyId: keyIdOf(publicKey),
    publicKeyPem,
    sign: (data) => sign(null, data, privateKey).toString('base64'),
  };
}

export const signingKeyFile = 'signing-key.pem';

/** The configured key, or the one in the data directory, created there on first start. */
export function loadSigningKey(dataDir: string, configured?: SecretString): SigningKey {
  if (configured !== undefined) {
    try {
      return fromPrivateKey(createPrivateKey(configured.reveal()), `recording.signingKey (${configured.template})`);
    } catch (err) {
      if (err instanceof SigningKeyError) throw err;
      throw new SigningKeyError(`recording.signingKey (${configured.template}) is not a PEM private key: ${(err as Error).message}`);
    }
  }
  const path = join(dataDir, signingKeyFile);
  try {
    return fromPrivateKey(loadOrCreateEd25519Key(path, 'the signing key'), path);
  } catch (err) {
    if (err instanceof KeyFileError) throw new SigningKeyError(err.message);
    throw err;
  }
}

/** Checks a seal's signature with a public key (SPKI PEM). */
export function verifySeal(publicKeyPem: string, data: Buffer, signature: string): boolean {
  try {
    return verify(null, data, createPublicKey(publicKeyPem), Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** The key id of a public key given as PEM (a trusted key from config). */
export function keyIdOfPem(publicKeyPem: string): string {
  return keyIdOf(createPublicKey(publicKeyPem));
}

/**
 * The public keys a verifier on this machine trusts, without creating anything: the gateway's own key (the
 * configured one, or the one in the data directory if it exists) and the configured trusted keys.
 */
export function verifierKeys(
  dataDir: string,
  configured: SecretString | undefined,
  trusted: readonly string[],
): Array<{ keyId: string; publicKeyPem: string }> {
  const keys: Array<{ keyId: string; publicKeyPem: string }> = [];
  if (configured !== undefined || existsSync(join(dataDir, signingKeyFile))) {
    const own = loadSigningKey(dataDir, configured);
    keys.push({ keyId: own.keyId, publicKeyPem: own.publicKeyPem });
  }
  for (const pem of trusted) keys.push({ keyId: keyIdOfPem(pem), publicKeyPem: pem });
  return keys;
}
