import { createLocalJWKSet, createRemoteJWKSet, errors, type JWK, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import type { IssuerConfig } from './config.js';
import { AuthError } from './auth-error.js';
import { discover, type IssuerMetadata } from './discovery.js';

/** An issuer whose tokens the gateway accepts: its settings and where its signing keys come from. */
export interface TrustedIssuer {
  readonly config: IssuerConfig;
  /** Whether clients can sign in with it (an OAuth authorization server to name in the metadata). */
  readonly authorizationServer: boolean;
  /** jose's key lookup for a token's protected header. */
  readonly getKey: JWTVerifyGetKey;
  /** Its discovery metadata (for the protected resource metadata and `portcullis login`), when known. */
  metadata(): Promise<IssuerMetadata | undefined>;
}

export interface RemoteIssuerTimings {
  /** How long to wait before trying discovery again after it failed. */
  discoveryRetryMs?: number;
  /** The least time between two JWKS fetches, however many unknown `kid`s arrive (jose's cooldown). */
  jwksCooldownMs?: number;
  /** How long fetched keys are used before the JWKS is fetched again. */
  jwksMaxAgeMs?: number;
}

/**
 * An external OIDC issuer: metadata by discovery, keys from its JWKS through jose's remote key set, which
 * caches them, refetches when a token names an unknown `kid` (so rotation just works), and refetches at most
 * once per cooldown (so a flood of made-up `kid`s costs the IdP nothing).
 */
export class RemoteIssuer implements TrustedIssuer {
  readonly authorizationServer = true;
  #metadata: Promise<IssuerMetadata> | undefined;
  #jwks: JWTVerifyGetKey | undefined;
  #failedAt = -Infinity;
  #lastFailure = '';
  readonly #timings: Required<RemoteIssuerTimings>;

  constructor(
    readonly config: IssuerConfig,
    private readonly log: Logger,
    timings: RemoteIssuerTimings = {},
  ) {
    this.#timings = { discoveryRetryMs: 10_000, jwksCooldownMs: 30_000, jwksMaxAgeMs: 600_000, ...timings };
  }

  #jwksFailedAt = -Infinity;

  /**
   * The key for a token. A JWKS that cannot be fetched (timeout, an error status, not a key set) is the IdP's
   * trouble, not the token's: 503, and no new fetch for a while, so that a flood of tokens is not a flood of
   * fetches at an IdP that is already struggling.
   */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const unavailable = () => new AuthError(503, 'temporarily_unavailable', `the signing keys of ${this.config.issuer} cannot be fetched now`);
    if (Date.now() - this.#jwksFailedAt < this.#timings.discoveryRetryMs) throw unavailable();
    const keys = await this.#keySet();
    try {
      return await keys(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSEAlgNotAllowed) throw err;
      this.#jwksFailedAt = Date.now();
      this.log.warn({ issuer: this.config.issuer, err: (err as Error).message }, 'the JWKS could not be fetched');
      throw unavailable();
    }
  };

  async metadata(): Promise<IssuerMetadata | undefined> {
    try {
      return await this.#discover();
    } catch {
      return undefined;
    }
  }

  #discover(): Promise<IssuerMetadata> {
    if (this.#metadata !== undefined) return this.#metadata;
    if (Date.now() - this.#failedAt < this.#timings.discoveryRetryMs) {
      return Promise.reject(new AuthError(503, 'temporarily_unavailable', `tokens from ${this.config.issuer} cannot be checked now: ${this.#lastFailure}`));
    }
    this.#metadata = discover(this.config.issuer, { endpointHosts: this.config.endpointHosts }).catch((err: unknown) => {
      this.#metadata = undefined;
      this.#failedAt = Date.now();
      this.#lastFailure = (err as Error).message;
      this.log.warn({ issuer: this.config.issuer, err: this.#lastFailure }, 'OIDC discovery failed');
      throw new AuthError(503, 'temporarily_unavailable', `tokens from ${this.config.issuer} cannot be checked now: ${this.#lastFailure}`);
    });
    return this.#metadata;
  }

  async #keySet(): Promise<JWTVerifyGetKey> {
    if (this.#jwks !== undefined) return this.#jwks;
    const metadata = await this.#discover();
    this.#jwks ??= createRemoteJWKSet(new URL(metadata.jwks_uri), {
      cooldownDuration: this.#timings.jwksCooldownMs,
      cacheMaxAge: this.#timings.jwksMaxAgeMs,
      timeoutDuration: 5000,
    });
    return this.#jwks;
  }
}

/** An issuer whose keys are known locally (the embedded dev identity). */
export class LocalIssuer implements TrustedIssuer {
  /** It only signs tokens (`portcullis login --dev`): no client can sign in with it. */
  readonly authorizationServer = false;
  readonly getKey: JWTVerifyGetKey;

  constructor(
    readonly config: IssuerConfig,
    keys: JWK[],
  ) {
    this.getKey = createLocalJWKSet({ keys });
  }

  async metadata(): Promise<IssuerMetadata | undefined> {
    return undefined;
  }
}
