/*
 * The masking slice of the config, as the schema (src/config/schema.ts) hands it over: masking owns its settings'
 * shape, so it needs nothing of the config loader.
 */

/** A connection's masking: the gateway-wide keys with the connection's own applied. */
export interface MaskingConfig {
  enabled: boolean;
  detectors: string[];
  exclude: string[];
  fields: string[];
  replace: { kind: 'redact' } | { kind: 'hash' } | { kind: 'keep-last'; count: number };
  allow: string[];
  custom: Array<{ name: string; regex: string; ignoreCase: boolean } | { name: string; jsonPath: string }>;
  recordArguments: boolean;
  /** Bytes of base64 decoded per message, at most (default 16 MiB). */
  maxDecodedSize: number;
  /** Gateway-wide only: masking for members of some groups (see MaskingRule). */
  rules?: MaskingRule[];
}

/** Masking for callers in one of `groups` (on `connections`, or all): the keys given replace the connection's. */
export interface MaskingRule {
  groups: string[];
  connections?: string[];
  detectors?: string[];
  exclude?: string[];
  fields?: string[];
  replace?: MaskingConfig['replace'];
  enabled?: boolean;
}
