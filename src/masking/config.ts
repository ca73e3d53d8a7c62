import { z } from 'zod';
import { overlay, size, sizeValue } from '../core/config-fields.js';
import { selectDetectors } from './catalog.js';
import { CustomDetectorError, customRegexDetector, JsonPathRule } from './custom.js';
import { defaultFieldWords } from './fields.js';

/*
 * The masking slice of the config (`masking`, and a connection's own `masking`): masking owns its settings' shape,
 * so it needs nothing of the config loader.
 */

/** How masking replaces a match: `redact`, `hash`, or `{ keepLast: N }`. */
const replacement = z
  .union([z.enum(['redact', 'hash']), z.strictObject({ keepLast: z.number().int().min(1).max(8) })])
  .transform((r) => (typeof r === 'string' ? { kind: r } : { kind: 'keep-last' as const, count: r.keepLast }));

/** A custom detector: compiled here, so a pattern RE2 refuses or a malformed path is a config error naming it. */
function customDetectorSchema() {
  const name = z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a name of lower-case letters, digits and -, e.g. employee-id')
    .refine(
      (n) => selectDetectors([n]).unknown.length > 0 && n !== 'secrets' && n !== 'pii' && n !== 'field-rule',
      'this name is a built-in detector or family; choose another',
    );
  return z
    .union([z.strictObject({ name, regex: z.string().min(1), ignoreCase: z.boolean().default(false) }), z.strictObject({ name, jsonPath: z.string().min(1) })])
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

// Names are checked against the built-ins and the custom detectors once the whole config is read (checkMaskingNames).
const detectorNames = z.array(z.string().min(1));

/** Masking settings; on a connection, each key given replaces the gateway-wide one. */
const settings = {
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

/** Masking for some callers: the keys a rule gives replace the connection's, for members of its groups (on `connections`, or all). */
const rule = z.strictObject({
  groups: z.array(z.string().min(1)).min(1, 'expected the groups the rule applies to (["*"] for everyone)'),
  connections: z.array(z.string().min(1)).optional(),
  detectors: settings.detectors.optional(),
  exclude: settings.exclude.optional(),
  fields: settings.fields.optional(),
  replace: replacement.optional(),
  enabled: settings.enabled.optional(),
});

export type MaskingRule = z.output<typeof rule>;

/** The gateway-wide `masking`. */
export function maskingSchema() {
  return z
    .strictObject({
      detectors: settings.detectors.default(['secrets', 'pii']),
      exclude: settings.exclude.default([]),
      fields: settings.fields.default(defaultFieldWords),
      replace: replacement.default({ kind: 'redact' }),
      allow: settings.allow.default([]),
      enabled: settings.enabled.default(true),
      custom: settings.custom.default([]),
      recordArguments: settings.recordArguments.default(false),
      maxDecodedSize: size('16MiB'),
      /** Per caller group (and optionally per connection): later rules win over earlier ones. */
      rules: z.array(rule).default([]),
    })
    .prefault({});
}

/** A connection's own `masking`: the keys it gives replace the gateway-wide ones. */
export function connectionMaskingSchema() {
  return z.strictObject(settings).partial().optional();
}

type GatewayMasking = z.output<ReturnType<typeof maskingSchema>>;

/** A connection's masking: the gateway-wide keys with the connection's own applied; rules only gateway-wide. */
export type MaskingConfig = Omit<GatewayMasking, 'rules'> & { rules?: MaskingRule[] };

/** The gateway-wide masking with a connection's own keys applied. */
export function connectionMasking(gatewayWide: GatewayMasking, own: z.output<ReturnType<typeof connectionMaskingSchema>>): MaskingConfig {
  const { rules: _rules, ...settings } = gatewayWide;
  return overlay(settings, own ?? {});
}

type Unparsed = { detectors?: unknown; exclude?: unknown; custom?: unknown; rules?: unknown } | undefined;

/** The value as an object to look into, when it is one (a partly parsed config may hold anything). */
function entries<T>(v: unknown): Array<[string, T | undefined]> {
  return v !== null && typeof v === 'object' ? Object.entries(v) : [];
}

/** Every detector or family name in `detectors` and `exclude`, gateway-wide and per connection, must exist: built in or custom. */
export function checkMaskingNames(c: { masking?: Unparsed; connections?: unknown }, ctx: z.RefinementCtx): void {
  const customNames = (m: Unparsed) =>
    Array.isArray(m?.custom) ? m.custom.map((x: { name?: unknown }) => x?.name).filter((n): n is string => typeof n === 'string') : [];
  const connections = entries<{ masking?: Unparsed }>(c.connections).map(([name, conn]): [string, Unparsed] => [name, conn?.masking]);
  const known = new Set(['custom', ...customNames(c.masking), ...connections.flatMap(([, m]) => customNames(m))]);
  const check = (m: Unparsed, at: Array<string | number>) => {
    for (const key of ['detectors', 'exclude'] as const) {
      const names = m?.[key];
      if (!Array.isArray(names)) continue;
      names.forEach((name, i) => {
        if (typeof name !== 'string' || known.has(name) || selectDetectors([name]).unknown.length === 0) return;
        ctx.addIssue({
          code: 'custom',
          path: [...at, key, i],
          message: `there is no detector or family named ${JSON.stringify(name)}; see docs/masking.md for the list`,
        });
      });
    }
  };
  check(c.masking, ['masking']);
  const rules = c.masking?.rules;
  if (Array.isArray(rules)) rules.forEach((r: Unparsed, i) => check(r, ['masking', 'rules', i]));
  for (const [name, m] of connections) check(m, ['connections', name, 'masking']);
}
