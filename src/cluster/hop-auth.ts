import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Identity } from '../core/identity.js';
import { type ClusterSecrets, secretList } from './cluster-secrets.js';

/**
 * The authentication of the internal hop between replicas (docs/cluster-hop.md): an HMAC-SHA256, under the shared
 * `cluster.secret` (the first of its list; a hop signed under any of them is taken, so the secret rotates), of the request's method, target, headers, body, the caller it carries, the replica it is for,
 * a timestamp and a random nonce. The secret itself never travels; a signature is good for that one request, at that
 * one replica, once, within a minute of its time: whoever reads the traffic between replicas can neither replay a
 * hop to its owner nor send it to another replica, nor alter what the owner acts on.
 *
 * Every header the sender forwards is signed, its name listed in `Portcullis-Hop-Signed`. The receiver refuses a hop
 * with a header the owner acts on (the session id, Last-Event-ID, content type, Accept, the MCP headers) that is not
 * signed, and drops every other unsigned header (one a proxy between replicas added) before serving it.
 */
export const hopHeader = 'portcullis-hop';
export const hopCallerHeader = 'portcullis-hop-caller';
export const hopSignedHeader = 'portcullis-hop-signed';
/**
 * The instance id of the replica a hop is for (URI-encoded), which the signature covers anyway: sent in the clear so
 * that a replica now at the owner's address can say the hop is not for it, rather than that its signature is bad.
 * Optional on receipt (a sender of an earlier version has none): the signature still binds the hop to its replica.
 */
export const hopForHeader = 'portcullis-hop-for';
/**
 * On a replica's refusal of a hop, saying why (a HopRefusalCode): the sender answers its client as for an owner gone
 * when the hop was not for that replica, and as for one unreachable for now otherwise, never relaying a 401 or 403
 * that the client would take as a verdict on its own token (hop-refusal.ts).
 */
export const hopRefusedHeader = 'portcullis-hop-refused';
/**
 * Why a hop is refused. `not-for-this-instance`: the receiver is not the replica it is for (the owner is gone, and
 * another replica answers at its address); every other code is an authentication failure between live replicas
 * (signed under none of the receiver's cluster.secret, clocks apart, replayed, altered on the way, or no secret).
 */
export type HopRefusalCode = 'not-for-this-instance' | 'bad-signature' | 'clock-skew' | 'replayed' | 'malformed' | 'no-secret';
export interface HopRefusal {
  refused: string;
  code: HopRefusalCode;
}
/**
 * On a draining replica's 503 to a hop, before it acted on anything (it opens no session while draining, and passes
 * no hop on): the sender of a session's opening may then try another serving replica. Only ever on a hop's reply;
 * the sender drops it from whatever it relays to its client.
 */
export const hopDeclinedHeader = 'portcullis-hop-declined';
/** How far a hop's timestamp may be from the receiver's clock (inclusive: exactly this far is accepted). */
export const hopSkewMs = 60_000;
const credentials = /^t=(\d{1,16});n=([A-Za-z0-9_-]{16});sig=([A-Za-z0-9_-]{43})$/;
/** The signed header names: lower-case HTTP tokens, comma-separated (none at all is '-'). */
const signedNames = /^(?:-|[a-z0-9!#$%&'*+.^_`|~-]+(?:,[a-z0-9!#$%&'*+.^_`|~-]+)*)$/;
/** Headers that are the hop's own or the connection's (not the request's): never signed, never dropped. */
const transportHeaders = new Set([
  hopHeader,
  hopCallerHeader,
  hopSignedHeader,
  hopForHeader,
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
]);

/** Whether the owner acts on a request header: one of these unsigned refuses the hop rather than being dropped. */
function actedOn(name: string): boolean {
  return name === 'last-event-id' || name === 'content-type' || name === 'accept' || name.startsWith('mcp-');
}

type Headers = Record<string, string | string[] | number | undefined>;

/** A header's value as signed: repeats joined as node joins them on receipt. */
function signedValue(headers: Headers, name: string): string | null {
  const v = headers[name];
  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : String(v);
}

/** The caller a hop carries: verified by the replica the client reached, trusted by the owner only under a valid signature. */
export interface HopCaller {
  identity: Identity;
  access: string;
  grant?: string;
  /** The client's address as the replica it reached saw it: what a session opened over the hop records. */
  remoteAddress?: string;
}

export class HopAuth {
  /** cluster.secret, the signing one first. */
  readonly #secrets: readonly Buffer[];
  /** Signatures accepted in the last two skew windows (past that their time refuses them): each is taken once. */
  readonly #seen = new Map<string, number>();

  constructor(
    secrets: ClusterSecrets,
    /** This replica's instance id: the hops it accepts are those signed for it. */
    readonly self: string,
  ) {
    this.#secrets = secretList(secrets).map((s) => Buffer.from(s, 'utf8'));
  }

  /**
   * The hop headers for a request to replica `to` forwarding `headers` (all of them are signed): the caller, encoded,
   * the names of the signed headers, the replica it is for, and the signature (under the first secret) over them, the
   * request line and the body.
   */
  sign(method: string, target: string, headers: Headers, body: string, caller: HopCaller, to: string, now = Date.now()): Record<string, string> {
    const encoded = Buffer.from(JSON.stringify(caller)).toString('base64url');
    const nonce = randomBytes(12).toString('base64url');
    const names = Object.keys(headers)
      .map((n) => n.toLowerCase())
      .filter((n) => !transportHeaders.has(n) && headers[n] !== undefined)
      .sort();
    const listed = names.length === 0 ? '-' : names.join(',');
    return {
      [hopCallerHeader]: encoded,
      [hopSignedHeader]: listed,
      [hopForHeader]: encodeURIComponent(to),
      [hopHeader]: `t=${now};n=${nonce};sig=${this.#mac(this.#secrets[0]!, now, nonce, to, method, target, headers, names, body, encoded)}`,
    };
  }

  /**
   * Why a hop is refused on its headers alone (before its body is read), or undefined when they may be right. A hop
   * that names another replica is refused as not for this one before anything else: its sender then knows the owner
   * it meant is not at this address, whatever else is wrong with it.
   */
  precheck(headers: Record<string, string | string[] | undefined>, now = Date.now()): HopRefusal | undefined {
    const auth = headers[hopHeader];
    const signed = headers[hopSignedHeader];
    const to = headers[hopForHeader];
    if (to !== undefined && to !== encodeURIComponent(this.self)) return { refused: 'not for this instance', code: 'not-for-this-instance' };
    if (typeof auth !== 'string' || typeof headers[hopCallerHeader] !== 'string' || typeof signed !== 'string')
      return { refused: 'missing hop credentials', code: 'malformed' };
    const m = credentials.exec(auth);
    if (m === null || !signedNames.test(signed)) return { refused: 'malformed hop credentials', code: 'malformed' };
    if (Math.abs(now - Number(m[1])) > hopSkewMs) return { refused: 'hop timestamp outside the allowed clock skew', code: 'clock-skew' };
    return undefined;
  }

  /**
   * The caller of a signed hop and the names of the headers signed, or why it is refused (never a reason that helps a
   * forger beyond "no"). The caller then serves the request with only the signed headers (`keepSigned`).
   */
  verify(
    method: string,
    target: string,
    headers: Record<string, string | string[] | undefined>,
    body: string,
    now = Date.now(),
  ): { caller: HopCaller; signed: ReadonlySet<string> } | HopRefusal {
    const refused = this.precheck(headers, now);
    if (refused !== undefined) return refused;
    const encoded = headers[hopCallerHeader] as string;
    const m = credentials.exec(headers[hopHeader] as string)!;
    const t = Number(m[1]);
    const listed = headers[hopSignedHeader] as string;
    const names = listed === '-' ? [] : listed.split(',');
    const signed = new Set(names);
    if (signed.size !== names.length || names.some((n) => transportHeaders.has(n)) || names.join(',') !== [...names].sort().join(','))
      return { refused: 'malformed hop credentials', code: 'malformed' };
    const unsigned = Object.keys(headers).find((n) => !signed.has(n) && !transportHeaders.has(n) && actedOn(n));
    if (unsigned !== undefined) return { refused: `unsigned ${unsigned} header on a hop`, code: 'malformed' };
    const given = Buffer.from(m[3]!);
    const signedUnder = (secret: Buffer) => {
      const expected = Buffer.from(this.#mac(secret, t, m[2]!, this.self, method, target, headers, names, body, encoded));
      return expected.length === given.length && timingSafeEqual(expected, given);
    };
    if (!this.#secrets.some(signedUnder)) return { refused: 'bad hop signature', code: 'bad-signature' };
    if (!this.#firstUse(m[3]!, now)) return { refused: 'replayed hop signature', code: 'replayed' };
    try {
      const caller = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as HopCaller;
      if (
        typeof caller?.identity?.subject !== 'string' ||
        typeof caller.identity.issuer !== 'string' ||
        !Array.isArray(caller.identity.groups) ||
        (caller.remoteAddress !== undefined && typeof caller.remoteAddress !== 'string')
      )
        return { refused: 'malformed hop caller', code: 'malformed' };
      return { caller, signed };
    } catch {
      return { refused: 'malformed hop caller', code: 'malformed' };
    }
  }

  /**
   * Whether a valid signature is seen for the first time (and remembers it until its time would refuse it anyway).
   * Taken at `now`, its time is at most `now + skew`, so it passes the time check up to `now + 2·skew` inclusive: it is
   * kept through that very millisecond (forgotten only once `until` is past), and the entries' `until` grows with
   * their insertion, so the oldest are the first to go.
   */
  #firstUse(sig: string, now: number): boolean {
    for (const [old, until] of this.#seen) {
      if (until >= now) break;
      this.#seen.delete(old);
    }
    if (this.#seen.has(sig)) return false;
    this.#seen.set(sig, now + 2 * hopSkewMs);
    return true;
  }

  #mac(
    secret: Buffer,
    t: number,
    nonce: string,
    to: string,
    method: string,
    target: string,
    headers: Headers,
    names: readonly string[],
    body: string,
    caller: string,
  ): string {
    const digest = createHash('sha256').update(body).digest('base64url');
    const signed = names.map((n) => [n, signedValue(headers, n)]);
    return createHmac('sha256', secret)
      .update(JSON.stringify(['portcullis hop v3', t, nonce, to, method, target, signed, digest, caller]))
      .digest('base64url');
  }
}

/**
 * Drops from a verified hop's request every header that was not signed (one a proxy between the replicas added), from
 * both `headers` and `rawHeaders` (which the MCP header checks read), so the owner acts on signed headers only.
 */
export function keepSigned(req: IncomingMessage, signed: ReadonlySet<string>): void {
  const keep = (name: string) => signed.has(name) || transportHeaders.has(name);
  for (const name of Object.keys(req.headers)) if (!keep(name)) delete req.headers[name];
  const raw: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) if (keep(req.rawHeaders[i]!.toLowerCase())) raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  req.rawHeaders.splice(0, req.rawHeaders.length, ...raw);
}
