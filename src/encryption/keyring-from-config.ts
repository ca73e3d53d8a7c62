import type { EncryptionConfig } from '../recording/encryption-config.js';
import { localKek, localKeyBytes } from './keks/local.js';
import { Keyring } from './keyring.js';

/** The keyring recording.encryption describes; undefined when it is absent (plain recordings). Minimal: E1 writes the full one. */
export function keyringFromConfig(config: EncryptionConfig): Keyring | undefined {
  if (config === undefined) return undefined;
  const keks = config.keys.map((k) => localKek(k.id, localKeyBytes(k.local.reveal())));
  const current = keks.find((k) => k.id === config.current);
  if (current === undefined) throw new Error(`recording.encryption.current names '${config.current}', which is not among recording.encryption.keys`);
  return new Keyring(keks, current);
}
