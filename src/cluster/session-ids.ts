import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyRing } from './token-keys.js';

/**
 * Legacy session ids (`Mcp-Session-Id`) that name the replica owning the session, sealed so that they cannot be forged
 * or altered: AES-256-GCM over the owner's instance id under the shared token key, with a random nonce. Any replica
 * finds a session's owner from its id alone (no database round trip), and a client learns nothing from it (the instance
 * id is encrypted). The id is the session's id everywhere (registry, recording, console, API): one name per session.
 *
 * Layout, base64url: nonce (12 bytes) · kid (4, which key) · ciphertext (the instance id) · tag (16). The random nonce
 * comes first so that the first character varies: a kid first would fix it per key, and a key whose kid began with '-'
 * could never mint an id that does not.
 */
const aad = Buffer.from('portcullis session id v1');
const kidBytes = 4;
const nonceBytes = 12;
const tagBytes = 16;
/** Instance ids are at most 64 characters (src/recording/instance.ts): anything longer is not one of ours. */
const maxIdChars = Math.ceil(((kidBytes + nonceBytes + 64 + tagBytes) * 4) / 3);

export class SessionIds {
  constructor(
    private readonly keys: KeyRing,
    /** This replica's instance id, which the ids it mints name. */
    readonly instance: string,
  ) {}

  /** A new session id naming this replica. Never starting with '-' (a command line would take it for an option). */
  mint(): string {
    for (;;) {
      const { kid, key } = this.keys.current;
      const nonce = randomBytes(nonceBytes);
      const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(aad);
      const sealed = Buffer.concat([
        nonce,
        Buffer.from(kid, 'base64url').subarray(0, kidBytes),
        cipher.update(this.instance, 'utf8'),
        cipher.final(),
        cipher.getAuthTag(),
      ]);
      const id = sealed.toString('base64url');
      if (!id.startsWith('-')) return id;
    }
  }

  /** The instance a session id names, or undefined when it is not an id a replica sharing the key minted (forged, altered, foreign). */
  ownerOf(id: string): string | undefined {
    if (id.length > maxIdChars || !/^[A-Za-z0-9_-]+$/.test(id)) return undefined;
    const raw = Buffer.from(id, 'base64url');
    // Only the canonical spelling: base64's spare bits would otherwise let one sealed id be written several ways.
    if (raw.length < kidBytes + nonceBytes + 1 + tagBytes || raw.toString('base64url') !== id) return undefined;
    const nonce = raw.subarray(0, nonceBytes);
    const kid = raw.subarray(nonceBytes, nonceBytes + kidBytes).toString('base64url');
    const key = this.keys.keys.find((k) => Buffer.from(k.kid, 'base64url').subarray(0, kidBytes).toString('base64url') === kid);
    if (key === undefined) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, nonce).setAAD(aad);
      decipher.setAuthTag(raw.subarray(raw.length - tagBytes));
      return Buffer.concat([decipher.update(raw.subarray(kidBytes + nonceBytes, raw.length - tagBytes)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
