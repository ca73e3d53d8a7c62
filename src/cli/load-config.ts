import { ConfigError, defaultConfigText, loadConfigFile, parseConfig } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';

/** The config a command runs with: the file given, or the embedded quick-start defaults. Exits 2 on a bad config. */
export function configForCommand(file: string | undefined): GatewayConfig {
  try {
    return file === undefined ? parseConfig(defaultConfigText(), '(embedded defaults)') : loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`portcullis: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
