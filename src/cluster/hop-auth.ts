import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Identity } from '../core/identity.js';

/**
 * The authentication of the internal hop between replicas (docs/cluster-hop.md): an HMAC-SHA256, under the shared
 * `cluster.secret`, of the request's method, target, session id, the caller it carries and a timestamp. The secret
 * itself never travels; a signature is good for one request line and caller, within a minute of its time.
 */
export const hopHeader = 'portcullis-hop';
export const hopCallerHeader = 'portcullis-hop-caller';
/** How far a hop's timestamp may be from the receiver's clock. */
const skewMs = 60_000;

/** The caller a hop carries: verified by the replica the client reached, trusted by the owner only under a valid signature. */
export interface HopCaller {
  identity: Identity;
  access: string;
  grant?: string;
}

export class HopAuth {
  readonly #secret: Buffer;

  constructor(secret: string) {
    this.#secret = Buffer.from(secret, 'utf8');
  }

  /** The hop headers for a request: the caller, encoded, and the signature over it and the request line. */
  sign(method: string, target: string, sessionId: string | undefined, caller: HopCaller, now = Date.now()): Record<string, string> {
    const encoded = Buffer.from(JSON.stringify(caller)).toString('base64url');
    return { [hopCallerHeader]: encoded, [hopHeader]: `t=${now};sig=${this.#mac(now, method, target, sessionId, encoded)}` };
  }

  /** The caller of a signed hop, or why it is refused (never a reason that helps a forger beyond "no"). */
  verify(
    method: string,
    target: string,
    headers: Record<string, string | string[] | undefined>,
    now = Date.now(),
  ): { caller: HopCaller } | { refused: string } {
    const auth = headers[hopHeader];
    const encoded = headers[hopCallerHeader];
    if (typeof auth !== 'string' || typeof encoded !== 'string') return { refused: 'missing hop credentials' };
    const m = /^t=(\d{1,16});sig=([A-Za-z0-9_-]{43})$/.exec(auth);
    if (m === null) return { refused: 'malformed hop credentials' };
    const t = Number(m[1]);
    if (Math.abs(now - t) > skewMs) return { refused: 'hop timestamp outside the allowed clock skew' };
    const session = headers['mcp-session-id'];
    const expected = Buffer.from(this.#mac(t, method, target, typeof session === 'string' ? session : undefined, encoded));
    const given = Buffer.from(m[2]!);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { refused: 'bad hop signature' };
    try {
      const caller = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as HopCaller;
      if (typeof caller?.identity?.subject !== 'string' || typeof caller.identity.issuer !== 'string' || !Array.isArray(caller.identity.groups))
        return { refused: 'malformed hop caller' };
      return { caller };
    } catch {
      return { refused: 'malformed hop caller' };
    }
  }

  #mac(t: number, method: string, target: string, sessionId: string | undefined, caller: string): string {
    return createHmac('sha256', this.#secret)
      .update(JSON.stringify(['portcullis hop v1', t, method, target, sessionId ?? null, caller]))
      .digest('base64url');
  }
}
