import { localKek, localKeyBytes } from './keks/local.js';
import { Keyring } from './keyring.js';

/** recording.encryption as the config slice gives it (structural: src/encryption does not import src/recording). */
export interface EncryptionSettings {
  current: string;
  keys: ReadonlyArray<{ id: string; local: { reveal(): string } }>;
}

/** The keyring recording.encryption describes; undefined when it is absent (plain recordings). Minimal: E1 writes the full one. */
export function keyringFromConfig(config: EncryptionSettings | undefined): Keyring | undefined {
  if (config === undefined) return undefined;
  const keks = config.keys.map((k) => localKek(k.id, localKeyBytes(k.local.reveal())));
  const current = keks.find((k) => k.id === config.current);
  if (current === undefined) throw new Error(`recording.encryption.current names '${config.current}', which is not among recording.encryption.keys`);
  return new Keyring(keks, current);
}
