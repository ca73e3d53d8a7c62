import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from '../core/identity.js';

/**
 * The authentication of the internal hop between replicas (docs/cluster-hop.md): an HMAC-SHA256, under the shared
 * `cluster.secret`, of the request's method, target, session id, body, the caller it carries, the replica it is for,
 * a timestamp and a random nonce. The secret itself never travels; a signature is good for that one request, at that
 * one replica, once, within a minute of its time: whoever reads the traffic between replicas can neither replay a
 * hop to its owner nor send it to another replica.
 */
export const hopHeader = 'portcullis-hop';
export const hopCallerHeader = 'portcullis-hop-caller';
/**
 * On a replica's refusal of a hop: the sender then answers its client as for an unreachable owner, rather than relaying
 * a 401 or 403 that the client would take as a verdict on its own token.
 */
export const hopRefusedHeader = 'portcullis-hop-refused';
/** How far a hop's timestamp may be from the receiver's clock. */
const skewMs = 60_000;
const credentials = /^t=(\d{1,16});n=([A-Za-z0-9_-]{16});sig=([A-Za-z0-9_-]{43})$/;

/** The caller a hop carries: verified by the replica the client reached, trusted by the owner only under a valid signature. */
export interface HopCaller {
  identity: Identity;
  access: string;
  grant?: string;
}

export class HopAuth {
  readonly #secret: Buffer;
  /** Signatures accepted in the last two skew windows (past that their time refuses them): each is taken once. */
  readonly #seen = new Map<string, number>();

  constructor(
    secret: string,
    /** This replica's instance id: the hops it accepts are those signed for it. */
    readonly self: string,
  ) {
    this.#secret = Buffer.from(secret, 'utf8');
  }

  /** The hop headers for a request to replica `to`: the caller, encoded, and the signature over it and the request line. */
  sign(method: string, target: string, sessionId: string | undefined, body: string, caller: HopCaller, to: string, now = Date.now()): Record<string, string> {
    const encoded = Buffer.from(JSON.stringify(caller)).toString('base64url');
    const nonce = randomBytes(12).toString('base64url');
    return { [hopCallerHeader]: encoded, [hopHeader]: `t=${now};n=${nonce};sig=${this.#mac(now, nonce, to, method, target, sessionId, body, encoded)}` };
  }

  /** Why a hop is refused on its headers alone (before its body is read), or undefined when they may be right. */
  precheck(headers: Record<string, string | string[] | undefined>, now = Date.now()): string | undefined {
    const auth = headers[hopHeader];
    if (typeof auth !== 'string' || typeof headers[hopCallerHeader] !== 'string') return 'missing hop credentials';
    const m = credentials.exec(auth);
    if (m === null) return 'malformed hop credentials';
    if (Math.abs(now - Number(m[1])) > skewMs) return 'hop timestamp outside the allowed clock skew';
    return undefined;
  }

  /** The caller of a signed hop, or why it is refused (never a reason that helps a forger beyond "no"). */
  verify(
    method: string,
    target: string,
    headers: Record<string, string | string[] | undefined>,
    body: string,
    now = Date.now(),
  ): { caller: HopCaller } | { refused: string } {
    const refused = this.precheck(headers, now);
    if (refused !== undefined) return { refused };
    const encoded = headers[hopCallerHeader] as string;
    const m = credentials.exec(headers[hopHeader] as string)!;
    const t = Number(m[1]);
    const session = headers['mcp-session-id'];
    const expected = Buffer.from(this.#mac(t, m[2]!, this.self, method, target, typeof session === 'string' ? session : undefined, body, encoded));
    const given = Buffer.from(m[3]!);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { refused: 'bad hop signature' };
    if (!this.#firstUse(m[3]!, now)) return { refused: 'replayed hop signature' };
    try {
      const caller = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as HopCaller;
      if (typeof caller?.identity?.subject !== 'string' || typeof caller.identity.issuer !== 'string' || !Array.isArray(caller.identity.groups))
        return { refused: 'malformed hop caller' };
      return { caller };
    } catch {
      return { refused: 'malformed hop caller' };
    }
  }

  /** Whether a valid signature is seen for the first time (and remembers it until its time would refuse it anyway). */
  #firstUse(sig: string, now: number): boolean {
    for (const [old, until] of this.#seen) {
      if (until > now) break;
      this.#seen.delete(old);
    }
    if (this.#seen.has(sig)) return false;
    this.#seen.set(sig, now + 2 * skewMs);
    return true;
  }

  #mac(t: number, nonce: string, to: string, method: string, target: string, sessionId: string | undefined, body: string, caller: string): string {
    const digest = createHash('sha256').update(body).digest('base64url');
    return createHmac('sha256', this.#secret)
      .update(JSON.stringify(['portcullis hop v2', t, nonce, to, method, target, sessionId ?? null, digest, caller]))
      .digest('base64url');
  }
}
