import type { Kek } from './kek.js';
import { kekProvider } from './keks/index.js';
import { Keyring } from './keyring.js';

/** One configured KEK: its id, its provider (the config key naming it: `local`, `awsKms`) and that key's validated value. */
export interface KekConfig {
  id: string;
  provider: string;
  value: unknown;
}

/** recording.encryption, as its config slice (recording/encryption-config.ts) gives it. */
export interface EncryptionConfig {
  /** The id of the KEK that wraps new data keys. */
  current: string;
  keys: KekConfig[];
}

/**
 * The keyring recording.encryption describes: each configured KEK built by its provider, the current one wrapping new
 * data keys. Undefined when the config has no recording.encryption (recordings are plain). The config was validated
 * (ids unique, `current` among them), so what can fail here is only a provider refusing its value.
 */
export function keyringFromConfig(config: EncryptionConfig | undefined): Keyring | undefined {
  if (config === undefined) return undefined;
  const keks: Kek[] = config.keys.map((k) => {
    const provider = kekProvider(k.provider);
    if (provider === undefined) throw new Error(`recording.encryption.keys: KEK '${k.id}' has an unknown provider '${k.provider}'`);
    return provider.build(k.id, k.value);
  });
  return new Keyring(keks, keks.find((k) => k.id === config.current)!);
}
