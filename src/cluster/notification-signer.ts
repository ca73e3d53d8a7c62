import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { type ClusterSecrets, secretList } from './cluster-secrets.js';

/** How far a signed notification's time may be from the receiver's clock (as the hop's). */
const skewMs = 60_000;
const signedPayload = /^([A-Za-z0-9_-]{43})\.(.*)$/s;

/**
 * Signs and checks notifications under a key derived from cluster.secret (not the secret itself, which signs hops):
 * `<HMAC-SHA256 base64url>.<body>`, the body naming its sender, time and a nonce. With a list of secrets (a rotation),
 * the first one's key signs and a notification signed under any one's is taken.
 */
export class NotificationSigner {
  /** One key per secret, the signing one first. */
  readonly #keys: readonly Buffer[];
  /** Signatures taken in the last two skew windows: a notification replayed by whoever can LISTEN is ignored. */
  readonly #seen = new Map<string, number>();

  constructor(secrets: ClusterSecrets) {
    this.#keys = secretList(secrets).map((secret) =>
      Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), 'portcullis change notifications', 32)),
    );
  }

  sign(body: string): string {
    return `${this.#mac(this.#keys[0]!, body)}.${body}`;
  }

  /** The body of an authentic notification seen for the first time, or why not. */
  open(payload: string, now = Date.now()): { body: string } | { refused: string } {
    const m = signedPayload.exec(payload);
    if (m === null) return { refused: 'unsigned' };
    const given = Buffer.from(m[1]!);
    const signedUnder = (key: Buffer) => {
      const expected = Buffer.from(this.#mac(key, m[2]!));
      return expected.length === given.length && timingSafeEqual(expected, given);
    };
    if (!this.#keys.some(signedUnder)) return { refused: 'bad signature' };
    let t: unknown;
    try {
      t = (JSON.parse(m[2]!) as { t?: unknown }).t;
    } catch {
      return { refused: 'malformed' };
    }
    if (typeof t !== 'number' || Math.abs(now - t) > skewMs) return { refused: 'time outside the allowed clock skew' };
    for (const [old, until] of this.#seen) {
      if (until > now) break;
      this.#seen.delete(old);
    }
    if (this.#seen.has(m[1]!)) return { refused: 'replayed' };
    this.#seen.set(m[1]!, now + 2 * skewMs);
    return { body: m[2]! };
  }

  #mac(key: Buffer, body: string): string {
    return createHmac('sha256', key).update(body).digest('base64url');
  }
}

/** What signing adds to a body: the HMAC-SHA256 in base64url (43 characters) and a dot. */
export const signatureBytes = 44;

/**
 * A notification's body around its changes, for sizing it as it is filled: `head`, then each change's JSON separated
 * by commas, then `tail` is the body notificationBody makes of them (with the time and nonce of this envelope).
 */
export function notificationEnvelope(from: string, signed: boolean): { head: string; tail: string } {
  const fields = JSON.stringify(signed ? { f: from, t: Date.now(), n: randomBytes(9).toString('base64url') } : { f: from });
  return { head: `${fields.slice(0, -1)},"c":[`, tail: ']}' };
}

/** A notification's body: its sender, its changes, and when signed, its time and nonce. */
export function notificationBody(from: string, changes: unknown[], signed: boolean): string {
  return JSON.stringify(signed ? { f: from, t: Date.now(), n: randomBytes(9).toString('base64url'), c: changes } : { f: from, c: changes });
}
