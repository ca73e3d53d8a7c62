/**
 * The KEK providers, one file each, registered here by the name a key's config gives (`local: …`, `awsKms: …`). The
 * config slice (recording/encryption-config.ts) validates each key's value with its provider's schema, and
 * keyring-from-config.ts builds it through `build`.
 */
import type { z } from 'zod';
import type { SecretSources, SecretString } from '../../core/secrets.js';
import type { Kek } from '../kek.js';
import { type AwsKmsKeyConfig, awsKmsKek, awsKmsSchema } from './aws-kms.js';
import { localKek, localKekSchema, localKeyBytes } from './local.js';

export interface KekProviderEntry {
  /** The config key naming this provider on a KEK entry. */
  readonly configKey: string;
  /** The schema of that key's value: what it must be, with errors that say how to fix it. */
  schema(sources: SecretSources): z.ZodType;
  /** Builds the KEK from its config value (the schema's output); throws with a message naming what to fix. */
  build(id: string, value: unknown): Kek;
}

export const kekProviders: readonly KekProviderEntry[] = [
  { configKey: 'local', schema: localKekSchema, build: (id, value) => localKek(id, localKeyBytes((value as SecretString).reveal())) },
  { configKey: 'awsKms', schema: awsKmsSchema, build: (id, value) => awsKmsKek(id, value as AwsKmsKeyConfig) },
];

export function kekProvider(configKey: string): KekProviderEntry | undefined {
  return kekProviders.find((p) => p.configKey === configKey);
}
