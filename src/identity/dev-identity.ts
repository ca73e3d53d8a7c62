import { createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK, SignJWT } from 'jose';
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import type { IdentityConfig, IssuerConfig } from './config.js';
import { loadOrCreateEd25519Key } from '../crypto/key-file.js';
import { LocalIssuer } from './issuers.js';

/**
 * The embedded dev identity, for the quick start and tests: when no OIDC issuer is configured, the gateway is
 * its own issuer, signing tokens for the users listed in `identity.dev.users` with an Ed25519 key kept in the
 * data directory. Only whoever can read that key (the gateway's own user) can mint tokens, with
 * `portcullis login --dev <user>`; the gateway checks them on the same path as any IdP's tokens.
 */

export const devKeyFile = 'dev-identity-key.pem';
export const devAudience = 'portcullis-dev';

export class DevIdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DevIdentityError';
  }
}

export class DevIdentity {
  readonly issuer: LocalIssuer;
  /**
   * What the console's dev sign-in asks for (it is in the link the gateway prints at start): derived from the key,
   * so only whoever can read the key file (or the gateway's output) can sign in, as with `login --dev`, and the
   * same across restarts. Other users of the machine reach the loopback port, not the key.
   */
  readonly consoleKey: string;

  private constructor(
    private readonly key: KeyObject,
    private readonly kid: string,
    publicJwk: JWK,
    private readonly config: IdentityConfig['dev'],
  ) {
    // The issuer names the key, so tokens of another gateway's dev identity are never mistaken for this one's.
    const issuerConfig: IssuerConfig = {
      issuer: `urn:portcullis:dev-identity:${kid}`,
      audiences: [devAudience],
      algorithms: ['EdDSA'],
      groupsClaim: 'groups',
      scopes: [],
      endpointHosts: [],
    };
    this.issuer = new LocalIssuer(issuerConfig, [publicJwk]);
    this.consoleKey = createHmac('sha256', key.export({ format: 'der', type: 'pkcs8' }))
      .update('portcullis console dev sign-in v1')
      .digest('base64url');
  }

  /** The console link that signs in with the dev identity (the key rides in the fragment, which no request carries). */
  consoleLink(base: string): string {
    return `${base}/sign-in#dev=${this.consoleKey}`;
  }

  static async load(dataDir: string, config: IdentityConfig['dev']): Promise<DevIdentity> {
    const key = loadOrCreateEd25519Key(join(dataDir, devKeyFile), 'the dev identity key');
    const jwk = await exportJWK(createPublicKey(key));
    const kid = (await calculateJwkThumbprint(jwk)).slice(0, 16);
    return new DevIdentity(key, kid, { ...jwk, kid, alg: 'EdDSA', use: 'sig' }, config);
  }

  get users(): string[] {
    return Object.keys(this.config.users);
  }

  /** A signed access token for a configured dev user. */
  async mint(user: string, lifetimeMs = this.config.tokenLifetimeMs): Promise<{ token: string; expiresAtMs: number }> {
    const groups = Object.hasOwn(this.config.users, user) ? this.config.users[user]! : undefined;
    if (groups === undefined) {
      const known = this.users;
      throw new DevIdentityError(
        known.length === 0
          ? `the dev identity has no users; list some under identity.dev.users in the config (name: [groups])`
          : `${JSON.stringify(user)} is not a dev user; the config lists: ${known.join(', ')}`,
      );
    }
    const nowS = Math.floor(Date.now() / 1000);
    const expS = nowS + Math.max(1, Math.floor(lifetimeMs / 1000));
    const token = await new SignJWT({ groups, name: user, email: `${user}@dev.portcullis.local` })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer.config.issuer)
      .setSubject(user)
      .setAudience(devAudience)
      .setIssuedAt(nowS)
      .setExpirationTime(expS)
      .setJti(randomBytes(12).toString('base64url'))
      .sign(this.key);
    return { token, expiresAtMs: expS * 1000 };
  }
}
