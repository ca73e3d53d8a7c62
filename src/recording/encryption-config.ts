import { z } from 'zod';
import type { SecretSources } from '../core/secrets.js';
import { kekProviders } from '../encryption/keks/index.js';
import type { EncryptionConfig, KekConfig } from '../encryption/keyring-from-config.js';

/**
 * The recording encryption slice of the config (`recording.encryption`): the KEKs that wrap the data keys of
 * recordings, and the one that wraps new ones (`current`). Absent, recordings are stored plain (the gateway says so
 * at start). Each key names its provider by one key (`local`, `awsKms`: src/encryption/keks/); an old key stays listed
 * until `portcullis keys rotate` has moved its data keys to the current one (docs/recording.md, Keys and rotation).
 */

/** A KEK's id: stored beside every data key it wraps, so it is short and plain. */
const kekIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

function kekEntrySchema(sources: SecretSources) {
  const providers = kekProviders.map((p) => p.configKey);
  return z
    .strictObject({
      id: z.string().regex(kekIdPattern, 'expected 1-64 letters, digits, ".", "_" or "-": the id is stored beside every data key this KEK wraps'),
      ...Object.fromEntries(kekProviders.map((p) => [p.configKey, p.schema(sources).optional()])),
    })
    .transform((entry, ctx): KekConfig => {
      const given = providers.filter((k) => (entry as Record<string, unknown>)[k] !== undefined);
      if (given.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          message:
            given.length === 0
              ? `KEK '${entry.id}' names no provider: give one of ${providers.join(', ')} (local: \${file:PATH} of 32 random bytes, or awsKms: { keyId, region })`
              : `KEK '${entry.id}' names ${given.join(' and ')}: give exactly one provider per key (a key with another provider is another entry, with its own id)`,
        });
        return z.NEVER;
      }
      return { id: entry.id, provider: given[0]!, value: (entry as Record<string, unknown>)[given[0]!] };
    });
}

export function encryptionSchema(sources: SecretSources): z.ZodType<EncryptionConfig, unknown> {
  return z
    .strictObject({
      /** The id of the KEK that wraps new data keys; the others only unwrap. */
      current: z.string(),
      keys: z.array(kekEntrySchema(sources)).min(1, 'expected at least one KEK (an id and local: or awsKms:)'),
    })
    .superRefine(({ current, keys }, ctx) => {
      const firstAt = new Map<string, number>();
      keys.forEach((k, i) => {
        const earlier = firstAt.get(k.id);
        if (earlier !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['keys', i, 'id'],
            message: `duplicate KEK id '${k.id}' (keys.${earlier} has it too): each key needs its own id, which is stored beside the data keys it wraps`,
          });
        } else firstAt.set(k.id, i);
      });
      if (keys.length > 0 && !firstAt.has(current)) {
        ctx.addIssue({
          code: 'custom',
          path: ['current'],
          message: `'${current}' is not the id of any of recording.encryption.keys (${[...firstAt.keys()].join(', ')}): name the one that wraps new data keys`,
        });
      }
    });
}

export type { EncryptionConfig } from '../encryption/keyring-from-config.js';
