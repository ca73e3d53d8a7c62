import { createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { selectDetectors } from '../masking/catalog.js';
import { isLoopbackHost } from '../net/loopback.js';
import { CustomDetectorError, customRegexDetector, JsonPathRule } from '../masking/custom.js';
import { defaultFieldWords } from '../masking/fields.js';
import { compileCondition, type Condition, ConditionError } from '../policy/cel.js';
import type { MaskingConfig, MaskingRule } from '../masking/config.js';
import type { GuardrailDefaults, ReviewPolicy, RuleConfig } from '../policy/config.js';
import { parseDuration, parseSize } from './duration.js';
import { resolveSecretString, SecretReferenceError, type SecretSources, SecretString } from './secrets.js';

/**
 * The config file's schema. Parsing turns the YAML as written into a resolved GatewayConfig: durations
 * in ms, sizes in bytes, secret references resolved into SecretStrings. Every object is strict so that a
 * misspelt key is an error rather than a silently ignored setting.
 */

const connectionName = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** Header and variable names whose values are credentials: they must come from a reference. */
const credentialName = /authorization|cookie|token|secret|password|passwd|api[-_]?key|credential|private[-_]?key/i;

function duration(fallback: string) {
  return z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected a duration such as 30s, 15m or 1h, found ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      return ms;
    });
}

/** A duration, or `off` (undefined): for waits a deployment may turn off. */
function durationOrOff(fallback: string) {
  return z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => {
      if (v === 'off') return undefined;
      const ms = parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected a duration such as 1s or 5m, or off, found ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      return ms;
    });
}

function size(fallback: string) {
  return z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => {
      const bytes = parseSize(v);
      if (bytes === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected a size such as 16MiB or 512KiB, found ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      return bytes;
    });
}

/** A size without a default: a per-connection override that otherwise falls back to the gateway-wide value. */
function sizeValue() {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a size such as 16MiB or 512KiB, found ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return bytes;
  });
}

/** A map whose values are secret strings; a credential-looking key with a literal value is refused. */
function secretMap(sources: SecretSources, what: string) {
  return z
    .record(z.string().min(1), z.string())
    .default({})
    .transform((raw, ctx) => {
      const out: Record<string, SecretString> = {};
      for (const [key, template] of Object.entries(raw)) {
        try {
          const s = resolveSecretString(template, sources);
          if (credentialName.test(key) && !s.hasReferences && template.length > 0) {
            ctx.addIssue({
              code: 'custom',
              path: [key],
              message: `this ${what} looks like a credential, so its value must be a reference such as \${env:NAME} or \${file:PATH}, not a literal`,
            });
          }
          out[key] = s;
        } catch (err) {
          if (!(err instanceof SecretReferenceError)) throw err;
          ctx.addIssue({ code: 'custom', path: [key], message: err.message });
        }
      }
      return out;
    });
}

function secretList(sources: SecretSources) {
  return z
    .array(z.string())
    .default([])
    .transform((raw, ctx) =>
      raw.map((template, i) => {
        try {
          return resolveSecretString(template, sources);
        } catch (err) {
          if (!(err instanceof SecretReferenceError)) throw err;
          ctx.addIssue({ code: 'custom', path: [i], message: err.message });
          return new SecretString(template, '', false);
        }
      }),
    );
}

function upstreamUrl(sources: SecretSources) {
  return z.string().transform((template, ctx) => {
    try {
      const s = resolveSecretString(template, sources);
      const url = new URL(s.reveal());
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        ctx.addIssue({ code: 'custom', message: `expected an http:// or https:// URL, found ${url.protocol}` });
        return z.NEVER;
      }
      return s;
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        message: err instanceof SecretReferenceError ? err.message : `expected an absolute http(s) URL such as http://127.0.0.1:3001/mcp`,
      });
      return z.NEVER;
    }
  });
}

const namePatterns = z.array(z.string().min(1)).optional();

/** The store URL: `sqlite:PATH` or `postgres://…`, where a password may only come from a reference. */
function storeUrl(sources: SecretSources) {
  return z
    .string()
    .optional()
    .transform((template, ctx) => {
      if (template === undefined) return undefined;
      let s: SecretString;
      try {
        s = resolveSecretString(template, sources);
      } catch (err) {
        if (!(err instanceof SecretReferenceError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
      const value = s.reveal();
      if (value.startsWith('sqlite:')) {
        if (value.length === 'sqlite:'.length) ctx.addIssue({ code: 'custom', message: 'sqlite: needs a file path, e.g. sqlite:./data/portcullis.db' });
        return s;
      }
      let url: URL | undefined;
      try {
        url = /^postgres(ql)?:\/\//.test(value) ? new URL(value) : undefined;
      } catch {
        url = undefined;
      }
      if (url === undefined || (url.hostname === '' && url.pathname.length <= 1)) {
        ctx.addIssue({ code: 'custom', message: 'expected sqlite:PATH or postgres://USER@HOST:PORT/DB (a password only as a reference: postgres://user:${env:PGPASSWORD}@host/db)' });
        return z.NEVER;
      }
      if (url.password !== '' && !s.hasReferences) {
        ctx.addIssue({ code: 'custom', message: 'the password in the store URL must be a reference such as ${env:PGPASSWORD}, not a literal' });
        return z.NEVER;
      }
      return s;
    });
}

/** A credential that must come from a reference (`${env:…}` or `${file:…}`), never a literal in the file. */
function referenceOnly(sources: SecretSources, what: string) {
  return z.string().transform((template, ctx) => {
    try {
      const s = resolveSecretString(template, sources);
      if (!s.hasReferences) {
        ctx.addIssue({ code: 'custom', message: `${what} must be a reference such as \${file:/run/secrets/…} or \${env:NAME}, not a literal` });
        return z.NEVER;
      }
      return s;
    } catch (err) {
      if (!(err instanceof SecretReferenceError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  });
}

/** Public keys given as PEM text or references to PEM files; each must parse as an Ed25519 public key. */
function publicKeys(list: string[], sources: SecretSources, ctx: z.RefinementCtx): string[] {
  const out: string[] = [];
  list.forEach((template, i) => {
    try {
      const pem = resolveSecretString(template, sources).reveal();
      const key = createPublicKey(pem);
      if (key.asymmetricKeyType !== 'ed25519') {
        ctx.addIssue({ code: 'custom', path: [i], message: `expected an Ed25519 public key, found ${key.asymmetricKeyType ?? 'another kind of key'}` });
        return;
      }
      out.push(key.export({ type: 'spki', format: 'pem' }).toString());
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [i], message: err instanceof SecretReferenceError ? err.message : 'expected an Ed25519 public key in PEM form (-----BEGIN PUBLIC KEY-----)' });
    }
  });
  return out;
}

const groupList = z.array(z.string().min(1, 'expected a group name')).default([]);

/** Who may use a connection: the groups that may open a session, and narrower groups per tool, prompt or resource. */
function accessSchema() {
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
      .array(z.string().regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/, 'expected a host name, optionally with :port, such as oauth2.googleapis.com (no scheme, no path)'))
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

/** How masking replaces a match: `redact`, `hash`, or `{ keepLast: N }`. */
const replacement = z
  .union([z.enum(['redact', 'hash']), z.strictObject({ keepLast: z.number().int().min(1).max(8) })])
  .transform((r) => (typeof r === 'string' ? { kind: r } : { kind: 'keep-last' as const, count: r.keepLast }));

/** Every detector or family name in `detectors` and `exclude`, gateway-wide and per connection, must exist: built in or custom. */
function checkMaskingNames(c: { masking?: unknown; connections?: unknown }, ctx: z.RefinementCtx): void {
  type Masking = { detectors?: unknown; exclude?: unknown; custom?: unknown } | undefined;
  const customNames = (m: Masking) => (Array.isArray(m?.custom) ? m.custom.map((x: { name?: unknown }) => x?.name).filter((n): n is string => typeof n === 'string') : []);
  const connections = c.connections !== null && typeof c.connections === 'object' ? Object.entries(c.connections as Record<string, { masking?: Masking }>) : [];
  const known = new Set(['custom', ...customNames(c.masking as Masking), ...connections.flatMap(([, conn]) => customNames(conn?.masking))]);
  const check = (m: Masking, at: Array<string | number>) => {
    for (const key of ['detectors', 'exclude'] as const) {
      const names = m?.[key];
      if (!Array.isArray(names)) continue;
      names.forEach((name, i) => {
        if (typeof name !== 'string' || known.has(name) || selectDetectors([name]).unknown.length === 0) return;
        ctx.addIssue({ code: 'custom', path: [...at, key, i], message: `there is no detector or family named ${JSON.stringify(name)}; see docs/masking.md for the list` });
      });
    }
  };
  check(c.masking as Masking, ['masking']);
  const rules = (c.masking as { rules?: unknown } | undefined)?.rules;
  if (Array.isArray(rules)) rules.forEach((r, i) => check(r as Masking, ['masking', 'rules', i]));
  for (const [name, conn] of connections) check(conn?.masking, ['connections', name, 'masking']);
}

/** A custom detector: compiled here, so a pattern RE2 refuses or a malformed path is a config error naming it. */
function customDetectorSchema() {
  const name = z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a name of lower-case letters, digits and -, e.g. employee-id')
    .refine((n) => selectDetectors([n]).unknown.length > 0 && n !== 'secrets' && n !== 'pii' && n !== 'field-rule', 'this name is a built-in detector or family; choose another');
  return z
    .union([
      z.strictObject({ name, regex: z.string().min(1), ignoreCase: z.boolean().default(false) }),
      z.strictObject({ name, jsonPath: z.string().min(1) }),
    ])
    .superRefine((c, ctx) => {
      try {
        if ('regex' in c) customRegexDetector(c);
        else new JsonPathRule(c.name, c.jsonPath);
      } catch (err) {
        if (!(err instanceof CustomDetectorError)) throw err;
        ctx.addIssue({ code: 'custom', path: ['regex' in c ? 'regex' : 'jsonPath'], message: err.message });
      }
    });
}

/** Masking settings; on a connection, each key given replaces the gateway-wide one. */
function maskingSchema(withDefaults: boolean) {
  // Names are checked against the built-ins and the custom detectors once the whole config is read (checkMaskingNames).
  const detectorNames = z.array(z.string().min(1));
  const shape = {
    /** Detectors by name or family, or the categories `secrets` and `pii` (their default-on members). */
    detectors: detectorNames,
    /** Detectors or families turned off. */
    exclude: detectorNames,
    /** JSON keys (by their ending word) whose values are masked whatever they hold; [] turns field rules off. */
    fields: z.array(z.string().min(1)),
    replace: replacement,
    /** Exact values never masked (documentation examples such as AKIAIOSFODNN7EXAMPLE). */
    allow: z.array(z.string().min(1)),
    enabled: z.boolean(),
    /** The operator's own detectors: a regex (RE2 syntax, linear time) or a JSON path whose value is masked. */
    custom: z.array(customDetectorSchema()),
    /** Also mask what clients send (tool arguments) in the recording; the server still receives it whole. */
    recordArguments: z.boolean(),
    /** Base64 decoded per message to look inside (text runs, resource blobs); a message with more is withheld. */
    maxDecodedSize: sizeValue(),
  };
  if (!withDefaults) return z.strictObject(shape).partial().optional();
  /** Masking for some callers: the keys a rule gives replace the connection's, for members of its groups. */
  const rule = z.strictObject({
    groups: z.array(z.string().min(1)).min(1, 'expected the groups the rule applies to (["*"] for everyone)'),
    connections: z.array(z.string().min(1)).optional(),
    detectors: shape.detectors.optional(),
    exclude: shape.exclude.optional(),
    fields: shape.fields.optional(),
    replace: replacement.optional(),
    enabled: shape.enabled.optional(),
  });
  return z
    .strictObject({
      detectors: shape.detectors.default(['secrets', 'pii']),
      exclude: shape.exclude.default([]),
      fields: shape.fields.default(defaultFieldWords),
      replace: replacement.default({ kind: 'redact' }),
      allow: shape.allow.default([]),
      enabled: shape.enabled.default(true),
      custom: shape.custom.default([]),
      recordArguments: shape.recordArguments.default(false),
      maxDecodedSize: size('16MiB'),
      /** Per caller group (and optionally per connection): later rules win over earlier ones. */
      rules: z.array(rule).default([]),
    })
    .prefault({});
}

function identitySchema(sources: SecretSources) {
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
        .prefault({}),
    })
    .prefault({});
}

const groupNames = z.array(z.string().min(1)).min(1, 'expected at least one group');

/** How a review waits: who approves, how many must, and for how long before it is rejected. */
const reviewFields = {
  /** Groups whose members may approve or reject (never the caller themselves). */
  approvers: groupNames.optional(),
  /** Distinct approvals needed. */
  approvals: z.number().int().min(1).max(10).default(1),
  /** Unanswered for this long, the call is rejected; default: reviews.timeout. */
  timeout: z.union([z.string(), z.number()]).optional(),
};

/** A review needs approvers; a message belongs to deny. */
function checkAction(r: { action: string; approvers?: unknown; message?: unknown; notify?: unknown }, ctx: z.RefinementCtx): void {
  if (r.action === 'review' && r.approvers === undefined) ctx.addIssue({ code: 'custom', path: ['approvers'], message: 'a review needs approvers: the groups whose members may approve the call' });
  if (r.action !== 'review' && r.approvers !== undefined) ctx.addIssue({ code: 'custom', path: ['approvers'], message: `approvers belong to action: review, not ${r.action}` });
  if (r.action !== 'review' && r.notify !== undefined) ctx.addIssue({ code: 'custom', path: ['notify'], message: `notify belongs to action: review, not ${r.action}` });
}

/** The longest a call may be held (a timer beyond 24.8 days would overflow). */
const maxReviewMs = 7 * 24 * 3_600_000;

function timeoutMs(v: string | number | undefined, ctx: z.RefinementCtx): number | undefined {
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined || ms < 1000 || ms > maxReviewMs) {
    ctx.addIssue({ code: 'custom', path: ['timeout'], message: `expected a duration from 1s to 7d such as 15m or 1h, found ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return ms;
}

/** Webhook names, checked against notifications.webhooks once the whole config is read (checkWebhookNames). */
const webhookNames = z.array(z.string().min(1));

export const reviewEvents = ['review.created', 'review.decided'] as const;

/** Webhooks told of reviews: generic JSON or Slack's payload, signed when they have a secret. */
function notificationsSchema(sources: SecretSources) {
  const webhook = z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a webhook name is 1-64 letters, digits, ".", "_" or "-"'),
    /** May hold references (a Slack webhook URL is itself a credential). */
    url: upstreamUrl(sources),
    format: z.enum(['json', 'slack']).default('json'),
    /** The HMAC-SHA256 key of x-portcullis-signature. */
    secret: referenceOnly(sources, 'a webhook secret').optional(),
    events: z.array(z.enum(reviewEvents)).min(1).default([...reviewEvents]),
  });
  return z
    .strictObject({
      webhooks: z
        .array(webhook)
        .default([])
        .superRefine((webhooks, ctx) => {
          const seen = new Set<string>();
          webhooks.forEach((w, i) => {
            if (seen.has(w.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `two webhooks are named ${JSON.stringify(w.name)}; rules name them and they must be unique` });
            seen.add(w.name);
          });
        }),
    })
    .prefault({});
}

/** Every webhook `reviews.notify` or a rule's `notify` names must be in notifications.webhooks. */
function checkWebhookNames(c: { notifications?: unknown; reviews?: unknown; rules?: unknown }, ctx: z.RefinementCtx): void {
  const webhooks = (c.notifications as { webhooks?: unknown } | undefined)?.webhooks;
  const known = new Set(Array.isArray(webhooks) ? webhooks.map((w: { name?: unknown }) => w?.name).filter((n): n is string => typeof n === 'string') : []);
  const expected = known.size === 0 ? 'notifications.webhooks configures none' : `notifications.webhooks has ${[...known].join(', ')}`;
  const check = (names: unknown, at: Array<string | number>) => {
    if (!Array.isArray(names)) return;
    names.forEach((name, i) => {
      if (typeof name === 'string' && !known.has(name)) ctx.addIssue({ code: 'custom', path: [...at, i], message: `there is no webhook named ${JSON.stringify(name)}; ${expected}` });
    });
  };
  check((c.reviews as { notify?: unknown } | undefined)?.notify, ['reviews', 'notify']);
  if (Array.isArray(c.rules)) c.rules.forEach((r: { notify?: unknown } | undefined, i) => check(r?.notify, ['rules', i, 'notify']));
}

/** One guardrail rule: a CEL condition over the request, compiled now so a typo stops the gateway at start. */
function ruleSchema() {
  return z
    .strictObject({
      name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a rule name is 1-64 letters, digits, ".", "_" or "-"'),
      /** CEL over identity, connection, method, tool, arguments, resource, prompt, params (docs/guardrails.md). */
      when: z.string().min(1, 'expected a CEL condition, e.g. tool.name.startsWith("delete_")'),
      action: z.enum(['allow', 'deny', 'review']),
      /** deny: what the client is told. */
      message: z.string().min(1).max(1000).optional(),
      ...reviewFields,
      /** review: the webhooks told of its reviews, instead of reviews.notify. */
      notify: webhookNames.optional(),
    })
    .superRefine(checkAction)
    .transform((r, ctx) => {
      let condition: Condition;
      try {
        condition = compileCondition(r.when);
      } catch (err) {
        if (!(err instanceof ConditionError)) throw err;
        ctx.addIssue({ code: 'custom', path: ['when'], message: `rule ${JSON.stringify(r.name)} does not compile: ${err.message}` });
        return z.NEVER;
      }
      const timeout = timeoutMs(r.timeout, ctx);
      const { timeout: _t, ...rest } = r;
      return { ...rest, condition, ...(timeout === undefined ? {} : { timeoutMs: timeout }) };
    });
}

/** A connection's guardrail defaults: what happens to a call no rule decides. */
function guardrailsSchema() {
  return z
    .strictObject({
      /** For tools/call, prompts/get, resources/read and subscribe, completion/complete that no rule matched. */
      default: z.enum(['allow', 'deny', 'review']).default('allow'),
      message: z.string().min(1).max(1000).optional(),
      ...reviewFields,
    })
    .superRefine((g, ctx) => checkAction({ ...g, action: g.default }, ctx))
    .transform((g, ctx) => {
      const timeout = timeoutMs(g.timeout, ctx);
      const { timeout: _t, ...rest } = g;
      return { ...rest, ...(timeout === undefined ? {} : { timeoutMs: timeout }) };
    })
    .prefault({});
}

/** How a server is reached: a process over stdio, or a URL (Streamable HTTP or legacy SSE). Shared with the agent's config. */
export function upstreamSchemas(sources: SecretSources) {
  const stdio = z.strictObject({
    command: z.string().min(1, 'expected the program to run, e.g. node or npx'),
    args: secretList(sources),
    env: secretMap(sources, 'environment variable'),
    /**
     * Variables passed through from the environment of the process that starts the server (the agent's, e.g. an
     * instance role's AWS_* credentials), by name or by a prefix ending in `*`. Nothing else of it is passed.
     */
    passEnv: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*\*?$/, 'expected an environment variable name, or a prefix ending in * such as AWS_*')).default([]),
    cwd: z.string().min(1).optional(),
  });
  const http = z.strictObject({
    url: upstreamUrl(sources),
    headers: secretMap(sources, 'header'),
  });
  return { stdio, http };
}

type ParsedUpstreams = { stdio?: z.output<ReturnType<typeof upstreamSchemas>['stdio']>; http?: z.output<ReturnType<typeof upstreamSchemas>['http']>; sse?: z.output<ReturnType<typeof upstreamSchemas>['http']>; agent?: string };

/** The upstream a parsed connection names (exactly one of its kinds is present, as checked by `oneUpstream`). */
export function upstreamOf(c: ParsedUpstreams): UpstreamConfig {
  if (c.stdio) return { kind: 'stdio', command: c.stdio.command, args: c.stdio.args, env: c.stdio.env, passEnv: c.stdio.passEnv, ...(c.stdio.cwd ? { cwd: c.stdio.cwd } : {}) };
  if (c.http) return { kind: 'http', url: c.http.url, headers: c.http.headers };
  if (c.sse) return { kind: 'sse', url: c.sse.url, headers: c.sse.headers };
  return { kind: 'agent', agent: c.agent! };
}

/** Exactly one upstream kind of those allowed. */
export function oneUpstream(kinds: readonly string[]) {
  return (c: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const present = kinds.filter((k) => c[k] !== undefined);
    if (present.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: present.length === 0 ? `a connection needs exactly one upstream: ${kinds.join(', ')}` : `a connection has exactly one upstream, found ${present.join(' and ')}`,
      });
    }
  };
}

/** A rate with bursts: `{ perSecond: 100, burst: 500 }`. */
function rateSchema(perSecond: number, burst: number) {
  return z
    .strictObject({
      /** Sustained events per second (fractions allowed: 0.2 is one every 5 s). */
      perSecond: z.number().positive().max(1_000_000).default(perSecond),
      /** How many may come at once above the sustained rate. */
      burst: z.number().int().min(1).max(10_000_000).default(burst),
    })
    .prefault({});
}

/** A count limit: a whole number from 1 (there is no "unlimited": to lift a limit, set a large number). */
const countLimit = z.number().int().min(1).max(10_000_000);

/** Every connection's limits unless it gives its own (`limits.connection`; docs/security.md, Limits). */
function connectionLimitDefaults() {
  return z
    .strictObject({
      /** Live sessions on the connection, all principals together. */
      sessions: countLimit.default(1024),
      /** Live server processes of a stdio connection (one per session). */
      stdioProcesses: countLimit.default(64),
      /** Client requests waiting for their answer on the connection, all principals together. */
      requestsInFlight: countLimit.default(1024),
    })
    .prefault({});
}

/** A connection's own limits: the keys given replace `limits.connection`'s; per tool rates exist only here. */
function connectionLimitsSchema() {
  return z
    .strictObject({
      sessions: countLimit.optional(),
      stdioProcesses: countLimit.optional(),
      requestsInFlight: countLimit.optional(),
      /** Tool name pattern (`*` wildcards) → the rate each principal may call the matching tools at (one bucket per pattern). */
      tools: z.record(z.string().min(1), rateSchema(1, 10)).default({}),
    })
    .prefault({});
}

function limitsSchema() {
  return z
    .strictObject({
      maxMessageSize: size('16MiB'),
      /** Bytes on their way to one session's client, unread, above which the gateway stops reading its server. */
      clientBacklog: size('8MiB').refine((bytes) => bytes >= 64 * 1024, 'expected at least 64KiB'),
      /** How long a session's server may stay paused for a client that does not catch up before the session ends. */
      slowClientTimeout: duration('60s').refine((ms) => ms >= 1000, 'expected at least 1s'),
      /**
       * At a session limit, the least recently used session quiet this long (nothing pending, no client stream open)
       * is closed to make room instead of the new one being refused; `off` refuses.
       */
      reclaimIdleAfter: durationOrOff('1s'),
      /** Each principal (issuer + subject), on this gateway. */
      principal: z
        .strictObject({
          sessions: countLimit.default(64),
          /** Live server processes of stdio connections started for the principal (one per session). */
          stdioProcesses: countLimit.default(16),
          sessionOpens: rateSchema(2, 60),
          requestsInFlight: countLimit.default(64),
          requests: rateSchema(100, 500),
        })
        .prefault({}),
      /** The defaults of every connection; a connection's own `limits` replaces the keys it gives. */
      connection: connectionLimitDefaults(),
      /** This gateway as a whole. */
      global: z.strictObject({ sessions: countLimit.default(4096), requestsInFlight: countLimit.default(4096) }).prefault({}),
      /** Requests to MCP endpoints whose token is not already verified, checked before any signature is. */
      unauthenticated: z
        .strictObject({
          perAddress: rateSchema(10, 100),
          total: rateSchema(500, 2000),
          /** Remote addresses remembered (IPv6 by /64); beyond it the stalest are forgotten. */
          addresses: countLimit.default(10_000),
        })
        .prefault({}),
    })
    .prefault({});
}

function connectionSchema(sources: SecretSources) {
  const { stdio, http } = upstreamSchemas(sources);
  return z
    .strictObject({
      description: z.string().optional(),
      stdio: stdio.optional(),
      http: http.optional(),
      sse: http.optional(),
      /** Served by this agent, inside the server's network (portcullis agent); its credentials never leave it. */
      agent: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'an agent name is lower-case letters, digits, - and _').optional(),
      access: accessSchema(),
      masking: maskingSchema(false),
      guardrails: guardrailsSchema(),
      /** This connection's limits; keys not given come from the gateway-wide `limits.connection`. */
      limits: connectionLimitsSchema(),
      tools: z
        .strictObject({
          /** Tool names (`*` wildcards) the connection exposes; all when absent. */
          allow: namePatterns,
          /** Tool names (`*` wildcards) hidden and refused, even when allowed. */
          deny: namePatterns,
          /** Pin the server's tool definitions and quarantine changed or new ones until an admin approves them. */
          pin: z.boolean().default(true),
        })
        .prefault({}),
    })
    .superRefine(oneUpstream(['stdio', 'http', 'sse', 'agent']));
}

function listenAddress() {
  return z
    .string()
    .default('127.0.0.1:8080')
    .transform((v, ctx) => {
      const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
      const port = m ? Number(m[3]) : NaN;
      const host = m ? (m[1] ?? m[2] ?? '') : '';
      if (!m || port > 65535 || (host !== 'localhost' && isIP(host) === 0)) {
        ctx.addIssue({ code: 'custom', message: `expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080 (0 picks a free port), found ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      return { host, port };
    });
}

export function configSchema(sources: SecretSources) {
  return z
    .strictObject({
      listen: listenAddress(),
      /** The recording store; default: sqlite:<dataDir>/portcullis.db. */
      store: storeUrl(sources),
      dataDir: z.string().min(1).default('./data'),
      recording: z
        .strictObject({
          /** write-ahead: a message is durable before it is forwarded; best-effort: never blocks, may lose events; off. */
          mode: z.enum(['write-ahead', 'best-effort', 'off']).default('write-ahead'),
          /** SQLite only: `full` fsyncs every group commit (survives power loss); `normal` survives a crash of the gateway. */
          sqliteSync: z.enum(['normal', 'full']).default('normal'),
          /** Closed sessions older than this are deleted, leaving a tombstone; 0 keeps them forever. */
          retention: duration('0'),
          /**
           * A write the store has not confirmed within this fails: write-ahead ends the exchanges waiting on it with
           * the recording error (fail closed) instead of holding them while the store stalls.
           */
          writeTimeout: duration('5s').refine((ms) => ms >= 100 && ms <= 300_000, 'expected from 100ms to 5m: the longest a message may wait for its recording to become durable'),
          /** The Ed25519 private key (PEM) that seals sessions; default: generated into the data directory. */
          signingKey: referenceOnly(sources, 'a signing key').optional(),
          /** Public keys (PEM, usually `${file:…}`) whose seals verify trusts besides this gateway's own. */
          trustedKeys: z.array(z.string()).default([]).transform((list, ctx) => publicKeys(list, sources, ctx)),
          /** This gateway's id in a shared store; default: generated into the data directory. */
          instanceId: z
            .string()
            .regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected 1-64 letters, digits, ".", "_" or "-"')
            .optional(),
        })
        .prefault({}),
      identity: identitySchema(sources),
      masking: maskingSchema(true),
      api: z
        .strictObject({
          /** A bearer token for /api/sessions and /metrics (a Prometheus scrape, scripts elsewhere); on the host, the local API key in dataDir does the same. */
          token: referenceOnly(sources, 'an API token').optional(),
        })
        .prefault({}),
      limits: limitsSchema(),
      http: z
        .strictObject({
          /** Host header values accepted (DNS-rebinding defence); defaults to loopback names on a loopback listen. */
          allowedHosts: z.array(z.string().min(1)).optional(),
          /** The URL clients reach the gateway at (behind a proxy, its public https URL); default: the listen address. */
          publicUrl: z.url({ protocol: /^https?$/, error: 'expected the gateway\'s base URL as clients see it, e.g. https://portcullis.example.com' }).optional(),
          /** Origin header values accepted from browsers; defaults to the allowed hosts over http and https. */
          allowedOrigins: z.array(z.string().min(1)).optional(),
          keepAlive: duration('15s'),
          /** Events kept per SSE stream for Last-Event-ID resumption. */
          eventBuffer: z.number().int().min(0).max(100_000).default(1000),
          /** Slow clients (docs/security.md): a request's head must arrive within this, head and body within requestTimeout. */
          headersTimeout: duration('10s').refine((ms) => ms >= 100, 'expected at least 100ms'),
          requestTimeout: duration('60s').refine((ms) => ms >= 100, 'expected at least 100ms'),
          /** How long a keep-alive connection may wait for its next request. */
          idleTimeout: duration('65s').refine((ms) => ms >= 100, 'expected at least 100ms'),
          /** Open connections at most; over it idle ones are shed first. Default: half the open-file limit. */
          maxConnections: z.number().int().min(1).optional(),
        })
        .superRefine((h, ctx) => {
          if (h.requestTimeout < h.headersTimeout) {
            ctx.addIssue({ code: 'custom', path: ['requestTimeout'], message: 'expected at least http.headersTimeout: the head is part of the request; raise requestTimeout or lower headersTimeout' });
          }
        })
        .prefault({}),
      sessions: z.strictObject({ idleTimeout: duration('30m') }).prefault({}),
      agents: z
        .strictObject({
          /** How often the gateway pings each agent's tunnel; a tunnel that misses one is closed. */
          heartbeat: duration('15s'),
        })
        .prefault({}),
      roles: z
        .strictObject({
          /** Groups whose members administer the gateway: approve changed tool definitions (portcullis pins approve). */
          admins: z.array(z.string().min(1)).default([]),
          /** Groups whose members see every session in the console and the API (others see their own). */
          auditors: z.array(z.string().min(1)).default([]),
        })
        .prefault({}),
      pins: z
        .strictObject({
          /**
           * Scan tool definitions when first seen and when they change (hidden characters, instructions aimed at the
           * model, references to other servers' tools): `quarantine` holds a suspicious one for an admin, even at
           * first sight; `flag` pins it and keeps the reasons; `off`.
           */
          scan: z.enum(['quarantine', 'flag', 'off']).default('quarantine'),
          /** A tool name two connections offer: `allow` says nothing; `flag` shows it (pins list, console); `quarantine` also holds the later connection's tool. */
          duplicateNames: z.enum(['allow', 'flag', 'quarantine']).default('flag'),
        })
        .prefault({}),
      console: z
        .strictObject({
          /** Serve the web console at / (its API and sign-in stay available to the CLI either way). */
          enabled: z.boolean().default(true),
          /** How long a console sign-in lasts before the person signs in again. */
          sessionLifetime: duration('8h').refine((ms) => ms >= 60_000 && ms <= 30 * 86_400_000, 'expected between 1m and 30d'),
        })
        .prefault({}),
      /** Guardrails, evaluated in order on every request to a server; the first whose condition holds decides. */
      rules: z
        .array(ruleSchema())
        .default([])
        .superRefine((rules, ctx) => {
          const seen = new Set<string>();
          rules.forEach((r, i) => {
            if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `two rules are named ${JSON.stringify(r.name)}; names appear in recordings and must be unique` });
            seen.add(r.name);
          });
        }),
      reviews: z
        .strictObject({
          /** How long a held call waits for approvers before it is rejected, unless its rule says otherwise. */
          timeout: duration('15m').refine((ms) => ms >= 1000 && ms <= maxReviewMs, 'expected a duration from 1s to 7d'),
          /** How often a held call whose client asked for progress is told it is still waiting. */
          progressInterval: duration('10s').refine((ms) => ms >= 1000 && ms <= 600_000, 'expected a duration from 1s to 10m'),
          /** The webhooks told of reviews whose rule has no `notify` of its own. */
          notify: webhookNames.default([]),
        })
        .prefault({}),
      notifications: notificationsSchema(sources),
      shutdown: z.strictObject({ drainTimeout: duration('10s') }).prefault({}),
      log: z
        .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
        .prefault({}),
      connections: z
        .record(
          z.string().regex(connectionName, 'a connection name is lower-case letters, digits, - and _, starting with a letter or digit (it becomes part of the URL)'),
          connectionSchema(sources),
        )
        .refine((conns) => Object.keys(conns).length > 0, { message: 'expected at least one connection' }),
    })
    .check(z.superRefine(checkMaskingNames, { when: () => true }))
    .check(z.superRefine(checkWebhookNames, { when: () => true }))
    // Runs even when other keys are invalid (`when`), so every problem is listed at once; the value may be partly parsed.
    .check(
      z.superRefine(
        (
          c: { listen?: unknown; http?: { allowedHosts?: unknown; publicUrl?: unknown }; identity?: { issuers?: unknown; dev?: { allowNonLoopback?: unknown } }; recording?: { mode?: unknown }; connections?: unknown },
          ctx,
        ) => {
          const conns = c.connections !== null && typeof c.connections === 'object' ? Object.values(c.connections as Record<string, { agent?: unknown }>) : [];
          if (c.recording?.mode === 'off' && conns.some((x) => x?.agent !== undefined)) {
            ctx.addIssue({ code: 'custom', path: ['recording', 'mode'], message: 'connections served by an agent need the store (agent tokens live there): recording.mode cannot be off' });
          }
          const listen = c.listen as { host?: unknown } | undefined;
          if (typeof listen?.host !== 'string') return;
          const host = listen.host;
          const loopback = isLoopbackHost(host);
          if (!loopback && c.http?.allowedHosts === undefined) {
            ctx.addIssue({
              code: 'custom',
              path: ['http', 'allowedHosts'],
              message: `required when listening on ${host}: list the host names clients use to reach the gateway (DNS-rebinding defence)`,
            });
          }
          const devIdentity = Array.isArray(c.identity?.issuers) && c.identity.issuers.length === 0;
          if (!loopback && !devIdentity && c.http?.publicUrl === undefined) {
            ctx.addIssue({
              code: 'custom',
              path: ['http', 'publicUrl'],
              message: `required when listening on ${host} with identity issuers: the URL clients use (e.g. https://portcullis.example.com) is what their tokens must be meant for`,
            });
          }
          if (!loopback && devIdentity && c.identity?.dev?.allowNonLoopback !== true) {
            ctx.addIssue({
              code: 'custom',
              path: ['identity', 'issuers'],
              message: `the embedded dev identity (on when no issuer is configured) is refused on ${host}: configure an OIDC issuer here, or set identity.dev.allowNonLoopback: true to accept dev tokens from the network`,
            });
          }
        },
        { when: () => true },
      ),
    );
}

// The slices their features own, re-exported for the code that reads a whole connection or gateway config.
export type { GuardrailDefaults, MaskingConfig, MaskingRule, ReviewPolicy, RuleConfig };

type Parsed = z.output<ReturnType<typeof configSchema>>;
type ParsedConnection = Parsed['connections'][string];

export type UpstreamConfig =
  | { kind: 'stdio'; command: string; args: SecretString[]; env: Record<string, SecretString>; passEnv: string[]; cwd?: string }
  | { kind: 'http' | 'sse'; url: SecretString; headers: Record<string, SecretString> }
  | { kind: 'agent'; agent: string };

/** Who may use a connection (see accessSchema). */
export interface AccessConfig {
  groups: string[];
  tools: Record<string, string[]>;
  prompts: Record<string, string[]>;
  resources: Record<string, string[]>;
  approvers: string[];
  maxGrant: number;
}

export type ReviewEvent = (typeof reviewEvents)[number];

/** A webhook told of reviews (docs/guardrails.md, Notifications). */
export interface WebhookConfig {
  name: string;
  /** May hold a credential (a Slack webhook URL): reveal only to send. */
  url: SecretString;
  format: 'json' | 'slack';
  /** The HMAC-SHA256 key that signs each delivery. */
  secret?: SecretString;
  events: ReviewEvent[];
}

/** A rate with bursts (limits). */
export interface RateConfig {
  perSecond: number;
  burst: number;
}

/** A connection's limits: the gateway-wide `limits.connection` with the connection's own keys applied. */
export interface ConnectionLimits {
  sessions: number;
  stdioProcesses: number;
  requestsInFlight: number;
  /** Tool name pattern → the rate each principal may call matching tools at. */
  tools: Record<string, RateConfig>;
}

export interface LimitsConfig {
  maxMessageBytes: number;
  clientBacklogBytes: number;
  slowClientTimeoutMs: number;
  /** undefined: never reclaim (refuse at the limit). */
  reclaimIdleAfterMs?: number | undefined;
  principal: { sessions: number; stdioProcesses: number; sessionOpens: RateConfig; requestsInFlight: number; requests: RateConfig };
  global: { sessions: number; requestsInFlight: number };
  unauthenticated: { perAddress: RateConfig; total: RateConfig; addresses: number };
}

export interface ConnectionConfig {
  name: string;
  description?: string;
  upstream: UpstreamConfig;
  access: AccessConfig;
  /** The gateway-wide masking with this connection's overrides applied. */
  masking: MaskingConfig;
  guardrails: GuardrailDefaults;
  tools: { allow?: string[]; deny?: string[]; pin: boolean };
  limits: ConnectionLimits;
}

export interface IssuerConfig {
  issuer: string;
  audiences: string[];
  algorithms: string[];
  groupsClaim: string;
  roles?: Record<string, string[]>;
  clientId?: string;
  scopes: string[];
  /** Hosts besides the issuer's own its discovery document may name as endpoints. */
  endpointHosts: string[];
  console?: { clientId?: string; clientSecret?: SecretString; label?: string };
}

export interface IdentityConfig {
  issuers: IssuerConfig[];
  clockSkewMs: number;
  dev: { users: Record<string, string[]>; allowNonLoopback: boolean; tokenLifetimeMs: number };
}

export interface RecordingConfig {
  mode: 'write-ahead' | 'best-effort' | 'off';
  sqliteSync: 'normal' | 'full';
  retentionMs: number;
  writeTimeoutMs: number;
  signingKey?: SecretString;
  trustedKeys: string[];
  instanceId?: string;
}

export interface GatewayConfig {
  listen: { host: string; port: number };
  /** The store URL (it may hold a password from a reference: reveal only to connect). */
  store: SecretString;
  dataDir: string;
  recording: RecordingConfig;
  identity: IdentityConfig;
  masking: MaskingConfig;
  api: { token?: SecretString };
  limits: LimitsConfig;
  http: {
    publicUrl?: string;
    allowedHosts?: string[];
    allowedOrigins?: string[];
    keepAliveMs: number;
    eventBufferSize: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    idleTimeoutMs: number;
    maxConnections?: number;
  };
  sessions: { idleTimeoutMs: number };
  rules: RuleConfig[];
  roles: { admins: string[]; auditors: string[] };
  pins: { scan: 'quarantine' | 'flag' | 'off'; duplicateNames: 'allow' | 'flag' | 'quarantine' };
  console: { enabled: boolean; sessionLifetimeMs: number };
  agents: { heartbeatMs: number };
  reviews: { timeoutMs: number; progressIntervalMs: number; notify: string[] };
  notifications: { webhooks: WebhookConfig[] };
  shutdown: { drainTimeoutMs: number };
  log: { level: string };
  connections: Map<string, ConnectionConfig>;
}

function toConnection(name: string, c: ParsedConnection, masking: MaskingConfig, limits: Parsed['limits']['connection']): ConnectionConfig {
  const upstream = upstreamOf(c);
  const own = Object.fromEntries(Object.entries(c.masking ?? {}).filter(([, v]) => v !== undefined));
  const { rules: _rules, ...gatewayWide } = masking;
  return { name, ...(c.description ? { description: c.description } : {}), upstream, access: c.access, masking: { ...gatewayWide, ...own } as MaskingConfig, guardrails: c.guardrails as GuardrailDefaults, tools: c.tools, limits: connectionLimits(c.limits, limits) };
}

function connectionLimits(own: ParsedConnection['limits'], defaults: Parsed['limits']['connection']): ConnectionLimits {
  return {
    sessions: own.sessions ?? defaults.sessions,
    stdioProcesses: own.stdioProcesses ?? defaults.stdioProcesses,
    requestsInFlight: own.requestsInFlight ?? defaults.requestsInFlight,
    tools: own.tools,
  };
}

export function toGatewayConfig(p: Parsed): GatewayConfig {
  return {
    listen: p.listen,
    store: p.store ?? new SecretString(`sqlite:${join(p.dataDir, 'portcullis.db')}`, `sqlite:${join(p.dataDir, 'portcullis.db')}`, false),
    dataDir: p.dataDir,
    recording: {
      mode: p.recording.mode,
      sqliteSync: p.recording.sqliteSync,
      retentionMs: p.recording.retention,
      writeTimeoutMs: p.recording.writeTimeout,
      ...(p.recording.signingKey ? { signingKey: p.recording.signingKey } : {}),
      trustedKeys: p.recording.trustedKeys,
      ...(p.recording.instanceId ? { instanceId: p.recording.instanceId } : {}),
    },
    identity: {
      issuers: p.identity.issuers.map((i) => ({ ...i, ...(i.roles ? { roles: i.roles } : {}) }) as IssuerConfig),
      clockSkewMs: p.identity.clockSkew,
      dev: { users: p.identity.dev.users, allowNonLoopback: p.identity.dev.allowNonLoopback, tokenLifetimeMs: p.identity.dev.tokenLifetime },
    },
    masking: p.masking as MaskingConfig,
    api: p.api.token ? { token: p.api.token } : {},
    limits: { maxMessageBytes: p.limits.maxMessageSize, clientBacklogBytes: p.limits.clientBacklog, slowClientTimeoutMs: p.limits.slowClientTimeout, reclaimIdleAfterMs: p.limits.reclaimIdleAfter, principal: p.limits.principal, global: p.limits.global, unauthenticated: p.limits.unauthenticated },
    http: {
      ...(p.http.publicUrl ? { publicUrl: p.http.publicUrl.replace(/\/+$/, '') } : {}),
      ...(p.http.allowedHosts ? { allowedHosts: p.http.allowedHosts } : {}),
      ...(p.http.allowedOrigins ? { allowedOrigins: p.http.allowedOrigins } : {}),
      keepAliveMs: p.http.keepAlive,
      eventBufferSize: p.http.eventBuffer,
      headersTimeoutMs: p.http.headersTimeout,
      requestTimeoutMs: p.http.requestTimeout,
      idleTimeoutMs: p.http.idleTimeout,
      ...(p.http.maxConnections !== undefined ? { maxConnections: p.http.maxConnections } : {}),
    },
    sessions: { idleTimeoutMs: p.sessions.idleTimeout },
    rules: p.rules as RuleConfig[],
    roles: { admins: p.roles.admins, auditors: p.roles.auditors },
    pins: { scan: p.pins.scan, duplicateNames: p.pins.duplicateNames },
    console: { enabled: p.console.enabled, sessionLifetimeMs: p.console.sessionLifetime },
    agents: { heartbeatMs: p.agents.heartbeat },
    reviews: { timeoutMs: p.reviews.timeout, progressIntervalMs: p.reviews.progressInterval, notify: p.reviews.notify },
    notifications: { webhooks: p.notifications.webhooks },
    shutdown: { drainTimeoutMs: p.shutdown.drainTimeout },
    log: { level: p.log.level },
    connections: new Map(Object.entries(p.connections).map(([name, c]) => [name, toConnection(name, c, p.masking as MaskingConfig, p.limits.connection)])),
  };
}
