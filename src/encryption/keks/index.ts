/**
 * The KEK providers, one file each, registered here by the name a key's config gives (`local: …`, `awsKms: …`). The
 * config slice (recording/encryption-config.ts) builds each configured key through this table.
 */
import type { Kek } from '../kek.js';
import { localKek, localKeyBytes } from './local.js';

export interface KekProviderEntry {
  /** The config key naming this provider on a KEK entry. */
  readonly configKey: string;
  /** Builds the KEK from its config value (already validated by the schema); throws with a message naming what to fix. */
  build(id: string, value: unknown): Kek;
}

export const kekProviders: readonly KekProviderEntry[] = [{ configKey: 'local', build: (id, value) => localKek(id, localKeyBytes(String(value))) }];
