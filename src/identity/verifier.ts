import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Identity } from '../core/identity.js';
import { AuthError } from './auth-error.js';
import { idpGroups, mapRoles } from './claims.js';
import type { TrustedIssuer } from './issuers.js';

/** A token that passed every check but the audience, which depends on the resource it is presented to. */
export interface VerifiedToken {
  identity: Identity;
  /** The token's `aud` values. */
  audiences: readonly string[];
  /** `aud` values its issuer is configured to accept anywhere (besides each resource's own URL). */
  issuerAudiences: readonly string[];
  expiresAtMs: number;
  /** Why the groups claim gave no groups although present (malformed), for the recording. */
  groupsProblem?: string;
}

/** Whether the token is meant for one of `resources` (RFC 8707) or for an audience its issuer is trusted with. */
export function audienceMatches(token: VerifiedToken, resources: readonly string[]): boolean {
  return token.audiences.some((a) => token.issuerAudiences.includes(a) || resources.includes(a));
}

const maxTokenLength = 16 * 1024;
const maxKidLength = 256;

export interface TokenVerifierOptions {
  issuers: TrustedIssuer[];
  clockSkewMs: number;
  /** How long a verified token is reused without checking its signature again (never past its `exp`). */
  cacheTtlMs?: number;
  cacheSize?: number;
}

/** What jose's failures mean, in words for the caller. */
function explain(err: unknown, issuer: string): AuthError {
  if (err instanceof AuthError) return err;
  if (err instanceof errors.JWTExpired) return new AuthError(401, 'invalid_token', 'the token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return new AuthError(401, 'invalid_token', 'the token is not valid yet (nbf is in the future)');
    if (err.reason === 'missing') return new AuthError(401, 'invalid_token', `the token has no '${err.claim}' claim`);
    return new AuthError(401, 'invalid_token', `the token's '${err.claim}' claim is not acceptable`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new AuthError(401, 'invalid_token', `the token's signing algorithm is not allowed for ${issuer}`);
  if (err instanceof errors.JWKSNoMatchingKey) return new AuthError(401, 'invalid_token', `no signing key of ${issuer} matches the token's kid`);
  if (err instanceof errors.JWKSMultipleMatchingKeys) return new AuthError(401, 'invalid_token', `the token's kid matches several keys of ${issuer}`);
  if (err instanceof errors.JWSSignatureVerificationFailed) return new AuthError(401, 'invalid_token', 'the token signature is not valid');
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) {
    return new AuthError(503, 'temporarily_unavailable', `the signing keys of ${issuer} cannot be fetched now`);
  }
  if (err instanceof errors.JOSEError) return new AuthError(401, 'invalid_token', `the token is not valid (${err.code})`);
  if (err instanceof TypeError || (err as Error).name === 'TypeError') {
    return new AuthError(503, 'temporarily_unavailable', `the signing keys of ${issuer} cannot be fetched now`);
  }
  return new AuthError(401, 'invalid_token', 'the token is not valid');
}

/**
 * Checks bearer JWTs from the configured issuers: signature with the issuer's keys, `iss`, `exp` (required),
 * `nbf`, `sub`, the algorithm allow-list, and a clock skew. The audience is checked by the caller against the
 * resource the token is used for (audienceMatches). A verified token is cached briefly, keyed by its text,
 * so that a session's every request does not pay for a signature check.
 */
export class TokenVerifier {
  readonly #issuers: Map<string, TrustedIssuer>;
  readonly #cache = new Map<string, { token: VerifiedToken; until: number }>();
  readonly #skewMs: number;
  readonly #cacheTtlMs: number;
  readonly #cacheSize: number;

  constructor(options: TokenVerifierOptions) {
    this.#issuers = new Map(options.issuers.map((i) => [i.config.issuer, i]));
    this.#skewMs = options.clockSkewMs;
    this.#cacheTtlMs = options.cacheTtlMs ?? 60_000;
    this.#cacheSize = options.cacheSize ?? 10_000;
  }

  get issuers(): TrustedIssuer[] {
    return [...this.#issuers.values()];
  }

  /** Whether `token` was verified lately and is still good: checking it again costs a lookup, not a signature. */
  knows(token: string): boolean {
    const cached = this.#cache.get(token);
    const now = Date.now();
    return cached !== undefined && now < cached.until && now <= cached.token.expiresAtMs + this.#skewMs;
  }

  async verify(token: string): Promise<VerifiedToken> {
    const now = Date.now();
    const cached = this.#cache.get(token);
    if (cached !== undefined) {
      if (now < cached.until && now <= cached.token.expiresAtMs + this.#skewMs) return cached.token;
      this.#cache.delete(token);
    }
    const verified = await this.#verify(token);
    if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(token, { token: verified, until: now + this.#cacheTtlMs });
    return verified;
  }

  async #verify(token: string): Promise<VerifiedToken> {
    if (token.length > maxTokenLength) throw new AuthError(401, 'invalid_token', `the token is longer than ${maxTokenLength} characters`);
    let claims: JWTPayload;
    let kid: unknown;
    try {
      claims = decodeJwt(token);
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw new AuthError(401, 'invalid_token', 'the token is not a well-formed JWT');
    }
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > maxKidLength)) {
      throw new AuthError(401, 'invalid_token', 'the token has a malformed kid');
    }
    const issuer = typeof claims.iss === 'string' ? this.#issuers.get(claims.iss) : undefined;
    if (issuer === undefined) {
      throw new AuthError(
        401,
        'invalid_token',
        typeof claims.iss === 'string'
          ? `the token's issuer '${claims.iss.slice(0, 200).replace(/[^\x20-\x7e]|'/g, '?')}' is not trusted`
          : "the token has no 'iss' claim",
      );
    }
    const config = issuer.config;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, issuer.getKey, {
        issuer: config.issuer,
        algorithms: config.algorithms,
        clockTolerance: Math.round(this.#skewMs / 1000),
        requiredClaims: ['exp', 'sub', 'aud'],
      }));
    } catch (err) {
      throw explain(err, config.issuer);
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 255) {
      throw new AuthError(401, 'invalid_token', "the token's 'sub' claim is not a subject");
    }
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    const groups = idpGroups(payload, config.groupsClaim);
    const identity: Identity = {
      subject: payload.sub,
      issuer: config.issuer,
      groups: mapRoles(groups.groups, config.roles),
      ...(typeof payload.email === 'string' ? { email: payload.email } : {}),
      ...(typeof payload.name === 'string'
        ? { name: payload.name }
        : typeof payload.preferred_username === 'string'
          ? { name: payload.preferred_username }
          : {}),
    };
    return {
      identity,
      audiences,
      issuerAudiences: config.audiences,
      expiresAtMs: payload.exp! * 1000,
      ...(groups.problem ? { groupsProblem: groups.problem } : {}),
    };
  }
}
