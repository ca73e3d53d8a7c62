import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { resolveSecretString, SecretReferenceError, type SecretSources, type SecretString } from '../../core/secrets.js';
import { type Kek, WrappedKeyError } from '../kek.js';

/**
 * A KEK held by the gateway itself: 32 bytes given in the config as base64 or hex, usually `${file:…}` or `${env:…}`.
 * Wrapping is AES-256-GCM with the owner bound as associated data: `lk1:<base64 nonce ‖ wrapped key ‖ tag>`.
 */

const prefix = 'lk1:';

export class LocalKekError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalKekError';
  }
}

/** The key's 32 bytes from its text (base64 or 64 hex digits, surrounding white space ignored). */
export function localKeyBytes(text: string): Buffer {
  const t = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]+={0,2}$/.test(t) ? Buffer.from(t, 'base64') : undefined;
  if (bytes === undefined || bytes.length !== 32) {
    throw new LocalKekError('expected 32 random bytes as base64 (44 characters) or hex (64 digits); make one with: openssl rand -base64 32');
  }
  return bytes;
}

/**
 * The config value (`local: ${file:…}`): a reference, never a literal (the key would sit in the config beside the
 * store it protects), resolving to 32 bytes. Kept as a SecretString: it never appears in a log or an error.
 */
export function localKekSchema(sources: SecretSources) {
  return z.string().transform((template, ctx): SecretString => {
    try {
      const s = resolveSecretString(template, sources);
      if (!s.hasReferences) {
        ctx.addIssue({
          code: 'custom',
          message:
            'a local KEK must be a reference such as ${file:/etc/portcullis/kek-1} or ${env:NAME}, not a literal: the key would sit in the config file beside the store it protects',
        });
        return z.NEVER;
      }
      localKeyBytes(s.reveal());
      return s;
    } catch (err) {
      if (!(err instanceof SecretReferenceError) && !(err instanceof LocalKekError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  });
}

const aad = (context: string) => Buffer.from(`portcullis-data-key\0${context}`);

export function localKek(id: string, key: Buffer): Kek {
  const wrapSync = (dataKey: Buffer, context: string): string => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(aad(context));
    return prefix + Buffer.concat([nonce, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]).toString('base64');
  };
  const unwrapSync = (wrapped: string, context: string): Buffer => {
    if (!wrapped.startsWith(prefix)) throw new WrappedKeyError(context, id, 'it is not a local KEK wrapping');
    const body = Buffer.from(wrapped.slice(prefix.length), 'base64');
    // Exactly a nonce, a 32-byte key and a full 16-byte tag: GCM would accept a tag cut to 4 bytes.
    if (body.length !== 12 + 32 + 16)
      throw new WrappedKeyError(context, id, `the wrapping is ${body.length} bytes, not the 60 of a nonce, a data key and its tag`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, 12));
      decipher.setAAD(aad(context));
      decipher.setAuthTag(body.subarray(body.length - 16));
      return Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]);
    } catch {
      throw new WrappedKeyError(context, id);
    }
  };
  return {
    id,
    provider: 'local',
    description: `local key '${id}'`,
    wrapSync,
    unwrapSync,
    wrap: async (dataKey, context) => wrapSync(dataKey, context),
    unwrap: async (wrapped, context) => unwrapSync(wrapped, context),
  };
}
