import type { Kek } from './kek.js';
import { kekProviders } from './keks/index.js';
import { Keyring } from './keyring.js';

/**
 * Placeholder for the read path's wiring until the config slice lands (E1 writes the real one, which replaces this
 * file): the keyring `recording.encryption` describes, or undefined when it is absent (plain recording).
 */
export function keyringFromConfig(config: unknown): Keyring | undefined {
  if (config === undefined || config === null) return undefined;
  const c = config as { current: string; keys: Array<{ id: string } & Record<string, unknown>> };
  const keks: Kek[] = c.keys.map((k) => {
    const provider = kekProviders.find((p) => k[p.configKey] !== undefined);
    if (provider === undefined) throw new Error(`recording.encryption.keys: KEK '${k.id}' names no provider`);
    return provider.build(k.id, k[provider.configKey]);
  });
  const current = keks.find((k) => k.id === c.current);
  if (current === undefined) throw new Error(`recording.encryption.current: '${c.current}' is not among recording.encryption.keys`);
  return new Keyring(keks, current);
}
