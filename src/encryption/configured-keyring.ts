import type { Keyring } from './keyring.js';
import { keyringFromConfig } from './keyring-from-config.js';

/**
 * The keyring of a config's `recording` section (its `encryption`), or undefined when it has none (plain recording).
 * Takes the section, not the whole config, so that encryption/ does not depend on config/ (which depends on it).
 */
export function keyringOfRecording(recording: object): Keyring | undefined {
  return keyringFromConfig((recording as { encryption?: Parameters<typeof keyringFromConfig>[0] }).encryption);
}
