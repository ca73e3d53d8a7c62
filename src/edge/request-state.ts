import { createHash } from 'node:crypto';
import { EncryptJWT, jwtDecrypt } from 'jose';
import type { KeyRing } from '../cluster/token-keys.js';
import { canonicalJson } from '../protocol/canonical-json.js';
import { paramsWithoutFraming } from '../protocol/envelope.js';

/**
 * The `requestState` of an MRTR round the gateway opens for a modern client (basic/patterns/mrtr.mdx): an AEAD
 * token (JWE, `dir` + A256GCM, under the replicas' shared token key, src/cluster/token-keys.ts) that binds the round to
 * the principal, the connection, the request (a digest of its params without the framing fields), the gateway instance
 * that holds the upstream request, the round, and an expiry. The client cannot read or alter it; another caller,
 * another request, or an old round cannot use it; a retry that lands on another replica is forwarded to the instance it
 * names (src/cluster/hop.ts).
 */

export interface RoundClaims {
  /** Issuer and subject of the principal, canonical. */
  principal: string;
  connection: string;
  /** The request's method and params digest. */
  digest: string;
  instance: string;
  /** The round's id in the instance's table of open rounds. */
  round: string;
  /** Round number within the exchange, from 1. */
  n: number;
}

export class RequestStateError extends Error {}

export function requestDigest(method: string, params: Record<string, unknown> | undefined): string {
  return createHash('sha256')
    .update(canonicalJson([method, paramsWithoutFraming(params)]))
    .digest('base64url');
}

export function principalOf(identity: { issuer: string; subject: string }): string {
  return canonicalJson([identity.issuer, identity.subject]);
}

export class RequestStateSealer {
  constructor(
    readonly instance: string,
    private readonly ttlMs: number,
    /** The shared keys: the first seals, any opens (rotation). */
    private readonly keys: KeyRing,
  ) {}

  async seal(claims: RoundClaims): Promise<string> {
    return new EncryptJWT({ ...claims })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: this.keys.current.kid })
      .setIssuedAt()
      .setExpirationTime(new Date(Date.now() + this.ttlMs))
      .encrypt(this.keys.current.key);
  }

  /** The claims of a state a replica sharing the key sealed and that has not expired; RequestStateError saying why not otherwise. */
  async open(token: string): Promise<RoundClaims> {
    try {
      const key = (header: { kid?: unknown }) => {
        const found = this.keys.byKid(header.kid);
        if (found === undefined) throw new RequestStateError('unknown key');
        return found.key;
      };
      const { payload } = await jwtDecrypt(token, key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
      return payload as unknown as RoundClaims;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_JWT_EXPIRED') throw new RequestStateError('the requestState has expired: send the request again without it');
      throw new RequestStateError('the requestState was not issued by this gateway or was altered');
    }
  }
}
