import { z } from 'zod';
import { referenceOnly } from '../core/config-fields.js';
import type { SecretSources } from '../core/secrets.js';

/**
 * `recording.encryption` (a minimal stand-in: E1 writes the full slice, with KMS keys and the checks that name each
 * mistake). Absent: recordings are plain.
 */
export function encryptionSchema(sources: SecretSources) {
  return z
    .strictObject({
      current: z.string().min(1),
      keys: z.array(z.strictObject({ id: z.string().min(1), local: referenceOnly(sources, 'a local KEK') })).min(1),
    })
    .optional();
}

export type EncryptionConfig = z.output<ReturnType<typeof encryptionSchema>>;
