import type { GatewayConfig } from '../config/schema.js';
import type { Keyring } from './keyring.js';
import { keyringFromConfig } from './keyring-from-config.js';

/** The keyring a gateway config describes (`recording.encryption`), or undefined when it has none (plain recording). */
export function configuredKeyring(config: GatewayConfig): Keyring | undefined {
  const recording = config.recording as unknown as { encryption?: Parameters<typeof keyringFromConfig>[0] };
  return keyringFromConfig(recording.encryption);
}
