import { createHash, hkdfSync, randomBytes } from 'node:crypto';

/**
 * The keys of the gateway's sealed tokens (legacy session ids, MRTR `requestState`s), shared by every replica so that
 * any of them opens what another sealed. The first secret seals; all of them open (rotation: a new key is put first,
 * the old one kept after it for as long as tokens sealed under it may still come back). Each purpose gets its own
 * key derived from each secret (HKDF), so a session id can never be replayed as a requestState or the reverse.
 */
export class TokenKeys {
  readonly #secrets: readonly Buffer[];

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('TokenKeys needs at least one secret');
    this.#secrets = secrets.map((s) => Buffer.from(s, 'utf8'));
  }

  /** A fresh secret (for a store that has none yet, or a single process with nowhere to keep one). */
  static generateSecret(): string {
    return randomBytes(32).toString('base64url');
  }

  /** The 256-bit keys for `purpose`, the sealing one first. */
  ring(purpose: string): KeyRing {
    return new KeyRing(this.#secrets.map((secret) => Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `portcullis ${purpose}`, 32))));
  }
}

export interface TokenKey {
  /** A short public name of the key (a digest of it), which a token carries so the right key opens it. */
  readonly kid: string;
  readonly key: Buffer;
}

export class KeyRing {
  readonly keys: readonly TokenKey[];

  constructor(keys: readonly Buffer[]) {
    this.keys = keys.map((key) => ({ key, kid: createHash('sha256').update('kid').update(key).digest('base64url').slice(0, 8) }));
  }

  get current(): TokenKey {
    return this.keys[0]!;
  }

  byKid(kid: unknown): TokenKey | undefined {
    return this.keys.find((k) => k.kid === kid);
  }
}

/** The smallest length of a configured token key (cluster.tokenKeys): 32 characters, e.g. `openssl rand -base64 32`. */
export const minTokenSecretLength = 32;
