import { createHash, randomBytes } from 'node:crypto';
import { EncryptJWT, jwtDecrypt } from 'jose';
import { canonicalJson } from '../protocol/canonical-json.js';
import { paramsWithoutFraming } from '../protocol/envelope.js';

/**
 * The `requestState` of an MRTR round the gateway opens for a modern client (basic/patterns/mrtr.mdx): an AEAD
 * token (JWE, `dir` + A256GCM, under a key that never leaves this process) that binds the round to the principal,
 * the connection, the request (a digest of its params without the framing fields), the gateway instance that holds
 * the upstream request, the round, and an expiry. The client cannot read or alter it; another caller, another
 * request, a later gateway, or an old round cannot use it.
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
  readonly #key = randomBytes(32);

  constructor(
    readonly instance: string,
    private readonly ttlMs: number,
  ) {}

  async seal(claims: RoundClaims): Promise<string> {
    return new EncryptJWT({ ...claims })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setIssuedAt()
      .setExpirationTime(new Date(Date.now() + this.ttlMs))
      .encrypt(this.#key);
  }

  /** The claims of a state this instance sealed and that has not expired; RequestStateError saying why not otherwise. */
  async open(token: string): Promise<RoundClaims> {
    try {
      const { payload } = await jwtDecrypt(token, this.#key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
      return payload as unknown as RoundClaims;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_JWT_EXPIRED') throw new RequestStateError('the requestState has expired: send the request again without it');
      throw new RequestStateError('the requestState was not issued by this gateway or was altered');
    }
  }
}
