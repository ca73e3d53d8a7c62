import { z } from 'zod';
import { parseDuration, parseSize } from './duration.js';
import { resolveSecretString, SecretReferenceError, type SecretSources, SecretString } from './secrets.js';

/*
 * The field types every feature's slice of the config schema is built from: durations in ms, sizes in bytes, secret
 * references resolved into SecretStrings. They live below every feature (src/config/ composes the slices, so a slice
 * cannot import it back).
 */

/** A connection's (or a virtual server's) name: it becomes part of the URL (/mcp/<name>). */
export const connectionNamePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const connectionNameRule = 'a connection name is lower-case letters, digits, - and _, starting with a letter or digit (it becomes part of the URL)';

/** Header and variable names whose values are credentials: they must come from a reference. */
const credentialName = /authorization|cookie|token|secret|password|passwd|api[-_]?key|credential|private[-_]?key/i;

/** A duration (`30s`, `15m`, a bare number of seconds), in ms. */
export function duration(fallback: string) {
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
export function durationOrOff(fallback: string) {
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

/** A size (`16MiB`, `512KiB`, a bare number of bytes), in bytes. */
export function size(fallback: string) {
  return z.union([z.string(), z.number()]).default(fallback).pipe(sizeValue());
}

/** A size without a default: a per-connection override that otherwise falls back to the gateway-wide value. */
export function sizeValue() {
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
export function secretMap(sources: SecretSources, what: string) {
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

export function secretList(sources: SecretSources) {
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

/**
 * A text that may hold references (`${file:…}`, `${env:…}`), resolved to its value: for what is not a secret (a PEM
 * certificate kept in a file, an id given in the environment), so the value is revealed.
 */
export function resolvedText(sources: SecretSources) {
  return z.string().transform((template, ctx) => {
    try {
      return resolveSecretString(template, sources).reveal();
    } catch (err) {
      if (!(err instanceof SecretReferenceError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  });
}

/** An http(s) URL that may hold references (a server's URL, a Slack webhook URL). */
export function httpUrl(sources: SecretSources) {
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

/** A credential that must come from a reference (`${env:…}` or `${file:…}`), never a literal in the file. */
export function referenceOnly(sources: SecretSources, what: string) {
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

/** Group names, none by default. */
export const groupList = z.array(z.string().min(1, 'expected a group name')).default([]);

/** `base` with every key `own` gives (not undefined) replacing its value: a connection's overrides of a gateway-wide slice. */
export function overlay<T extends object>(base: T, own: { [K in keyof T]?: T[K] | undefined }): T {
  const out = { ...base };
  for (const key in own) {
    const value = own[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}
