import { z } from 'zod';
import { duration, groupList, referenceOnly } from '../core/config-fields.js';
import type { SecretSources } from '../core/secrets.js';
import { isLoopbackHost } from '../net/loopback.js';

/** The identity slice of the config (`identity`), and who may use a connection (a connection's `access`). */

/** Who may use a connection: the groups that may open a session, and narrower groups per tool, prompt or resource. */
export function accessSchema() {
  const narrower = z.record(z.string().min(1), z.array(z.string().min(1)).min(1, 'expected at least one group')).default({});
  return z
    .strictObject({
      /** Groups whose members may open a session; `*` is every signed-in user; empty (the default) is nobody. */
      groups: groupList,
      /** Tool name pattern (`*` wildcards) → the groups that may see and call matching tools. */
      tools: narrower,
      /** Prompt name pattern → the groups that may see and get matching prompts. */
      prompts: narrower,
      /** Resource URI pattern → the groups that may see and read matching resources. */
      resources: narrower,
      /** Groups whose members may approve just-in-time access requests for this connection; none: no requests. */
      approvers: groupList,
      /** The longest just-in-time grant an approver may give. */
      maxGrant: duration('8h'),
    })
    .prefault({});
}

export type AccessConfig = z.output<ReturnType<typeof accessSchema>>;

/** The JWS algorithms an issuer's tokens may use: asymmetric only (a symmetric key would be a shared secret with every verifier). */
export const asymmetricAlgorithms = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/** An issuer URL: https, or http on a loopback host (a local IdP for development and tests). */
function issuerUrl() {
  return z.string().transform((v, ctx) => {
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected the issuer URL exactly as the IdP states it, e.g. https://idp.example.com/realms/main' });
      return z.NEVER;
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      ctx.addIssue({ code: 'custom', message: 'an issuer must use https:// (http:// only on a loopback host)' });
      return z.NEVER;
    }
    if (url.search !== '' || url.hash !== '') {
      ctx.addIssue({ code: 'custom', message: 'an issuer URL has no query or fragment' });
      return z.NEVER;
    }
    return v;
  });
}

function issuerSchema(sources: SecretSources) {
  return z.strictObject({
    /** The `iss` value, exactly; discovery is at <issuer>/.well-known/openid-configuration. */
    issuer: issuerUrl(),
    /** `aud` values accepted besides each connection's own resource URL (RFC 8707). */
    audiences: z.array(z.string().min(1)).default([]),
    algorithms: z.array(z.enum(asymmetricAlgorithms)).min(1).default(['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']),
    /** Where the groups are: `groups`, `cognito:groups`, a dotted path such as `realm_access.roles`. */
    groupsClaim: z.string().min(1).default('groups'),
    /** Portcullis group → the IdP groups that grant it; when set, only these mapped groups count. */
    roles: z.record(z.string().min(1), z.array(z.string().min(1))).optional(),
    /** The public OAuth client `portcullis login` uses (authorization code with PKCE, or device code). */
    clientId: z.string().min(1).optional(),
    scopes: z.array(z.string().min(1)).default(['openid', 'profile', 'email', 'offline_access']),
    /**
     * Hosts besides the issuer's own that its discovery document may name as endpoints (jwks_uri, token endpoint…):
     * `host` (port 443) or `host:port`, e.g. oauth2.googleapis.com for Google. Discovery naming any other host is refused.
     */
    endpointHosts: z
      .array(
        z
          .string()
          .regex(
            /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/,
            'expected a host name, optionally with :port, such as oauth2.googleapis.com (no scheme, no path)',
          ),
      )
      .default([]),
    /**
     * The OAuth client the web console signs in with (authorization code with PKCE; its redirect URI is
     * <publicUrl>/auth/callback): by default `clientId` as a public client; a secret makes it a confidential one.
     */
    console: z
      .strictObject({
        clientId: z.string().min(1).optional(),
        clientSecret: referenceOnly(sources, 'a client secret').optional(),
        /** Shown on the sign-in button. */
        label: z.string().min(1).max(60).optional(),
      })
      .optional(),
  });
}

export type IssuerConfig = z.output<ReturnType<typeof issuerSchema>>;

export function identitySchema(sources: SecretSources) {
  return z
    .strictObject({
      /** External OIDC issuers; with none, the embedded dev identity is on. */
      issuers: z.array(issuerSchema(sources)).default([]),
      /** Tolerance for `exp`, `nbf` and `iat` against this machine's clock. */
      clockSkew: duration('30s').refine((ms) => ms <= 300_000, 'expected at most 5m: a larger skew keeps expired tokens alive'),
      dev: z
        .strictObject({
          /** The embedded dev identity's users: name → groups. */
          users: z.record(z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'expected 1-64 letters, digits, ".", "_", "@" or "-"'), groupList).default({}),
          /** Dev identity is refused on a non-loopback listen address unless this is true. */
          allowNonLoopback: z.boolean().default(false),
          tokenLifetime: duration('8h'),
        })
        .prefault({})
        .transform(({ tokenLifetime, ...rest }) => ({ ...rest, tokenLifetimeMs: tokenLifetime })),
    })
    .prefault({})
    .transform(({ clockSkew, ...rest }) => ({ ...rest, clockSkewMs: clockSkew }));
}

export type IdentityConfig = z.output<ReturnType<typeof identitySchema>>;
